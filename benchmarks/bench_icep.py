"""ICEP-R training at the paper's scale: memory, throughput against a bare PyTorch loop, one outer fold's wall time.

Writes ``--sessions`` synthetic sessions (default 92, the ICMI'24 corpus) of ``--frames`` frames (default 9,600:
6.4 min at 25 Hz) as real NOVA file-mode data: ``infant.dinov2.stream`` (1024-d) + ``session.w2vbert.stream``
(1024-d), early-fused to 2,048-d, plus an ICEP-R annotation. Then, for the first outer fold of a 10-fold split:

1. fits the normaliser on the fold's training sessions (streamed) and trains the paper's bi-LSTM with our
   pipeline (:func:`nova_infant.icep.training.fit`, lazy reads from the stream files) for ``--batches`` batches;
   peak RSS (``ru_maxrss``) is taken after this step;
2. runs a bare PyTorch loop (same process and torch threads, same model, loss, optimiser, batch, windows and
   normalisation) over tensors of some of the same sessions already in RAM, and prints the throughput ratio
   ours / bare (target >= 0.8);
3. times prediction of the fold's test sessions and extrapolates one outer fold's wall time from the measured
   parts (``--epochs`` epochs; full epochs at paper scale take minutes each on two CPU cores).

Values are synthetic; only speed and memory are measured. The data (~7.2 GB at full scale) is kept in ``--root``
for reruns unless ``--clean``. Needs free disk space for it; use ``--sessions`` to run a fraction.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch


def write_data(root: Path, n_sessions: int, n_frames: int, dims: list[int], seed: int = 0) -> float:
    from nova_infant.icep.synthetic import write_session

    names = ["Ineu", "Ipos", "Ipro", "Inon", "Iusc"]
    rng = np.random.default_rng(seed)
    tic = time.perf_counter()
    for i in range(n_sessions):
        folder = root / "bench" / f"P{i:03d}"
        if (folder / "infant.ICEP-R-infant.gold.annotation").exists():
            continue
        streams = {}
        for name, dim in zip(["infant.dinov2", "session.w2vbert", "caregiver.dinov2"], dims):
            streams[name] = (rng.standard_normal((n_frames, dim), dtype=np.float32), 25.0, f"feature;x;{name}")
        labels = np.repeat(rng.integers(0, len(names), n_frames // 50 + 1), 50)[:n_frames]
        write_session(root, "bench", f"P{i:03d}", streams, labels, 40.0, class_names=names)
        del streams
    return time.perf_counter() - tic


def bare_loop(sessions, normaliser, config, n_classes, weights, n_batches, seed=0) -> float:
    """frames/s of a plain PyTorch loop over in-memory tensors.

    A fair baseline for :func:`nova_infant.icep.training.fit`: the same process (so the same torch threads), the
    same model, optimiser, batch size, windows and loss (class-weighted cross-entropy summed, divided by the summed
    weights of the unmasked frames), the same normalisation (each session standardised with its own statistics when
    ``config.normalise == "session"``, then the fold normaliser), but every session's fused features already in RAM
    as one float32 tensor, prepared before the clock starts; no reader thread, no file access.
    """
    from nova_infant.icep.models import build_model
    from nova_infant.icep.training import normalised, window_starts

    torch.manual_seed(seed)
    ready = normalised(sessions, config.normalise)
    xs = [torch.from_numpy(np.ascontiguousarray(s.features(0, s.n_frames), dtype=np.float32)) for s in ready]
    ys = [torch.from_numpy(s.labels) for s in ready]
    items = [(i, int(t)) for i, s in enumerate(ready) for t in window_starts(s.n_frames, config.window, config.stride)]
    order = [items[i] for i in np.random.default_rng(seed).permutation(len(items))][:n_batches * config.batch_size]
    model = build_model({"model": config.model, "in_dim": ready[0].dim, "n_classes": n_classes,
                         "hidden": config.hidden, "layers": config.layers, "dropout": config.dropout})
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    w = torch.from_numpy(weights)
    loss_fn = torch.nn.CrossEntropyLoss(weight=w, ignore_index=-1, reduction="sum")
    mean, scale = torch.from_numpy(normaliser.mean), torch.from_numpy(normaliser.scale)
    model.train()
    tic = time.perf_counter()
    for b in range(0, len(order), config.batch_size):
        chunk = order[b:b + config.batch_size]
        x = torch.stack([xs[i][t:t + config.window] for i, t in chunk])
        y = torch.stack([ys[i][t:t + config.window] for i, t in chunk])
        logits = model((x - mean) / scale)
        flat = y.reshape(-1)
        denom = w[flat[flat >= 0]].sum().clamp_min(1e-8)
        loss = loss_fn(logits.reshape(-1, n_classes), flat) / denom
        opt.zero_grad()
        loss.backward()
        opt.step()
    return len(order) * config.window / (time.perf_counter() - tic)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=92)
    parser.add_argument("--frames", type=int, default=9600)
    parser.add_argument("--dims", type=int, nargs="+", default=[1024, 1024])
    parser.add_argument("--root", default="/tmp/nova-infant-bench-icep")
    parser.add_argument("--batches", type=int, default=30, help="training batches timed per pipeline")
    parser.add_argument("--epochs", type=int, default=20, help="epochs assumed for the fold extrapolation")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed rounds (ours, bare)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--clean", action="store_true", help="delete the data afterwards")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from sklearn.model_selection import KFold

    from nova_infant.icep import dataset, schemes, training
    from nova_infant.icep.evaluation import split_validation

    root = Path(args.root)
    need = args.sessions * args.frames * sum(args.dims) * 4
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if free < need * 1.05 and not (root / "bench").exists():
        print(f"not enough disk: need {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free; use --sessions", file=sys.stderr)
        return 2
    result = {"sessions": args.sessions, "frames": args.frames, "dim": sum(args.dims), "data_gb": need / 1e9,
              "torch_threads": torch.get_num_threads()}
    result["write_s"] = write_data(root, args.sessions, args.frames, args.dims)

    lmap = schemes.label_map("merged", "infant")
    names = ["infant.dinov2", "session.w2vbert", "caregiver.dinov2"][:len(args.dims)]
    spec = dataset.SessionSpec(names, ("infant", "ICEP-R-infant", "gold"))
    tic = time.perf_counter()
    sessions = [dataset.load_session(p, spec, lmap) for p in dataset.list_sessions(root, "bench")[:args.sessions]]
    result["open_and_nan_check_s"] = time.perf_counter() - tic

    train_idx, test_idx = next(KFold(args.folds, shuffle=True, random_state=0).split(np.arange(len(sessions))))
    fit_idx, val_idx = split_validation(train_idx, 0.2, np.random.default_rng(0))
    train = [sessions[i] for i in fit_idx]
    val = [sessions[i] for i in val_idx]
    test = [sessions[i] for i in test_idx]
    config = training.TrainConfig(model="bilstm", window=50, stride=25, hidden=128, layers=2, batch_size=64,
                                  max_epochs=1)

    tic = time.perf_counter()
    ready = training.normalised(train, config.normalise)  # per-session statistics (cached on the sessions)
    result["session_stats_s"] = time.perf_counter() - tic
    tic = time.perf_counter()
    normaliser = training.Normaliser.fit(ready)
    result["normaliser_fit_s"] = time.perf_counter() - tic
    n_windows = sum(len(training.window_starts(s.n_frames, 50, 25)) for s in train)
    n_val_windows = sum(len(training.window_starts(s.n_frames, 50, 50)) for s in val)
    k = max(1, int(np.ceil(args.batches * config.batch_size * config.stride / args.frames)) + 1)
    # warm-up (allocator, oneDNN kernels) for both, then alternate timed rounds: the machine is shared and noisy
    fitted = training.fit(train, [], lmap.n_classes, config, max_batches=2)
    ours_runs, bare_runs = [], []
    for r in range(args.rounds):
        cfg = config.replace(seed=r)
        fitted = training.fit(train, [], lmap.n_classes, cfg, max_batches=args.batches)
        ours_runs.append(fitted.history[0]["train_frames"] / fitted.history[0]["train_seconds"])
        if r == 0:
            result["peak_rss_gb_after_ours"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
            bare_loop(train[:k], normaliser, config, lmap.n_classes, fitted.class_weights, 2)  # its warm-up
        bare_runs.append(bare_loop(train[:k], normaliser, cfg, lmap.n_classes, fitted.class_weights, args.batches, r))
        print(f"round {r}: ours {ours_runs[-1]:.0f} frames/s, bare {bare_runs[-1]:.0f} frames/s", flush=True)
    ours, bare = float(np.median(ours_runs)), float(np.median(bare_runs))
    result.update(ours_frames_per_s=ours, bare_frames_per_s=bare, ours_runs=ours_runs, bare_runs=bare_runs,
                  throughput_ratio_ours_over_bare=ours / bare)

    tic = time.perf_counter()
    with torch.no_grad():
        for s in test[:2]:
            training.predict_proba(fitted.model, fitted.normaliser, s, 50, 25)
    per_test = (time.perf_counter() - tic) / min(2, len(test))
    result["predict_s_per_session"] = per_test
    epoch_s = n_windows * config.window / ours
    val_s = n_val_windows * config.window / ours / 3  # forward only: about a third of a training step
    result["train_frames_per_epoch"] = n_windows * config.window
    result["epoch_s_est"] = epoch_s
    result["fold_wall_s_est"] = result["session_stats_s"] + result["normaliser_fit_s"] + args.epochs * (epoch_s + val_s) + per_test * len(test)
    result["fold_epochs_assumed"] = args.epochs
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(json.dumps(result, indent=2))
    print(f"peak memory (ours) {result['peak_rss_gb_after_ours']:.2f} GB (target < 4); throughput ours/bare "
          f"{result['throughput_ratio_ours_over_bare']:.2f} (target >= 0.8); one outer fold ~"
          f"{result['fold_wall_s_est'] / 3600:.1f} h at {args.epochs} epochs (extrapolated)")
    if args.clean:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
