"""The cry-reason trainer's own CV (what ``cry_reason_train`` runs by default) on the Donate-a-cry corpus: each clip
is a coded session with one segment, recorders (app installations) are the groups. Prints the one line the trainer
prints and writes ``<out>/cry-reason-trainer-cv-<setting>.json``.

Usage::

    python scripts/cry_reason_trainer_cv.py --setting all5 --out docs/images

Same code path as the trainer: :func:`nova_infant.cry.session.training_item` per clip, then
:func:`nova_infant.cry.trainer_cv.recorder_cv` (5 recorder-grouped folds, epochs 40/40/100 by default).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None) -> int:
    from tqdm import tqdm

    from nova_infant.core.atomic import atomic_file
    from nova_infant.cry.evaluation import SETTINGS, corpus_clips
    from nova_infant.cry.session import training_item
    from nova_infant.cry.trainer_cv import recorder_cv

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="all5")
    ap.add_argument("--corpus", default=None, help="Donate-a-cry folder (default $NOVA_INFANT_DONATEACRY)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, nargs=3, default=[40, 40, 100], metavar=("AE", "DNN", "FUSION"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    classes = SETTINGS[args.setting]
    clips = corpus_clips(args.corpus, classes)
    items = [training_item(Path(c.path).stem, c.path, [(0.0, 7000.0, c.reason)], classes)
             for c in tqdm(clips, desc="features")]
    groups = {Path(c.path).stem: c.recorder for c in clips}
    result = recorder_cv(items, groups, args.folds, *args.epochs, seed=args.seed)
    result["setting"] = args.setting
    print(result["line"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / f"cry-reason-trainer-cv-{args.setting}.json") as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
