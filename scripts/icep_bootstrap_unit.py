"""How much a session bootstrap understates the spread of an ICEP-R κ when dyads repeat (docs/icep.md, "Spread").

Simulates ``--dyads`` dyads with ``--episodes`` FFSF episodes each (sessions of one dyad share its model quality,
which varies between dyads), scores them through the CV report (:class:`nova_infant.icep.report.CVResult`) once
with the dyads as groups (the bootstrap resamples dyads) and once without (it resamples sessions), and prints the
two 95 % κ intervals and the ratio of their widths, averaged over ``--repeats`` simulations.

Usage::

    python scripts/icep_bootstrap_unit.py --dyads 10 --episodes 3
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv=None) -> int:
    from nova_infant.icep.report import CVResult, FoldResult

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dyads", type=int, default=10)
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--frames", type=int, default=2000, help="frames per session (80 s at 25 fps)")
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args(argv)
    ratios = []
    for rep in range(args.repeats):
        rng = np.random.default_rng(rep)
        preds, groups = {}, {}
        for d in range(args.dyads):
            flip = rng.uniform(0.2, 0.9)  # how often the model errs on this dyad
            for e in range(args.episodes):
                gold = rng.integers(0, 3, args.frames)
                wrong = rng.random(args.frames) < np.clip(flip + rng.normal(0, 0.03), 0, 1)
                preds[f"D{d}E{e}"] = (gold, np.where(wrong, rng.integers(0, 3, args.frames), gold))
                groups[f"D{d}E{e}"] = f"D{d}"
        widths = {}
        for unit, g in (("dyad", groups), ("session", {n: n for n in preds})):
            fold = FoldResult(0, [], [], list(preds), {}, None, {}, preds)
            a = CVResult([fold], {}, ["a", "b", "c"], g, {}, 0.0, "infant", "", 0, rep).summary["agreement"]["model"]
            widths[unit] = a["kappa_ci95"][1] - a["kappa_ci95"][0]
            if rep == 0:
                print(f"{unit} bootstrap: kappa {a['kappa']:.3f} [{a['kappa_ci95'][0]:.3f}, {a['kappa_ci95'][1]:.3f}]")
        ratios.append(widths["session"] / widths["dyad"])
    print(f"{args.dyads} dyads x {args.episodes} episodes, {args.repeats} simulations: the session-bootstrap "
          f"interval is {100 * (1 - np.mean(ratios)):.0f} % narrower than the dyad bootstrap's "
          f"(width ratio {np.mean(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
