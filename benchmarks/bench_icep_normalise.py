"""Per-session versus fold-level standardisation of ICEP-R features, compared in nested cross-validation.

Evidence for the default of ``TrainConfig.normalise`` (docs/icep.md, "Normalisation"). Synthetic sessions of the
"context" task (:func:`nova_infant.icep.synthetic.context_task`: a class depends on an event some frames earlier,
with a weak per-frame cue) are written as real NOVA file-mode data, in two conditions:

- ``shifted``: every session gets its own offset (N(0, ``--offset``) per feature) and a slow linear drift over the
  session (end point N(0, ``--drift``) per feature), as a session in another room, with another camera or light
  would; per frame, the class evidence is weak next to that shift;
- ``clean``: no offset, no drift (does per-session standardisation cost anything when sessions do not shift?).

For each condition the script runs the same outer group K-fold three ways: ``normalise=fold``,
``normalise=session``, and the grid ``[{"normalise": "fold"}, {"normalise": "session"}]`` chosen per outer fold by
the inner K-fold (nested CV), and prints pooled κ with its 95 % session-bootstrap interval, the per-frame
logistic-regression baseline on the same folds, and which mode the inner loop chose.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_sessions(root: Path, n_sessions: int, n_frames: int, dim: int, offset: float, drift: float, seed: int):
    from nova_infant.icep import dataset, schemes
    from nova_infant.icep.synthetic import context_task, write_session

    rng = np.random.default_rng(seed)
    for i in range(n_sessions):
        x, y = context_task(n_frames, dim, rng, cue=0.5)
        shift = rng.normal(0, offset, dim) + np.linspace(0, 1, n_frames)[:, None] * rng.normal(0, drift, dim)
        write_session(root, "syn", f"S{i:02d}", {"infant.feat": ((x + shift).astype(np.float32), 25.0,
                                                                  "feature;video;syn")}, y, 40.0)
    lmap = schemes.label_map("merged", "infant")
    spec = dataset.SessionSpec(["infant.feat"], ("infant", "ICEP-R-infant", "gold"))
    return [dataset.load_session(p, spec, lmap) for p in dataset.list_sessions(root, "syn")], lmap


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--frames", type=int, default=800)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--offset", type=float, default=3.0)
    parser.add_argument("--drift", type=float, default=2.0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--inner-folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="data/fold/training seeds, one run each")
    parser.add_argument("--no-nested", action="store_true", help="skip the nested-choice arm (3x faster)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from nova_infant.icep import evaluation, training

    base = training.TrainConfig(hidden=32, lr=1e-2, max_epochs=args.epochs)
    out = {}
    for seed in args.seeds:
        for condition, (offset, drift) in (("shifted", (args.offset, args.drift)), ("clean", (0.0, 0.0))):
            with tempfile.TemporaryDirectory() as tmp:
                sessions, lmap = write_sessions(Path(tmp), args.sessions, args.frames, args.dim, offset, drift, seed)
                arms = [("fold", base.replace(normalise="fold", seed=seed), None),
                        ("session", base.replace(normalise="session", seed=seed), None)]
                if not args.no_nested:
                    arms.append(("nested choice", base.replace(seed=seed),
                                 [{"normalise": "fold"}, {"normalise": "session"}]))
                for arm, cfg, grid in arms:
                    tic = time.perf_counter()
                    result = evaluation.cross_validate(sessions, lmap.target.names, cfg, args.folds, grid,
                                                       inner_folds=args.inner_folds, seed=seed, role="infant")
                    agree = result.summary["agreement"]
                    row = {"kappa": agree["model"]["kappa"], "kappa_ci95": agree["model"]["kappa_ci95"],
                           "logreg_kappa": agree["logreg"]["kappa"], "logreg_ci95": agree["logreg"]["kappa_ci95"],
                           "chosen": [f.chosen.get("normalise", cfg.normalise) for f in result.folds],
                           "seconds": time.perf_counter() - tic}
                    out[f"seed {seed}/{condition}/{arm}"] = row
                    print(f"seed {seed} {condition:8s} {arm:14s} model kappa {row['kappa']:.3f} "
                          f"[{row['kappa_ci95'][0]:.3f}, {row['kappa_ci95'][1]:.3f}]  logistic regression "
                          f"{row['logreg_kappa']:.3f} [{row['logreg_ci95'][0]:.3f}, {row['logreg_ci95'][1]:.3f}]  "
                          f"chosen {row['chosen']}  ({row['seconds']:.0f} s)", flush=True)
    for condition in ("shifted", "clean"):
        for arm in ("fold", "session", "nested choice"):
            values = [v["kappa"] for k, v in out.items() if k.endswith(f"/{condition}/{arm}")]
            if values:
                print(f"mean over seeds {args.seeds}: {condition:8s} {arm:14s} kappa {np.mean(values):.3f} "
                      f"(min {np.min(values):.3f}, max {np.max(values):.3f})")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
