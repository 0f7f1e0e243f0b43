"""Bad-input matrix over every entry point (issue 9): each ``nova-infant`` command and each du-process module is
given a bad option, a missing, empty, corrupt or NaN-holding input, or an output path it cannot write, and must

- exit with a non-zero code (2: nothing usable; argparse usage errors exit 2 too),
- say so in exactly one ``error: ...`` line that names the file or the option (no traceback), and
- leave no partial output: the case's output folder and the shared inputs are unchanged.

Every case is classified as clean / traceback / silent / partial; only "clean" passes, so the counts of a run are
the pass/fail counts (docs/troubleshooting.md lists the messages). The CLI cases run in-process against tiny
stand-in checkpoints; the du-process cases (one subprocess each) are ``slow``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nova_infant.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ANNO = "infant.ICEP-R-infant.gold.annotation"


# ---------------------------------------------------------------- the world the cases run against


def _exempt_from_nova_rules(folder) -> None:
    """The matrix writes broken NOVA files on purpose (truncated headers and .trainer files, NaN rows): keep its
    folders out of conftest's end-of-session NOVA check, as the ``nova_invalid_files`` marker does for a tmp_path."""
    import conftest

    conftest._NOVA_EXEMPT.append(Path(folder))


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_dinov2, tiny_w2v_bert):
    """Good and bad inputs: ICEP-R sessions and a trained bundle, media, annotations, stand-in checkpoints."""
    import soundfile

    from nova_infant.icep.synthetic import context_task, write_session
    from nova_infant.core.sample_media import write_video, write_wav

    base = tmp_path_factory.mktemp("matrix")
    _exempt_from_nova_rules(base)
    w = {"base": str(base), "dinov2": tiny_dinov2, "w2v": tiny_w2v_bert}
    root = base / "data"
    rng = np.random.default_rng(0)
    for name in ("S1", "S2", "S3"):
        x, y = context_task(120, 8, rng, cue=0.5)
        write_session(root, "ds", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
    x, y = context_task(120, 8, rng, cue=0.5)
    write_session(root, "garbage", "G1", {"infant.feat": (x, 25.0, "feature;video;syn")}, np.full(120, -1), 40.0)
    write_session(root, "wide", "W1", {"infant.feat": (np.zeros((120, 5), np.float32), 25.0, "f")}, None, 40.0)
    folder = write_session(root, "nan", "N1", {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
    values = np.fromfile(folder / "infant.feat.stream~", np.float32)  # a NaN the writer would refuse
    values[7 * 8 + 2] = np.nan
    values.tofile(folder / "infant.feat.stream~")
    write_session(root, "short", "T1", {"infant.feat": (x[:10], 25.0, "feature;video;syn")}, y[:10], 40.0)
    w["root"] = str(root)
    bundle = base / "models" / "b1"
    assert main(["icep", "train", "--root", str(root), "--dataset", "ds", "--streams", "infant.feat", "--model",
                 "mlp", "--hidden", "8", "--epochs", "1", "--window", "20", "--stride", "10", "--out", str(bundle)]) == 0
    w["bundle"] = str(bundle)
    broken = base / "models" / "broken"
    shutil.copytree(bundle, broken)
    (broken / "config.json").write_text("{not json")
    w["broken_bundle"] = str(broken)
    (base / "models" / "empty").mkdir()
    w["empty_bundle"] = str(base / "models" / "empty")

    media = base / "media"
    media.mkdir()
    t = np.arange(32000) / 16000
    w["wav"] = str(write_wav(media / "speech.wav", 0.3 * np.sin(2 * np.pi * 300 * t), 16000))
    signal = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    signal[5000] = np.nan
    soundfile.write(media / "nan.wav", signal, 16000, subtype="FLOAT")
    w["nan_wav"] = str(media / "nan.wav")
    signal[5000] = np.inf
    soundfile.write(media / "inf.wav", signal, 16000, subtype="FLOAT")
    w["inf_wav"] = str(media / "inf.wav")
    soundfile.write(media / "empty.wav", np.zeros(0, np.float32), 16000)
    w["empty_wav"] = str(media / "empty.wav")
    (media / "text.wav").write_text("this is not audio\n")
    w["text_wav"] = str(media / "text.wav")
    (media / "zero.mp4").write_bytes(b"")
    w["zero_mp4"] = str(media / "zero.mp4")
    (media / "text.mp4").write_text("this is not a video\n")
    w["text_mp4"] = str(media / "text.mp4")
    frames = np.full((30, 48, 64, 3), 40, np.uint8)
    frames[:, :, :32] = 200
    w["video"] = str(write_video(media / "infant.video.mp4", frames, 25.0))
    data = Path(w["video"]).read_bytes()
    (media / "cut.mp4").write_bytes(data[: len(data) // 2])
    w["cut_mp4"] = str(media / "cut.mp4")
    w["missing"] = str(media / "missing.mp4")
    w["missing_wav"] = str(media / "missing.wav")
    w["anno"] = str(root / "ds" / "S1" / ANNO)
    (media / "bad.annotation").write_text("<annotation><broken")
    w["bad_anno"] = str(media / "bad.annotation")
    (media / "bad.eaf").write_text("<ANNOTATION_DOCUMENT><broken")
    w["bad_eaf"] = str(media / "bad.eaf")
    (media / "bad.stream").write_text("<?xml version='1.0'?><stream><info ftype='BINARY' sr='x' dim='2'")
    w["bad_stream"] = str(media / "bad.stream")
    (media / "bad.json").write_text("{not json")
    w["bad_json"] = str(media / "bad.json")
    (media / "pca.npz").write_bytes(b"not an npz")
    w["bad_pca"] = str(media / "pca.npz")
    (media / "a_file").write_text("a file, not a folder\n")
    w["file"] = str(media / "a_file")
    w["under_file"] = str(media / "a_file" / "sub")
    good_trainer = (Path(__file__).resolve().parents[1] / "trainers" / "nova_infant" / "icep_train_infant_dinov2.trainer").read_text()
    (media / "cut.trainer").write_text(good_trainer[: len(good_trainer) // 2])
    (media / "empty.trainer").write_text("")
    (media / "nocreate.trainer").write_text(good_trainer.replace('create="ICEPTrainer"', ""))
    w.update(trainer_cut=str(media / "cut.trainer"), trainer_empty=str(media / "empty.trainer"),
             trainer_nocreate=str(media / "nocreate.trainer"))  # every write below a file fails with NotADirectoryError
    return w


def _snapshot(*folders) -> dict:
    state = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                stat = os.lstat(path)
                state[path] = (stat.st_size, stat.st_mtime_ns) if name in filenames else "dir"
    return state


def classify(argv: list[str], out_dir: Path, shared: str, capsys) -> tuple[str, str]:
    """Run one command; return (verdict, the error text): clean / traceback / silent / partial."""
    before = _snapshot(out_dir, shared)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    except Exception as exc:  # noqa: BLE001 - the matrix counts what escapes
        return "traceback", f"{type(exc).__name__}: {exc}"
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if "Traceback" in err:
        return "traceback", err[-2000:]
    if _snapshot(out_dir, shared) != before:
        return "partial", err
    if code in (0, None) or not errors:
        return "silent", f"exit code {code}, stderr {err!r}"
    if len(errors) != 1:
        return "not one line", err
    return "clean", errors[0]


# ---------------------------------------------------------------- the cases: (id, argv, word the error must name)

R, B = "{root}", "{bundle}"
ICEP_BAD_OPTIONS = [
    ("window0", ["--window", "0"], "window"), ("window-neg", ["--window", "-3"], "window"),
    ("window-text", ["--window", "ten"], "--window"), ("window-float", ["--window", "2.5"], "--window"),
    ("stride0", ["--stride", "0"], "stride"), ("stride-over-window", ["--window", "20", "--stride", "30"], "stride"),
    ("batch0", ["--batch-size", "0"], "batch_size"), ("batch-neg", ["--batch-size", "-8"], "batch_size"),
    ("lr-neg", ["--lr", "-1"], "lr"), ("lr0", ["--lr", "0"], "lr"), ("lr-nan", ["--lr", "nan"], "lr"),
    ("lr-inf", ["--lr", "inf"], "lr"), ("lr-huge", ["--lr", "1e6"], "lr"),
    ("val1.5", ["--val-fraction", "1.5"], "val_fraction"), ("val1", ["--val-fraction", "1"], "val_fraction"),
    ("val-neg", ["--val-fraction", "-0.1"], "val_fraction"),
    ("grid-notjson", ["--grid", "notjson"], "grid"), ("grid-object", ["--grid", '{"lr": 0.1}'], "grid"),
    ("grid-empty", ["--grid", "[]"], "grid"), ("grid-number", ["--grid", "[1]"], "grid"),
    ("grid-unknown-key", ["--grid", '[{"learning_rate": 0.1}]'], "learning_rate"),
    ("grid-bad-lr", ["--grid", '[{"lr": -1}]'], "lr"), ("grid-bad-window", ["--grid", '[{"window": 0}]'], "window"),
    ("grid-stride-over-window", ["--grid", '[{"stride": 80}]'], "stride"),
    ("grid-bad-model", ["--grid", '[{"model": "cnn"}]'], "model"),
    ("epochs0", ["--epochs", "0"], "epochs"), ("epochs-neg", ["--epochs", "-3"], "epochs"),
    ("patience0", ["--patience", "0"], "patience"), ("hidden0", ["--hidden", "0"], "hidden"),
    ("layers0", ["--layers", "0"], "layers"), ("dropout1", ["--dropout", "1"], "dropout"),
    ("dropout-neg", ["--dropout", "-0.1"], "dropout"), ("seed-neg", ["--seed", "-1"], "seed"),
    ("device-bogus", ["--device", "tpu"], "device"), ("device-index", ["--device", "cuda:x"], "device"),
    ("model-bogus", ["--model", "cnn"], "--model"), ("role-bogus", ["--role", "parent"], "--role"),
    ("optimizer-bogus", ["--optimizer", "rmsprop"], "--optimizer"), ("folds1", ["--folds", "1"], "folds"),
    ("folds-neg", ["--folds", "-2"], "folds"),
    ("label-set-missing", ["--label-set", "{base}/media/none.json"], "none.json"),
    ("label-set-malformed", ["--label-set", "{bad_json}"], "bad.json"),
]
ICEP_BAD_DATA = [
    ("dataset-missing", ["--dataset", "nope"], "nope"), ("root-missing", ["--root", "{base}/nowhere"], "nowhere"),
    ("session-missing", ["--sessions", "S9"], "S9"), ("stream-missing", ["--sessions", "S1", "--streams", "infant.x"],
                                                       "infant.x.stream"),
    ("annotator-missing", ["--sessions", "S1", "--annotator", "nobody"], "nobody"),
    ("all-garbage", ["--dataset", "garbage"], "G1"), ("nan-stream", ["--dataset", "nan"], "N1"),
    ("too-short", ["--dataset", "short"], "T1"), ("no-labels", ["--dataset", "wide"], "W1"),
]


def _icep(command, extra, folds):
    argv = ["icep", command, "--root", R, "--dataset", "ds", "--streams", "infant.feat", "--model", "mlp",
            "--hidden", "4", "--epochs", "1", "--window", "20", "--stride", "10", "--out", "{out}/result"]
    if folds is not None:
        argv += ["--folds", folds]
    # later options win in argparse: the bad value follows the good default
    return argv + extra


CASES = []
for command in ("train", "cv"):
    for name, extra, word in ICEP_BAD_OPTIONS + ICEP_BAD_DATA:
        CASES.append((f"icep-{command}-{name}", _icep(command, extra, "2" if command == "cv" else None), word))
CASES += [
    ("icep-train-folds5-one-session", _icep("train", ["--sessions", "S1", "--folds", "5"], None), "folds"),
    ("icep-cv-folds0", _icep("cv", ["--folds", "0"], None), "folds"),
    ("icep-cv-one-session", _icep("cv", ["--sessions", "S1"], "2"), "folds"),
    ("icep-train-out-under-file", _icep("train", ["--out", "{under_file}/bundle"], None), "a_file"),
    ("icep-cv-out-under-file", _icep("cv", ["--out", "{under_file}/cv"], "2"), "a_file"),
    ("icep-train-cml-under-file", _icep("train", ["--cml-dir", "{under_file}"], None), "a_file"),
]
PREDICT = ["icep", "predict", "--root", R, "--dataset", "ds", "--sessions", "S1", "--annotator", "case"]
CASES += [
    ("icep-predict-bundle-missing", PREDICT + ["--bundle", "{base}/models/none"], "none"),
    ("icep-predict-bundle-empty", PREDICT + ["--bundle", "{empty_bundle}"], "empty"),
    ("icep-predict-bundle-corrupt", PREDICT + ["--bundle", "{broken_bundle}"], "broken"),
    ("icep-predict-min-dur-neg", PREDICT + ["--bundle", B, "--min-dur-ms", "-5"], "min-dur-ms"),
    ("icep-predict-min-dur-nan", PREDICT + ["--bundle", B, "--min-dur-ms", "nan"], "min-dur-ms"),
    ("icep-predict-stream-missing", PREDICT + ["--bundle", B, "--streams", "infant.x"], "infant.x.stream"),
    ("icep-predict-wrong-dim", ["icep", "predict", "--root", R, "--dataset", "wide", "--bundle", B], "W1"),
    ("icep-predict-nan-stream", ["icep", "predict", "--root", R, "--dataset", "nan", "--bundle", B], "N1"),
    ("icep-predict-session-missing", PREDICT[:6] + ["--sessions", "S9", "--bundle", B], "S9"),
    ("icep-predict-dataset-missing", ["icep", "predict", "--root", R, "--dataset", "nope", "--bundle", B], "nope"),
    ("icep-write-schemes-under-file", ["icep", "write-schemes", "{under_file}"], "a_file"),
    ("icep-import-schemes-port", ["icep", "import-schemes", "--dataset", "x", "--db-port", "70000"], "db-port"),
    ("icep-import-schemes-port-text", ["icep", "import-schemes", "--dataset", "x", "--db-port", "x"], "--db-port"),
]

TAG = ["run", "audio-events", "--audio", "{wav}", "--out", "{out}/s"]
CASES += [
    ("audio-threshold2", TAG + ["--threshold", "2"], "threshold"),
    ("audio-threshold0", TAG + ["--threshold", "0"], "threshold"),
    ("audio-threshold1", TAG + ["--threshold", "1"], "threshold"),
    ("audio-threshold-neg", TAG + ["--threshold", "-0.5"], "threshold"),
    ("audio-threshold-nan", TAG + ["--threshold", "nan"], "threshold"),
    ("audio-threshold-text", TAG + ["--threshold", "high"], "--threshold"),
    ("audio-step0", TAG + ["--step", "0"], "step"), ("audio-step-text", TAG + ["--step", "fast"], "step"),
    ("audio-step-neg", TAG + ["--step", "-40ms"], "step"),
    ("audio-duration-neg", TAG + ["--duration-ms", "-5"], "duration_ms"),
    ("audio-duration-inf", TAG + ["--duration-ms", "inf"], "duration_ms"),
    ("audio-missing", ["run", "audio-events", "--audio", "{missing_wav}", "--out", "{out}/s"], "missing.wav"),
    ("audio-nan", ["run", "audio-events", "--audio", "{nan_wav}", "--out", "{out}/s"], "nan.wav"),
    ("audio-inf", ["run", "audio-events", "--audio", "{inf_wav}", "--out", "{out}/s"], "inf.wav"),
    ("audio-empty", ["run", "audio-events", "--audio", "{empty_wav}", "--out", "{out}/s"], "empty.wav"),
    ("audio-text", ["run", "audio-events", "--audio", "{text_wav}", "--out", "{out}/s"], "text.wav"),
    ("audio-zero-video", ["run", "audio-events", "--audio", "{zero_mp4}", "--out", "{out}/s"], "zero.mp4"),
    ("audio-no-track", ["run", "audio-events", "--audio", "{video}", "--out", "{out}/s"], "infant.video.mp4"),
    ("audio-head-missing", TAG + ["--head", "{base}/nohead"], "nohead"),
    ("audio-head-not-a-head", TAG + ["--head", "{empty_bundle}"], "empty"),
    ("audio-out-under-file", ["run", "audio-events", "--audio", "{wav}", "--out", "{under_file}"], "a_file"),
]
EMO = ["run", "emotion-tagger", "--video", "{video}", "--out", "{out}/s"]
CASES += [
    ("emotion-sample-fps0", EMO + ["--sample-fps", "0.0"], "sample_fps"),
    ("emotion-sample-fps-neg", EMO + ["--sample-fps", "-1"], "sample_fps"),
    ("emotion-sample-fps-text", EMO + ["--sample-fps", "often"], "sample_fps"),
    ("emotion-smooth0", EMO + ["--smooth", "0"], "smooth"), ("emotion-smooth-neg", EMO + ["--smooth", "-2"], "smooth"),
    ("emotion-step0", EMO + ["--step", "0ms"], "step"), ("emotion-duration-neg", EMO + ["--duration-ms", "-1"],
                                                         "duration_ms"),
    ("emotion-face-bogus", EMO + ["--face", "top"], "--face"),
    ("emotion-missing", ["run", "emotion-tagger", "--video", "{missing}", "--out", "{out}/s"], "missing.mp4"),
    ("emotion-zero", ["run", "emotion-tagger", "--video", "{zero_mp4}", "--out", "{out}/s"], "zero.mp4"),
    ("emotion-text", ["run", "emotion-tagger", "--video", "{text_mp4}", "--out", "{out}/s"], "text.mp4"),
    ("emotion-truncated", ["run", "emotion-tagger", "--video", "{cut_mp4}", "--out", "{out}/s"], "cut.mp4"),
    ("emotion-head-missing", EMO + ["--head", "{base}/nohead"], "nohead"),
]
HEAD = ["taggers", "train-head", "audio-events", "--out", "{out}/head"]
CASES += [
    ("train-head-epochs0", HEAD + ["--pair", "{wav}", "{anno}", "--epochs", "0"], "epochs"),
    ("train-head-pair-alone", HEAD + ["--pair", "{wav}"], "--pair"),
    ("train-head-anno-missing", HEAD + ["--pair", "{wav}", "{base}/none.annotation"], "none.annotation"),
    ("train-head-anno-corrupt", HEAD + ["--pair", "{wav}", "{bad_anno}"], "bad.annotation"),
    ("train-head-media-missing", HEAD + ["--pair", "{missing_wav}", "{anno}"], "missing.wav"),
    ("train-head-media-nan", HEAD + ["--pair", "{nan_wav}", "{anno}"], "nan.wav"),
    ("train-head-classes-empty", HEAD + ["--pair", "{wav}", "{anno}", "--classes", ","], "classes"),
    ("train-head-emotion-fps0", ["taggers", "train-head", "emotion", "--out", "{out}/head", "--pair", "{video}",
                                 "{anno}", "--sample-fps", "-1"], "sample_fps"),
    ("evaluate-ref-missing", ["taggers", "evaluate", "emotion", "--reference", "{base}/none.annotation",
                              "--predicted", "{anno}"], "none.annotation"),
    ("evaluate-ref-corrupt", ["taggers", "evaluate", "audio-events", "--reference", "{bad_anno}",
                              "--predicted", "{anno}"], "bad.annotation"),
    ("evaluate-pred-corrupt", ["taggers", "evaluate", "audio-events", "--reference", "{anno}",
                               "--predicted", "{bad_anno}"], "bad.annotation"),
    ("evaluate-step0", ["taggers", "evaluate", "emotion", "--reference", "{anno}", "--predicted", "{anno}",
                        "--step", "0"], "step"),
]

VT = ["run", "valence-train", "--video", "{video}", "--labels", "{anno}", "--out", "{out}/v"]
CASES += [
    ("valence-train-stride5", VT + ["--stride", "5"], "stride"),
    ("valence-train-min-face-frames", VT + ["--min-face-frames", "10"], "min_face_frames"),
    ("valence-train-threshold", VT + ["--face-threshold", "1.5"], "face_threshold"),
    ("valence-predict-model-missing", ["run", "valence-predict", "--video", "{video}", "--out", "{out}/v", "--model",
                                       "{base}/no-model"], "no-model"),
]

DX = ["run", "dinov2-pca", "--video", "{video}", "--model", "{dinov2}", "--device", "cpu", "--out", "{out}/s"]
CASES += [
    ("dinov2-size15", DX + ["--size", "15"], "size"), ("dinov2-size0", DX + ["--size", "0"], "size"),
    ("dinov2-k0", DX + ["--k", "0"], "option k"), ("dinov2-k-huge", DX + ["--k", "99999"], "option k"),
    ("dinov2-batch0", DX + ["--batch-size", "0"], "batch_size"),
    ("dinov2-fit-frames0", DX + ["--pca-fit-frames", "0"], "pca_fit_frames"),
    ("dinov2-framing-bogus", DX + ["--framing", "zoom"], "framing"),
    ("dinov2-framing-negative", DX + ["--framing", "crop:0,0,-5,10"], "framing"),
    ("dinov2-framing-outside", DX + ["--framing", "crop:0,0,640,480"], "framing"),
    ("dinov2-step0", DX + ["--frame-step", "0"], "frame_step"),
    ("dinov2-step-text", DX + ["--frame-step", "often"], "frame_step"),
    ("dinov2-duration-neg", DX + ["--duration-ms", "-5"], "duration_ms"),
    ("dinov2-output-bogus", DX + ["--output", "all"], "--output"),
    ("dinov2-device-bogus", DX + ["--device", "gpu0"], "device"),
    ("dinov2-precision-bogus", DX + ["--precision", "fp16"], "--precision"),
    ("dinov2-model-missing", DX + ["--model", "{base}/no-model"], "no-model"),
    ("dinov2-model-wrong-kind", DX + ["--model", "{w2v}"], "w2v-bert"),
    ("dinov2-pca-missing", DX + ["--pca", "{base}/none.npz"], "none.npz"),
    ("dinov2-pca-corrupt", DX + ["--pca", "{bad_pca}"], "pca.npz"),
    ("dinov2-video-missing", ["run", "dinov2-pca", "--video", "{missing}", "--model", "{dinov2}", "--out", "{out}/s"],
     "missing.mp4"),
    ("dinov2-video-zero", ["run", "dinov2-pca", "--video", "{zero_mp4}", "--model", "{dinov2}", "--out", "{out}/s"],
     "zero.mp4"),
    ("dinov2-video-text", ["run", "dinov2-pca", "--video", "{text_mp4}", "--model", "{dinov2}", "--out", "{out}/s"],
     "text.mp4"),
    ("dinov2-video-truncated", ["run", "dinov2-pca", "--video", "{cut_mp4}", "--model", "{dinov2}", "--out", "{out}/s"],
     "cut.mp4"),
    ("dinov2-out-under-file", ["run", "dinov2-pca", "--video", "{video}", "--model", "{dinov2}", "--device", "cpu",
                               "--out", "{under_file}"], "a_file"),
    ("dinov2-fit-pca-missing", ["dinov2", "fit-pca", "{out}/p.npz", "{missing}", "--model", "{dinov2}"],
     "missing.mp4"),
    ("dinov2-fit-pca-k0", ["dinov2", "fit-pca", "{out}/p.npz", "{video}", "--model", "{dinov2}", "--k", "0"], "k"),
    ("dinov2-fit-pca-under-file", ["dinov2", "fit-pca", "{under_file}/p.npz", "{video}", "--model", "{dinov2}",
                                   "--device", "cpu", "--pca-fit-frames", "4"], "a_file"),
    ("dinov2-picture-time-neg", ["dinov2", "picture", "{video}", "{out}/p.png", "--model", "{dinov2}",
                                 "--time-ms", "-5"], "time-ms"),
    ("dinov2-picture-time-late", ["dinov2", "picture", "{video}", "{out}/p.png", "--model", "{dinov2}",
                                  "--time-ms", "99999"], "time-ms"),
    ("dinov2-picture-missing", ["dinov2", "picture", "{missing}", "{out}/p.png", "--model", "{dinov2}"],
     "missing.mp4"),
    ("dinov2-picture-mode", ["dinov2", "picture", "{video}", "{out}/p.png", "--mode", "hsv"], "--mode"),
]

ALIASES = [  # old command lines (aliases of `run <module>`): same checks, same one line
    ("alias-audio-missing", ["taggers", "audio-events", "{missing_wav}", "--out", "{out}/s/session"], "missing.wav"),
    ("alias-audio-out-under-file", ["taggers", "audio-events", "{wav}", "--out", "{under_file}/s"], "a_file"),
    ("alias-audio-threshold2", ["taggers", "audio-events", "{wav}", "--out", "{out}/s/session", "--threshold", "2"],
     "threshold"),
    ("alias-emotion-missing", ["taggers", "emotion", "{missing}", "--out", "{out}/s/infant"], "missing.mp4"),
    ("alias-emotion-face-bogus", ["taggers", "emotion", "{video}", "--out", "{out}/s/infant", "--face", "top"],
     "--face"),
    ("alias-dinov2-video-truncated", ["dinov2", "extract", "{cut_mp4}", "--model", "{dinov2}", "--out-dir",
                                      "{out}/s"], "cut.mp4"),
    ("alias-dinov2-out-under-file", ["dinov2", "extract", "{video}", "--model", "{dinov2}", "--device", "cpu",
                                     "--out-dir", "{under_file}"], "a_file"),
    ("alias-dinov2-k0", ["dinov2", "extract", "{video}", "--model", "{dinov2}", "--k", "0"], "option k"),
    ("alias-w2v-audio-missing", ["w2v-bert", "{missing_wav}", "{out}/x.stream", "--model", "{w2v}"], "missing.wav"),
    ("alias-w2v-out-under-file", ["w2v-bert", "{wav}", "{under_file}/x.stream", "--model", "{w2v}", "--device",
                                  "cpu"], "a_file"),
    ("alias-w2v-step0", ["w2v-bert", "{wav}", "{out}/x.stream", "--model", "{w2v}", "--frame-step", "0"],
     "frame_step"),
]
CASES += ALIASES

WX = ["run", "w2v-bert", "--audio", "{wav}", "--out", "{out}/s", "--model", "{w2v}", "--device", "cpu"]
CASES += [
    ("w2v-step0", WX + ["--frame-step", "0"], "frame_step"), ("w2v-step-text", WX + ["--frame-step", "x"], "frame_step"),
    ("w2v-left-neg", WX + ["--left-context", "-1"], "left_context"),
    ("w2v-right-nan", WX + ["--right-context", "nan"], "right_context"),
    ("w2v-chunk0", WX + ["--chunk-s", "0"], "chunk_s"), ("w2v-overlap-over-chunk", WX + ["--overlap-s", "40"],
                                                         "overlap_s"),
    ("w2v-overlap-neg", WX + ["--overlap-s", "-1"], "overlap_s"), ("w2v-batch0", WX + ["--batch-size", "0"],
                                                                   "batch_size"),
    ("w2v-layer-huge", WX + ["--layer", "999"], "layer"), ("w2v-duration-neg", WX + ["--duration-ms", "-1"],
                                                           "duration_ms"),
    ("w2v-device-bogus", WX + ["--device", "quantum"], "device"),
    ("w2v-precision-bogus", WX + ["--precision", "half"], "--precision"),
    ("w2v-model-missing", WX + ["--model", "{base}/no-model"], "no-model"),
    ("w2v-model-wrong-kind", WX + ["--model", "{dinov2}"], "dinov2"),
    ("w2v-reference-missing", WX + ["--reference", "{missing}"], "missing.mp4"),
    ("w2v-reference-corrupt", WX + ["--reference", "{bad_stream}"], "bad.stream"),
    ("w2v-audio-missing", ["run", "w2v-bert", "--audio", "{missing_wav}", "--out", "{out}", "--model", "{w2v}"], "missing.wav"),
    ("w2v-audio-nan", ["run", "w2v-bert", "--audio", "{nan_wav}", "--out", "{out}", "--model", "{w2v}"], "nan.wav"),
    ("w2v-audio-inf", ["run", "w2v-bert", "--audio", "{inf_wav}", "--out", "{out}", "--model", "{w2v}"], "inf.wav"),
    ("w2v-audio-empty", ["run", "w2v-bert", "--audio", "{empty_wav}", "--out", "{out}", "--model", "{w2v}"], "empty.wav"),
    ("w2v-audio-text", ["run", "w2v-bert", "--audio", "{text_wav}", "--out", "{out}", "--model", "{w2v}"], "text.wav"),
    ("w2v-no-audio-track", ["run", "w2v-bert", "--audio", "{video}", "--out", "{out}", "--model", "{w2v}"], "infant.video.mp4"),
    ("w2v-out-under-file", ["run", "w2v-bert", "--audio", "{wav}", "--out", "{under_file}", "--model", "{w2v}",
                            "--device", "cpu"], "a_file"),
]

REVIEW = "{root}/ds/S1"
CASES += [
    ("review-timeline-no-output", ["review", "timeline", REVIEW], "--png"),
    ("review-timeline-missing", ["review", "timeline", "{base}/none.annotation", "--png", "{out}/t.png"],
     "none.annotation"),
    ("review-timeline-corrupt-stream", ["review", "timeline", "{bad_stream}", "--png", "{out}/t.png"], "bad.stream"),
    ("review-timeline-corrupt-anno", ["review", "timeline", "{bad_anno}", "--png", "{out}/t.png"], "bad.annotation"),
    ("review-timeline-duration-neg", ["review", "timeline", REVIEW, "--png", "{out}/t.png", "--duration-ms", "-1"],
     "duration"),
    ("review-timeline-under-file", ["review", "timeline", REVIEW, "--png", "{under_file}/t.png"], "a_file"),
    ("review-agreement-count", ["review", "agreement", "--reference", "{anno}", "--reference", "{anno}",
                                "--hypothesis", "{anno}"], "hypothesis"),
    ("review-agreement-missing", ["review", "agreement", "--reference", "{base}/none.annotation", "--hypothesis",
                                  "{anno}", "--json", "{out}/r.json"], "none.annotation"),
    ("review-agreement-corrupt", ["review", "agreement", "--reference", "{bad_anno}", "--hypothesis", "{anno}",
                                  "--json", "{out}/r.json"], "bad.annotation"),
    ("review-agreement-step0", ["review", "agreement", "--reference", "{anno}", "--hypothesis", "{anno}",
                                "--step-ms", "0", "--json", "{out}/r.json"], "step"),
    ("review-agreement-duration-neg", ["review", "agreement", "--reference", "{anno}", "--hypothesis", "{anno}",
                                       "--duration-ms", "-5", "--json", "{out}/r.json"], "duration"),
    ("review-agreement-under-file", ["review", "agreement", "--reference", "{anno}", "--hypothesis", "{anno}",
                                     "--json", "{under_file}/r.json"], "a_file"),
    ("review-export-elan-missing", ["review", "export-elan", "{base}/none.annotation", "--out", "{out}/x.eaf"],
     "none.annotation"),
    ("review-export-elan-corrupt", ["review", "export-elan", "{bad_anno}", "--out", "{out}/x.eaf"], "bad.annotation"),
    ("review-export-elan-under-file", ["review", "export-elan", "{anno}", "--out", "{under_file}/x.eaf"], "a_file"),
    ("review-export-csv-missing", ["review", "export-csv", "{base}/none.annotation", "--out", "{out}/x.csv"],
     "none.annotation"),
    ("review-export-csv-corrupt", ["review", "export-csv", "{bad_anno}", "--out", "{out}/x.csv"], "bad.annotation"),
    ("review-export-csv-under-file", ["review", "export-csv", "{anno}", "--out", "{under_file}/x.csv"], "a_file"),
    ("review-import-elan-missing", ["review", "import-elan", "{base}/none.eaf", "--tier", "t", "--out",
                                    "{out}/infant.x.y.annotation"], "none.eaf"),
    ("review-import-elan-corrupt", ["review", "import-elan", "{bad_eaf}", "--tier", "t", "--out",
                                    "{out}/infant.x.y.annotation"], "bad.eaf"),
    ("review-import-elan-scheme-missing", ["review", "import-elan", "{bad_eaf}", "--tier", "t", "--scheme",
                                           "{base}/none.json", "--out", "{out}/infant.x.y.annotation"], "none.json"),
]

CASES += [
    ("sample-session-fps0", ["sample-session", "{out}/data", "--fps", "0"], "fps"),
    ("sample-session-fps-neg", ["sample-session", "{out}/data", "--fps", "-25"], "fps"),
    ("sample-session-rate0", ["sample-session", "{out}/data", "--audio-rate", "0"], "audio-rate"),
    ("sample-session-channels0", ["sample-session", "{out}/data", "--channels", "0"], "channels"),
    ("sample-session-repeat0", ["sample-session", "{out}/data", "--repeat", "0"], "repeat"),
    ("sample-session-under-file", ["sample-session", "{under_file}"], "a_file"),
    ("make-standin-kind", ["make-standin", "vit", "{out}/m"], "kind"),
    ("make-standin-size", ["make-standin", "dinov2", "{out}/m", "--size", "colossal"], "colossal"),
    ("make-standin-under-file", ["make-standin", "dinov2", "{under_file}/m"], "a_file"),
    ("export-weights-missing", ["export-weights", "{base}/no-model", "{out}/w", "--kind", "dinov2"], "no-model"),
    ("write-trainers-under-file", ["write-trainers", "{under_file}"], "a_file"),
    ("demo-step0", ["demo", "--out", "{out}/demo", "--frame-step", "0"], "frame_step"),
    ("unknown-command", ["transcode"], "transcode"),
    ("check-trainers-truncated", ["check-trainers", "{trainer_cut}"], "cut.trainer"),
    ("check-trainers-empty", ["check-trainers", "{trainer_empty}"], "empty.trainer"),
    ("check-trainers-no-create", ["check-trainers", "{trainer_nocreate}"], "nocreate.trainer"),
    ("check-trainers-missing", ["check-trainers", "{base}/none.trainer"], "none.trainer"),
    ("check-trainers-empty-folder", ["check-trainers", "{out}"], "out"),
]


def _fill(text: str, values: dict) -> str:
    """Put the world's paths into ``{name}`` placeholders (JSON braces are left alone)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), text)


@pytest.mark.parametrize("case_id,argv,word", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clean_line_and_no_output(case_id, argv, word, world, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    values = {**world, "out": str(out)}
    argv = [_fill(a, values) for a in argv]
    verdict, text = classify(argv, out, world["base"], capsys)
    if os.environ.get("NOVA_MATRIX_LOG"):  # for the counts and the message list in docs/troubleshooting.md
        with open(os.environ["NOVA_MATRIX_LOG"], "a") as log:
            log.write(f"{case_id}\t{verdict}\t{text.splitlines()[0] if text else ''}\n")
    assert verdict == "clean", f"{case_id}: {verdict}: {text}"
    assert _fill(word, values) in text, f"{case_id}: the error does not name {word!r}: {text}"


def test_matrix_is_large_enough():
    assert len(CASES) + len(DU_CASES) >= 150
    assert len({c[0] for c in CASES}) == len(CASES) and len({c[0] for c in DU_CASES}) == len(DU_CASES)


# ---------------------------------------------------------------- du-process: every module of trainers/nova_infant

OUR_ERRORS = ("OptionError", "StreamError", "AnnotationError", "AudioDecodeError", "VideoDecodeError",
              "AlignmentError", "TrainerFileError", "WeightsUnavailableError", "PCAFileError", "SavedModelError",
              "SessionTooShortError",
              "BundleError", "MediaError")


@pytest.fixture(scope="module")
def du_world(world, tmp_path_factory):
    """A DISCOVER CML folder (copy of trainers/nova_infant) and file-mode sessions of media for the extractors."""
    from nova_infant.discover.registry import trainer_specs
    from nova_infant.core.trainer_files import write_trainer

    base = tmp_path_factory.mktemp("du")
    _exempt_from_nova_rules(base)
    cml = base / "cml" / "nova_infant"
    shutil.copytree(Path(__file__).resolve().parents[1] / "trainers" / "nova_infant", cml,
                    ignore=shutil.ignore_patterns("icep_models", "icep_*-*.trainer"))
    for stem, spec in trainer_specs().items():
        write_trainer(cml / f"{stem}.trainer", spec)
    media = base / "data" / "media"
    for session, video, audio in (("good", world["video"], world["wav"]), ("nanaudio", world["video"], world["nan_wav"]),
                                  ("cutvideo", world["cut_mp4"], world["wav"])):
        (media / session).mkdir(parents=True)
        shutil.copy(video, media / session / "infant.video.mp4")
        shutil.copy(audio, media / session / "session.audio.wav")
    return {"cml": cml, "base": base, "media_root": base / "data"}


def _du(du_world, trainer, dataset_root, dataset, sessions, data, options):
    base = du_world["base"]
    trainer = {"icep_train": "icep_train_infant_dinov2"}.get(trainer, trainer)  # one training trainer per role
    cmd = [os.path.join(os.path.dirname(sys.executable), "du-process"), "--trainer_file_path",
           f"nova_infant\\{trainer}.trainer", "--cml_dir", str(du_world["cml"].parent), "--cache_dir", str(base / "c"),
           "--tmp_dir", str(base / "t"), "--log_dir", str(base / "l"), "--dataset", dataset,
           "--sessions", json.dumps(sessions), "--data", json.dumps(data), "--options", json.dumps(options)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=base)


def _inp(io_id, src, root, name):
    return {"id": io_id, "type": "input", "src": src, "uri_template": f"{root}/{{dataset}}/{{session}}/{name}"}


def _outp(io_id, src, root, name):
    return {"id": io_id, "type": "output", "src": src, "uri_template": f"{root}/{{dataset}}/{{session}}/out/{name}"}


def _du_request(kind, w, du):
    """(trainer, dataset root, data description) of each module."""
    media, data = str(du["media_root"]), w["root"]
    video = _inp("video", "file:stream:video", media, "infant.video.mp4")
    audio = _inp("audio", "file:stream:audio", media, "session.audio.wav")
    feature = _inp("feature_0", "file:stream:ssistream", data, "infant.feat.stream")
    labels = _inp("labels", "file:annotation:discrete", data, ANNO)
    return {
        "icep_train": (data, [feature, labels]),
        "icep_predict": (data, [feature, _outp("annotation", "file:annotation:discrete", data, "x.annotation")]),
        "dinov2_pca": (media, [video, _outp("dinov2_pca", "file:stream:ssistream", media, "infant.dinov2.stream")]),
        "w2v_bert": (media, [audio, _outp("w2v_bert", "file:stream:ssistream", media, "session.w2vbert.stream")]),
        "audio_events": (media, [audio, _outp("scores", "file:stream:ssistream", media, "audio_events.stream")]),
        "emotion_tagger": (media, [video, _outp("emotion", "file:annotation:discrete", media, "emotion.annotation")]),
    }[kind]


TRAIN_OK = {"model": "mlp", "hidden": 4, "epochs": 1, "window": 20, "stride": 10}
DU_CASES = [  # (id, trainer, dataset, sessions, options, word the one-line error names)
    *[(f"icep_train-{k}-{v}", "icep_train", "ds", ["S1", "S2"], {**TRAIN_OK, k: v}, k) for k, v in (
        ("window", 0), ("stride", 0), ("stride", 30), ("lr", -1), ("batch_size", 0), ("epochs", 0),
        ("val_fraction", 1.5), ("cv_folds", 1), ("dropout", 1), ("device", "tpu"), ("role", "parent"),
        ("hidden", "many"))],
    ("icep_train-label_set-missing", "icep_train", "ds", ["S1"], {**TRAIN_OK, "label_set": "/nonexistent/set.json"},
     "set.json"),
    ("icep_train-cv_folds5-one-session", "icep_train", "ds", ["S1"], {**TRAIN_OK, "cv_folds": 5}, "cv_folds"),
    ("icep_train-all-garbage", "icep_train", "garbage", ["G1"], TRAIN_OK, "G1"),
    ("icep_train-nan-stream", "icep_train", "nan", ["N1"], TRAIN_OK, "N1"),
    ("icep_predict-min_dur_ms", "icep_predict", "ds", ["S1"], {"bundle": "{bundle}", "min_dur_ms": -5}, "min_dur_ms"),  # -1 = the bundle's
    ("icep_predict-batch_size", "icep_predict", "ds", ["S1"], {"bundle": "{bundle}", "batch_size": 0}, "batch_size"),
    ("icep_predict-bundle-missing", "icep_predict", "ds", ["S1"], {"bundle": "/nonexistent/bundle"}, "bundle"),
    ("icep_predict-wrong-dim", "icep_predict", "wide", ["W1"], {"bundle": "{bundle}"}, "W1"),
    *[(f"dinov2_pca-{k}-{v}", "dinov2_pca", "media", ["good"], {"model": "{dinov2}", "device": "cpu", k: v}, k)
      for k, v in (("size", 15), ("k", 0), ("frame_step", "0"), ("output", "all"), ("framing", "zoom"),
                   ("batch_size", 0), ("duration_ms", -5), ("precision", "fp16"))],
    ("dinov2_pca-truncated-video", "dinov2_pca", "media", ["cutvideo"], {"model": "{dinov2}", "device": "cpu"},
     "cutvideo"),
    *[(f"w2v_bert-{k}-{v}", "w2v_bert", "media", ["good"], {"model": "{w2v}", "device": "cpu", k: v}, k)
      for k, v in (("chunk_s", 0), ("left_context", -1), ("frame_step", "x"), ("overlap_s", 99),
                   ("precision", "int4"))],
    ("w2v_bert-nan-audio", "w2v_bert", "media", ["nanaudio"], {"model": "{w2v}", "device": "cpu"}, "nanaudio"),
    *[(f"audio_events-{k}-{v}", "audio_events", "media", ["good"], {k: v}, k)
      for k, v in (("threshold", 2), ("threshold", 0), ("min_event_ms", -1), ("frame_step", "0"))],
    ("audio_events-nan-audio", "audio_events", "media", ["nanaudio"], {}, "nanaudio"),
    *[(f"emotion_tagger-{k}-{v}", "emotion_tagger", "media", ["good"], {k: v}, k)
      for k, v in (("smooth", 0), ("sample_fps", -1), ("face", "top"), ("duration_ms", -1))],
    ("emotion_tagger-truncated-video", "emotion_tagger", "media", ["cutvideo"], {}, "cutvideo"),
]


def classify_du(result, watched: list[Path], before: dict, word: str) -> tuple[str, str]:
    """clean / traceback / silent / partial for one du-process run.

    du-process (discover-utils' process.py) prints the traceback of every exception a module raises for a session
    before going on with the next one; that is counted as clean when the exception is one of this package's one-line
    errors and the line naming the file was printed first. A bad option ends the job before any session with one
    ``error:`` line and exit code 2 (no traceback at all).
    """
    text = result.stdout + result.stderr
    if _snapshot(*watched) != before:
        return "partial", text[-1500:]
    if result.returncode == 0:
        return "silent", text[-1500:]
    if "Traceback" in text:
        last = [line for line in text.splitlines() if line and not line.startswith((" ", "\t", "Traceback"))
                and "Error" in line.split(":")[0]]
        if not last or not any(name in last[-1] for name in OUR_ERRORS):
            return "traceback", text[-1500:]
    named = [line for line in result.stderr.splitlines()  # our own line, not the traceback's last one
             if word in line and not line.startswith(" ") and not re.match(r"^[\w.]*(Error|Exception): ", line)]
    if not named:
        return "not named", text[-1500:]
    return "clean", named[0]


@pytest.mark.slow
@pytest.mark.parametrize("case_id,trainer,dataset,sessions,options,word", DU_CASES, ids=[c[0] for c in DU_CASES])
def test_du_process_bad_input_is_one_line_and_writes_nothing(case_id, trainer, dataset, sessions, options, word,
                                                             world, du_world):
    root, data = _du_request(trainer, world, du_world)
    options = {k: _fill(v, world) if isinstance(v, str) else v for k, v in options.items()}
    watched = [Path(root) / dataset, du_world["cml"]]
    before = _snapshot(*watched)
    result = _du(du_world, trainer, root, dataset, sessions, data, options)
    verdict, text = classify_du(result, watched, before, word)
    if os.environ.get("NOVA_MATRIX_LOG"):
        with open(os.environ["NOVA_MATRIX_LOG"], "a") as log:
            log.write(f"du:{case_id}\t{verdict}\t{text.splitlines()[0] if text else ''}\n")
    assert verdict == "clean", f"{case_id}: {verdict}: {text}"


# ---------------------------------------------------------------- batches: a bad session is skipped, the rest done


def test_training_reports_and_skips_garbage_only_and_odd_dimension_sessions(world, tmp_path, capsys):
    from nova_infant.icep.synthetic import context_task, write_session

    root, rng = tmp_path / "data", np.random.default_rng(5)
    for name in ("A1", "A2", "A3"):
        x, y = context_task(120, 8, rng, cue=0.5)
        write_session(root, "mix", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
    x, y = context_task(120, 8, rng, cue=0.5)
    write_session(root, "mix", "GARB", {"infant.feat": (x, 25.0, "feature;video;syn")}, np.full(120, -1), 40.0)
    write_session(root, "mix", "WIDE", {"infant.feat": (x[:, :5], 25.0, "feature;video;syn")}, y, 40.0)
    bundle = tmp_path / "bundle"
    code = main(["icep", "train", "--root", str(root), "--dataset", "mix", "--streams", "infant.feat", "--model", "mlp",
                 "--hidden", "4", "--epochs", "1", "--window", "20", "--stride", "10", "--out", str(bundle)])
    err = capsys.readouterr().err
    assert code == 1
    assert "GARB: no labelled frame" in err and "WIDE: 5 dims at 40.00 ms, but the other sessions have 8 dims" in err
    config = json.loads((bundle / "config.json").read_text())["config"]
    assert config["training"]["sessions"] == ["A1", "A2", "A3"]          # neither counted as trained on


def test_cv_with_more_folds_than_sessions_says_how_many_it_uses(world, tmp_path, caplog):
    code = main(["icep", "cv", "--root", world["root"], "--dataset", "ds", "--streams", "infant.feat", "--model", "mlp",
                 "--hidden", "4", "--epochs", "1", "--window", "20", "--stride", "10", "--folds", "5",
                 "--out", str(tmp_path / "cv")])
    assert code == 0
    assert "folds=5 but only 3 usable sessions: using 3 folds" in caplog.text
    assert len(json.loads((tmp_path / "cv" / "cv_report.json").read_text())["folds"]) == 3


def test_predict_batch_reports_an_os_error_and_writes_the_other_sessions(world, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(Path(world["root"]) / "ds", root / "ds")
    name = "infant.ICEP-R-infant-merged.batch.annotation"
    (root / "ds" / "S2" / name).mkdir()                                # S2's output cannot be replaced
    code = main(["icep", "predict", "--root", str(root), "--dataset", "ds", "--bundle", world["bundle"],
                 "--annotator", "batch"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error:") and "S2" in err[0]
    assert (root / "ds" / "S1" / name).is_file() and (root / "ds" / "S3" / name).is_file()
    assert (root / "ds" / "S2" / name).is_dir() and not list((root / "ds" / "S2" / name).iterdir())


def test_dinov2_extract_batch_goes_on_after_a_bad_video(world, tmp_path, capsys):
    out = tmp_path / "streams"
    code = main(["dinov2", "extract", world["cut_mp4"], world["video"], "--model", world["dinov2"], "--device", "cpu",
                 "--size", "28", "--k", "2", "--frame-step", "200ms", "--out-dir", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]  # not the progress bars
    assert code == 1 and len(err) == 1 and "cut.mp4" in err[0]
    # the good video's streams, and the dataset PCA basis fitted on the videos that could be read (pca=dataset)
    assert sorted(p.name for p in out.iterdir()) == ["dinov2_pca_basis", "infant.dinov2.stream",
                                                     "infant.dinov2.stream~", "infant.dinov2cls.stream",
                                                     "infant.dinov2cls.stream~"]
    assert len(list((out / "dinov2_pca_basis").glob("[!.]*"))) == 1


def test_train_head_skips_an_unusable_pair_and_fits_on_the_rest(world, tmp_path, capsys):
    head = tmp_path / "head"
    code = main(["taggers", "train-head", "audio-events", "--out", str(head), "--epochs", "5",
                 "--pair", world["wav"], world["anno"], "--pair", world["nan_wav"], world["anno"]])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert code == 1 and len(err) == 1 and "nan.wav" in err[0] and "pair skipped" in err[0]
    assert (head / "config.json").is_file()


def test_a_full_disk_is_one_line_naming_the_path(world, tmp_path, capsys, monkeypatch):
    import errno

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(os, "replace", full)  # every atomic writer ends in os.replace
    out = tmp_path / "x.csv"
    code = main(["review", "export-csv", world["anno"], "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {out}: ") and "No space left on device" in err[0]
    assert not out.exists()


@pytest.mark.slow
def test_du_process_extraction_batch_skips_the_bad_session_and_writes_the_other(world, du_world):
    root, data = _du_request("w2v_bert", world, du_world)
    result = _du(du_world, "w2v_bert", root, "media", ["nanaudio", "good"], data,
                 {"model": world["w2v"], "device": "cpu"})
    media = Path(root) / "media"
    assert (media / "good" / "out" / "session.w2vbert.stream").is_file(), result.stderr[-2000:]
    assert not (media / "nanaudio" / "out").exists()
    ours = [line for line in result.stderr.splitlines() if line.startswith("session nanaudio: AudioDecodeError")]
    assert len(ours) == 1 and "nan" in ours[0] and "NaN/infinite samples" in ours[0]
    assert result.returncode == 1  # du-process's own rule: any failed session -> exit 1 (docs/troubleshooting.md)
    shutil.rmtree(media / "good" / "out")  # leave the shared session as the other cases expect it


@pytest.mark.slow
def test_du_process_training_skips_a_session_of_another_dimension(du_world, tmp_path):
    from nova_infant.icep.synthetic import context_task, write_session

    root, rng = tmp_path / "data", np.random.default_rng(9)
    for name, dim in (("M1", 8), ("M2", 8), ("M3", 5)):
        x, y = context_task(120, 8, rng, cue=0.5)
        write_session(root, "mix", name, {"infant.feat": (x[:, :dim], 25.0, "feature;video;syn")}, y, 40.0)
    data = [_inp("feature_0", "file:stream:ssistream", root, "infant.feat.stream"),
            _inp("labels", "file:annotation:discrete", root, ANNO)]
    result = _du(du_world, "icep_train", root, "mix", ["M1", "M2", "M3"], data, {**TRAIN_OK, "model_name": "mixdim"})
    bundle = du_world["cml"] / "icep_models" / "mixdim"
    assert (bundle / "config.json").is_file(), result.stderr[-2000:]
    assert json.loads((bundle / "config.json").read_text())["config"]["training"]["sessions"] == ["M1", "M2"]
    assert "session M3: skipped: 5 dims at 40.00 ms, but the other sessions have 8 dims" in result.stderr
    shutil.rmtree(bundle)
    for extra in du_world["cml"].glob("icep_mixdim*.trainer"):
        extra.unlink()
