"""Full cry-reason evaluation on the Donate-a-cry corpus: the figures of docs/cry-reason.md.

Runs, on the same recorder-grouped stratified 5 folds per setting, every method of
``nova_infant.cry.evaluation.METHODS`` for the paper's 4-class setting and the 5-class one, then the paper's
ungrouped 70/30 split (5 repeats) for the 4-class setting; writes ``<out>/cry-reason-cv.json``,
``<out>/cry-reason-cv.md`` and confusion-matrix PNGs (``<out>/cry-confusion-<setting>-<method>.png``).

Usage::

    NOVA_INFANT_DONATEACRY=/path/to/donateacry python scripts/cry_reason_cv.py --out docs/images

About 6 min on two busy CPU cores with the paper's epochs (AE 40, DNN 40, fusion 100).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None) -> int:
    from nova_infant.core.atomic import atomic_file
    from nova_infant.cry.evaluation import confusion_figure, cross_validate, format_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the JSON, the Markdown tables and the PNGs")
    ap.add_argument("--corpus", default=None, help="Donate-a-cry folder (default $NOVA_INFANT_DONATEACRY)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, nargs=3, default=[40, 40, 100], metavar=("AE", "DNN", "FUSION"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    results = []
    for setting, protocol in (("paper4", "grouped"), ("all5", "grouped"), ("paper4", "paper-split")):
        r = cross_validate(setting, args.corpus, args.folds, *args.epochs, seed=args.seed, protocol=protocol,
                           features_cache=cache)
        results.append(r)
        print(format_table(r), "\n", flush=True)
        if protocol == "grouped":
            for method in ("fusion", "dnn_stft", "yamnet"):
                confusion_figure(r, method, out / f"cry-confusion-{setting}-{method}.png")
    with atomic_file(out / "cry-reason-cv.json") as tmp:
        tmp.write_text(json.dumps(results, indent=1))
    with atomic_file(out / "cry-reason-cv.md") as tmp:
        tmp.write_text("\n\n".join(format_table(r) for r in results) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
