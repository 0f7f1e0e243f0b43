"""Cross-validation of the default crying model on real microphones: the arms table of docs/audio-event-tagger.md.

Folds are grouped by recorder (cries: one infant's 8 kHz and 16 kHz clips on one side), by speaker (speech
negatives: the LibriVox narrator, the ``cards`` speaker, the other CMU utterances) and by file (music, sounds,
noise). Each candidate training set of ``nova_infant.taggers.crying.TRAINING_SETS`` and the zero-shot baseline is
fitted on the training folds only (thresholds included) and scored on three arms of held-out sessions (a cry clip
between held-out speech or music): a) 8 kHz cries, b) 16 kHz cries, c) 16 kHz cries over a -50 dBFS room floor with
speech before and music after. YAMNet logits are computed once into ``--cache`` and the CV runs on them.

Usage::

    OMP_NUM_THREADS=1 nice python scripts/crying_cv.py --cache /tmp/crying_emb --json /tmp/crying_cv.json \
        --figure docs/images/crying-cv-arms.png

(``nova-infant taggers crying-cv`` runs the same.) About 5 min to fill the cache and 10 min for the CV on two busy
cores.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    from nova_infant.core.atomic import atomic_file
    from nova_infant.taggers.crying import TRAINING_SETS
    from nova_infant.taggers.crying_cv import arms_figure, cross_validate, format_report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=None, help="folder of cached YAMNet logits (filled on the first run)")
    ap.add_argument("--json", default=None, help="also write every fold's figures here")
    ap.add_argument("--figure", default=None, help="also draw frame and clip recall per arm into this PNG")
    ap.add_argument("--from-json", default=None, help="print the tables (and draw) from a saved --json result")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--methods", default=",".join(TRAINING_SETS), help="training sets to compare")
    ap.add_argument("--corpus", default=None, help="8 kHz Donate-a-cry folder (default $NOVA_INFANT_DONATEACRY)")
    ap.add_argument("--corpus16", default=None, help="16 kHz folder (default $NOVA_INFANT_DONATEACRY16)")
    args = ap.parse_args(argv)
    methods = tuple(m for m in args.methods.split(",") if m)
    unknown = [m for m in methods if m not in TRAINING_SETS]
    if unknown:
        print(f"error: --methods {unknown}: not among {', '.join(TRAINING_SETS)}", file=sys.stderr)
        return 2
    if args.from_json:
        with open(args.from_json) as fh:
            result = json.load(fh)
    else:
        result = cross_validate(args.cache, n_folds=args.folds, methods=methods, corpus=args.corpus,
                                corpus16=args.corpus16)
    print(format_report(result))
    if args.figure:
        print(arms_figure(result, args.figure))
    if args.json:
        with atomic_file(args.json, ".json") as staged:
            staged.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
