"""Data safety (issue 9, part A): names that become paths, folders we did not create, atomic replacement of every
output (CLI and du-process), fault injection (a kill at every rename step, a full disk), concurrent writers, and
integrity checks of model bundles, tagger heads and backbone checkpoints.

Every bad case must end in a one-line error naming the file or name (no traceback), leave the previous output
intact and readable, and leave nothing partial behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nova_infant.core import annotations, atomic, streams, trainer_files
from nova_infant.cli import main
from nova_infant.core.errors import OutputError, PathError, SavedModelError, StreamError, WeightsUnavailableError

REPO = Path(__file__).resolve().parents[1]
ANNO = "infant.ICEP-R-infant.gold.annotation"
PRED = "infant.ICEP-R-infant-merged.icep.annotation"


def _stream(rows: int, value: float, dim: int = 3):
    data = np.full((rows, dim), value, np.float32) + np.arange(rows, dtype=np.float32)[:, None]
    return streams.make_ssi_stream(data, 25.0, "feature;test", [f"d{i}" for i in range(dim)], name="x")


def _one_line_error(text: str, *needles: str) -> None:
    """A clean error: one ``error:`` line naming what is wrong, no traceback."""
    lines = [line for line in text.strip().splitlines() if line.startswith("error:")]
    assert "Traceback" not in text, text
    assert lines, text
    for needle in needles:
        assert any(needle in line for line in lines), (needle, text)


def _leftovers(folder: Path) -> list[str]:
    """Staging folders, journals and lock files a writer left behind (none ever stay: after a kill -9 the next
    writer removes what the killed one left, core.staging)."""
    from nova_infant.core.write_policy import FILES_RECORD

    own = (atomic.MARKER, FILES_RECORD)
    return sorted(p.name for p in Path(folder).rglob(".*") if p.name not in own)


# ---------------------------------------------------------------- names that become paths


@pytest.mark.parametrize("name", ["", "  ", ".", "..", "../escape", "../../../victim", "a/b", "x/../../../escaped",
                                  "a\\b", "/abs", "C:evil", "nul\x00byte", "tab\tname", " lead", "trail "])
def test_unsafe_names_are_refused_in_one_line(name):
    with pytest.raises(PathError) as info:
        atomic.safe_name(name, "option model_name")
    assert "option model_name" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["infant", "ICEP-R-infant-merged", "gold", "P001", "s 01", "a..b", "Ünïcode"])
def test_plain_names_pass(name):
    assert atomic.safe_name(name) == name


def _sessions(root, names, n_frames=120, seed=0, dim=6):
    from nova_infant.icep.synthetic import context_task, write_session

    rng = np.random.default_rng(seed)
    for name in names:
        x, y = context_task(n_frames, dim, rng, cue=0.5)
        write_session(root, "ffsf", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)


@pytest.fixture(scope="module")
def icep_data(tmp_path_factory):
    """Three coded synthetic sessions and a tiny MLP bundle trained on them by the CLI."""
    import torch

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("icep")
    root = base / "data"
    _sessions(root, ["P1", "P2", "P3"])
    bundle = base / "models" / "tiny"
    assert main(["icep", "train", "--root", str(root), "--dataset", "ffsf", "--streams", "infant.feat", "--model",
                 "mlp", "--hidden", "8", "--epochs", "2", "--out", str(bundle)]) == 0
    return {"root": root, "bundle": bundle, "base": base}


TRAIN = ["icep", "train", "--dataset", "ffsf", "--streams", "infant.feat", "--model", "mlp", "--hidden", "8",
         "--epochs", "1"]


@pytest.mark.parametrize("flag, value, needle", [
    ("--annotator", "../../x", "--annotator"), ("--scheme", "a/b", "--scheme"), ("--dataset", "..", "--dataset"),
    ("--sessions", "../P1", "--sessions"), ("--streams", "../infant.feat", "--streams")])
def test_cli_train_refuses_path_names(icep_data, tmp_path, capsys, flag, value, needle):
    args = list(TRAIN)
    if flag in args:
        del args[args.index(flag):args.index(flag) + 2]
    code = main([*args, "--root", str(icep_data["root"]), flag, value, "--out", str(tmp_path / "b")])
    _one_line_error(capsys.readouterr().err, needle)
    assert code == 2 and not (tmp_path / "b").exists()


def test_cli_train_never_replaces_a_folder_it_did_not_create(icep_data, tmp_path, capsys):
    victim = tmp_path / "thesis"
    victim.mkdir()
    (victim / "chapter1.docx").write_bytes(b"irreplaceable")
    code = main([*TRAIN, "--root", str(icep_data["root"]), "--out", str(victim)])
    _one_line_error(capsys.readouterr().err, str(victim), "did not create")
    assert code == 2 and (victim / "chapter1.docx").read_bytes() == b"irreplaceable"
    assert sorted(os.listdir(victim)) == ["chapter1.docx"] and _leftovers(tmp_path) == []
    (tmp_path / "afile").write_text("x")  # --out naming an existing file
    assert main([*TRAIN, "--root", str(icep_data["root"]), "--out", str(tmp_path / "afile")]) == 2
    _one_line_error(capsys.readouterr().err, "afile")
    assert (tmp_path / "afile").read_text() == "x"


def test_cli_train_replaces_its_own_bundle_and_an_empty_folder(icep_data, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main([*TRAIN, "--root", str(icep_data["root"]), "--out", str(out)]) == 0
    first = atomic.verify_folder(out)
    assert first["kind"] == "icep-bundle" and set(first["sha256"]) >= {"config.json", "model.safetensors"}
    assert main([*TRAIN, "--root", str(icep_data["root"]), "--out", str(out), "--seed", "3"]) == 0
    assert atomic.verify_folder(out)["sha256"]["model.safetensors"] != first["sha256"]["model.safetensors"]
    assert _leftovers(tmp_path) == []


def test_cli_predict_annotator_cannot_escape_the_session(icep_data, tmp_path, capsys):
    code = main(["icep", "predict", "--root", str(icep_data["root"]), "--dataset", "ffsf", "--bundle",
                 str(icep_data["bundle"]), "--annotator", "x/../../../escaped"])
    _one_line_error(capsys.readouterr().err, "--annotator", "x/../../../escaped")
    assert code == 2
    assert not [p for p in icep_data["base"].rglob("*escaped*")]
    assert not list(icep_data["root"].rglob(f"*{PRED[-20:]}"))


def _du(args, cwd):
    exe = Path(sys.executable).parent / "du-process"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(exe) if exe.exists() else "du-process", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


@pytest.fixture
def cml_dir(tmp_path):
    from nova_infant.specs.icep import PREDICT, TRAIN_SPECS

    target = tmp_path / "cml" / "nova_infant"
    shutil.copytree(REPO / "trainers" / "nova_infant", target,
                    ignore=shutil.ignore_patterns("icep_models", "icep_*-*.trainer"))
    trainer_files.write_trainer(target / "icep_train.trainer", TRAIN_SPECS["icep_train_infant_dinov2"].trainer_spec())
    trainer_files.write_trainer(target / "icep_predict.trainer", PREDICT.trainer_spec())
    return target


def _common(tmp_path, cml_dir):
    return ["--cml_dir", str(cml_dir.parent), "--cache_dir", str(tmp_path / "c"), "--tmp_dir", str(tmp_path / "t"),
            "--log_dir", str(tmp_path / "l"), "--dataset", "ffsf"]


@pytest.mark.slow
def test_du_process_model_name_cannot_delete_or_escape(tmp_path, cml_dir):
    root = tmp_path / "data"
    _sessions(root, ["S1", "S2"])
    victim = tmp_path / "victim"  # <cml>/nova_infant/icep_models/../../../victim
    victim.mkdir()
    (victim / "notes.txt").write_text("keep me")
    feature = {"id": "feature_0", "type": "input", "src": "file:stream:ssistream",
               "uri_template": f"{root}/{{dataset}}/{{session}}/infant.feat.stream"}
    labels = {"id": "labels", "type": "input", "src": "file:annotation:discrete",
              "uri_template": f"{root}/{{dataset}}/{{session}}/{ANNO}"}
    for name in ("../../../victim", "../../nova_infant"):
        run = _du(["--trainer_file_path", "nova_infant\\icep_train.trainer", *_common(tmp_path, cml_dir),
                   "--sessions", '["S1","S2"]', "--data", json.dumps([feature, labels]),
                   "--options", json.dumps({"model_name": name, "model": "mlp", "hidden": 8, "epochs": 1})], tmp_path)
        text = run.stdout + run.stderr
        assert run.returncode == 1 and f"option model_name {name!r}: not a plain name" in text, text[-3000:]
    assert (victim / "notes.txt").read_text() == "keep me" and sorted(os.listdir(victim)) == ["notes.txt"]
    assert not list(tmp_path.rglob("config.json")) and (cml_dir / "icep_predict.py").is_file()


@pytest.mark.slow
def test_du_process_session_name_cannot_write_outside_the_data_folder(tmp_path, cml_dir, icep_data):
    root = tmp_path / "data"
    _sessions(root, ["S1"])
    escape = tmp_path / "data" / "escape"  # <root>/ffsf/../escape: inputs readable there, outputs must not land
    shutil.copytree(root / "ffsf" / "S1", escape)
    before = sorted(os.listdir(escape))
    feature = {"id": "feature_0", "type": "input", "src": "file:stream:ssistream",
               "uri_template": f"{root}/{{dataset}}/{{session}}/infant.feat.stream"}
    out = {"id": "annotation", "type": "output", "src": "file:annotation:discrete",
           "uri_template": f"{root}/{{dataset}}/{{session}}/{PRED}"}
    run = _du(["--trainer_file_path", "nova_infant\\icep_predict.trainer", *_common(tmp_path, cml_dir),
               "--sessions", '["../escape", "S1"]', "--data", json.dumps([feature, out]),
               "--options", json.dumps({"bundle": str(icep_data["bundle"])})], tmp_path)
    text = run.stdout + run.stderr
    assert run.returncode == 1 and "session '../escape': not a plain name" in text, text[-3000:]
    assert sorted(os.listdir(escape)) == before
    assert (root / "ffsf" / "S1" / PRED).is_file()  # the batch went on with the good session


@pytest.mark.slow
def test_du_process_full_disk_keeps_the_previous_annotation(tmp_path, cml_dir, icep_data, small_disk):
    shutil.copytree(icep_data["root"] / "ffsf", small_disk / "ffsf")
    feature = {"id": "feature_0", "type": "input", "src": "file:stream:ssistream",
               "uri_template": f"{small_disk}/{{dataset}}/{{session}}/infant.feat.stream"}
    out = {"id": "annotation", "type": "output", "src": "file:annotation:discrete",
           "uri_template": f"{small_disk}/{{dataset}}/{{session}}/{PRED}"}
    args = ["--trainer_file_path", "nova_infant\\icep_predict.trainer", *_common(tmp_path, cml_dir),
            "--sessions", '["P1", "P2"]', "--data", json.dumps([feature, out])]
    first = _du([*args, "--options", json.dumps({"bundle": str(icep_data["bundle"])})], tmp_path)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    old = {p: p.read_bytes() for p in small_disk.rglob(PRED + "*")}
    assert len(old) == 4
    _fill(small_disk)
    second = _du([*args, "--options", json.dumps({"bundle": str(icep_data["bundle"]), "min_dur_ms": 400})], tmp_path)
    text = second.stdout + second.stderr
    one_liners = [line for line in text.splitlines() if line.startswith(f"OutputError: {small_disk}/ffsf/")]
    assert second.returncode == 1 and len(one_liners) == 2, text[-3000:]  # one per session, before du-process's trace
    assert all("cannot write (No space left on device" in line for line in one_liners)
    assert {p: p.read_bytes() for p in small_disk.rglob(PRED + "*")} == old
    (small_disk / "filler").unlink()
    assert _leftovers(small_disk) == []


# ---------------------------------------------------------------- atomic pairs, locks, fault injection


def test_pair_header_records_the_data_checksum_and_a_mismatch_is_detected(tmp_path):
    path = streams.write_ssi_stream(_stream(10, 1.0), tmp_path / "a.stream")
    other = streams.write_ssi_stream(_stream(10, 2.0), tmp_path / "b.stream")
    assert 'data_check="' in path.read_text() and streams.open_ssi_stream(path).n_rows == 10
    shutil.copy(str(other) + "~", str(path) + "~")  # same size, other content: only the checksum can tell
    with pytest.raises(StreamError, match=r"a\.stream: header and data file a\.stream~ do not belong together"):
        streams.open_ssi_stream(path)
    # a re-saved stream keeps exactly one, fresh checksum
    stream = streams.load_ssi_stream(other)
    resaved = atomic.save_atomic(stream, tmp_path / "d.stream")
    assert resaved.read_text().count("data_check") == 1 and streams.open_ssi_stream(resaved).n_rows == 10


def test_pair_check_of_a_long_stream_sees_its_last_row(tmp_path):
    rows = 3 * (1 << 20) // 16  # 3 MiB of float32 x 4: the check hashes the first and the last MiB
    path = streams.write_ssi_stream(_stream(rows, 1.0, dim=4), tmp_path / "long.stream")
    assert streams.open_ssi_stream(path).n_rows == rows
    data = np.fromfile(str(path) + "~", np.float32)
    data[-1] += 1.0  # the last row changed without its header
    data.tofile(str(path) + "~")
    with pytest.raises(StreamError, match="do not belong together"):
        streams.open_ssi_stream(path)


FAULT_SCRIPT = textwrap.dedent('''
    """For one target: count the filesystem steps of writing the new output, then for each k write the old output
    into <base>/k<k> and let a forked writer of the new one die like kill -9 at its k-th step. Prints JSON."""
    import json, os, shutil, sys
    sys.path.insert(0, sys.argv[3])
    import test_data_safety as t

    target, base = sys.argv[1], sys.argv[2]

    def hooked(k, send):
        steps = [0]
        def hook(name, real):
            def wrapped(*a, **kw):
                steps[0] += 1
                if steps[0] == k:
                    os.write(send, name.encode())
                    os._exit(137)  # like kill -9: no cleanup, no finally blocks
                return real(*a, **kw)
            return wrapped
        for mod, name in ((os, "replace"), (os, "rename"), (os, "link"), (os, "unlink"), (os, "rmdir"),
                          (os, "mkdir"), (shutil, "rmtree")):
            setattr(mod, name, hook(name, getattr(mod, name)))
        return steps

    def fork_write(k, folder):
        read, send = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            steps = hooked(k, send)
            t._write(target, t.Path(folder), "new")
            os.write(send, str(steps[0]).encode())
            os._exit(0)
        os.close(send)
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read) as handle:
            return os.waitstatus_to_exitcode(status), handle.read()

    os.makedirs(os.path.join(base, "k0"))
    t._write(target, t.Path(base, "k0"), "old")
    code, steps = fork_write(0, os.path.join(base, "k0"))
    assert code == 0, code
    calls = []
    for k in range(1, int(steps) + 1):
        folder = os.path.join(base, f"k{k}")
        os.makedirs(folder)
        t._write(target, t.Path(folder), "old")
        calls.append(fork_write(k, folder))
    print(json.dumps(calls))
''')


def _write(target: str, folder: Path, version: str) -> Path:
    """The old or the new version of one output kind; returns the path a reader opens."""
    old = version == "old"
    if target in ("stream", "du-process"):
        stream, path = (_stream(10, 1.0) if old else _stream(20, 7.0)), folder / "r.x.stream"
        if target == "du-process":  # discover-utils' writer as du-process calls it (wrapped by our adapters)
            import nova_infant.discover.common  # noqa: F401
            from discover_utils.data.handler.file_handler import FileHandler

            FileHandler().save(stream, path)
        else:
            streams.write_ssi_stream(stream, path)
        return path
    if target == "annotation":
        from nova_infant.icep.schemes import full_scheme, write_discrete_annotation

        labels = np.repeat([0, 4], 5) if old else np.repeat([1, 2, 3], 10)
        return write_discrete_annotation(folder / "r.s.a.annotation", full_scheme("infant"),
                                         annotations.frames_to_segments(labels, 40.0), "r", "a")
    with atomic.atomic_dir(folder / "bundle", "test") as tmp:
        (tmp / "model.bin").write_bytes((b"old" if old else b"new") * (500 if old else 1000))
        (tmp / "config.json").write_text(json.dumps({"v": version}))
    return folder / "bundle"


def _write_old(target: str, folder: Path) -> Path:
    return _write(target, folder, "old")


def _recover(target: str, path: Path) -> None:
    """What the next writer of ``path`` does first (readers never write): finish or roll back an interrupted
    replacement."""
    with atomic.output_lock(path):
        if target == "folder":
            atomic._recover_dir(path)
        else:
            atomic.recover_output(path)


def _read(target: str, path: Path):
    """What a reader sees after the next writer's recovery (:func:`_recover`)."""
    _recover(target, path)
    if target in ("stream", "du-process"):
        view = streams.open_ssi_stream(path)
        assert streams.load_ssi_stream(path).data.shape == view.data.shape  # discover-utils reads it too
        first = float(view.data[0, 0])
        return {(10, 1.0): "old", (20, 7.0): "new"}.get((view.n_rows, first), "bad")
    if target == "annotation":
        ids = annotations.read_annotation(path).data["id"].tolist()
        return {(0, 4): "old", (1, 2, 3): "new"}.get(tuple(ids), "bad")
    atomic.verify_folder(path, required=("model.bin", "config.json"))
    return json.loads((path / "config.json").read_text())["v"]


@pytest.mark.parametrize("target", ["stream", "annotation", "du-process", "folder"])
def test_a_kill_at_every_filesystem_step_leaves_the_previous_output_intact(tmp_path, target):
    script = tmp_path / "fault.py"
    script.write_text(FAULT_SCRIPT)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), target, str(tmp_path), str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    calls = json.loads(done.stdout.strip().splitlines()[-1])
    steps = len(calls)
    assert steps >= 4 and [code for code, _ in calls] == [137] * steps, calls
    paths = {k: tmp_path / f"k{k}" / ("bundle" if target == "folder" else
                                      "r.s.a.annotation" if target == "annotation" else "r.x.stream")
             for k in range(1, steps + 1)}
    states = [_read(target, paths[k]) for k in range(1, steps + 1)]  # readers roll an interrupted write back
    seen = [(call, state) for (_, call), state in zip(calls, states)]
    # old until the commit rename, new after it; a kill after the first rename but before the commit keeps old
    assert states == sorted(states, key=["old", "new"].index) and states[-1] == "new", seen
    replaces = [i for i, (call, _) in enumerate(seen) if call == "replace"]
    assert len(replaces) >= 2 and states[replaces[1]] == "old", seen
    # the next run starts clean: what the killed writer left is recovered or removed (its staging entries and lock
    # file carry its pid and this host's tag: core.staging)
    for k in range(1, steps + 1):
        _write(target, tmp_path / f"k{k}", "new")
        assert _read(target, paths[k]) == "new" and _leftovers(tmp_path / f"k{k}") == [], (k, seen[k - 1])


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (CI runs as root); skipped with the reason when it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("filling a small disk needs root to mount a 1 MiB tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path, leave: int = 0) -> None:
    """Fill the file system of ``folder`` up to ``leave`` free bytes (unbuffered writes until ENOSPC)."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    if leave:
        os.ftruncate(fd, max(os.fstat(fd).st_size - leave, 0))
    os.close(fd)


def test_full_disk_keeps_the_previous_stream_annotation_and_folder(small_disk):
    from nova_infant.icep.schemes import full_scheme, write_discrete_annotation

    import nova_infant.discover.common  # noqa: F401  (du-process path: the wrapped FileHandler)
    from discover_utils.data.handler.file_handler import FileHandler

    stream = _write_old("stream", small_disk)
    anno = _write_old("annotation", small_disk)
    folder = _write_old("folder", small_disk)
    big = _stream(30000, 5.0, dim=4)  # 480 kB: fits once, not twice
    _fill(small_disk, leave=100_000)
    attempts = [
        lambda: streams.write_ssi_stream(big, stream),
        lambda: FileHandler().save(big, stream),
        lambda: write_discrete_annotation(anno, full_scheme("infant"),
                                          annotations.frames_to_segments(np.arange(60000) % 7, 40.0), "r", "a"),
    ]
    for attempt in attempts:
        with pytest.raises(OutputError) as info:
            attempt()
        text = str(info.value)
        assert text.startswith(f"{small_disk}/r.") and "cannot write (" in text and " MB free there" in text, text
        assert "previous version is kept" in text and "\n" not in text
    with pytest.raises(OutputError, match="bundle: cannot write"):
        with atomic.atomic_dir(folder, "test") as tmp:
            (tmp / "model.bin").write_bytes(b"x" * 400_000)
    assert _read("stream", stream) == "old" and _read("annotation", anno) == "old" and _read("folder", folder) == "old"
    assert _leftovers(small_disk) == []


def test_full_disk_in_a_cli_batch_is_one_line_and_keeps_the_old_annotation(icep_data, small_disk, capsys):
    shutil.copytree(icep_data["root"] / "ffsf", small_disk / "ffsf")
    args = ["icep", "predict", "--root", str(small_disk), "--dataset", "ffsf", "--bundle", str(icep_data["bundle"]),
            "--probabilities"]
    assert main(args) == 0
    capsys.readouterr()
    old = {p: p.read_bytes() for p in small_disk.rglob("*.annotation*")}
    _fill(small_disk)
    code = main(args + ["--min-dur-ms", "400"])
    err = capsys.readouterr().err
    # every session failed: nothing usable was left, so exit code 2 (1 = some sessions skipped, the rest written)
    assert code == 2 and err.count("No space left on device") == 3 and "Traceback" not in err
    assert {p: p.read_bytes() for p in small_disk.rglob("*.annotation*")} == old
    (small_disk / "filler").unlink()
    assert _leftovers(small_disk) == []


CONCURRENT_SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    from nova_infant.core import streams
    path, seed = sys.argv[1], int(sys.argv[2])
    for i in range(25):
        rows = 50 + 37 * ((seed * 25 + i) % 11)
        data = np.full((rows, 8), seed * 1000 + i, np.float32)
        streams.write_ssi_stream(streams.make_ssi_stream(data, 25.0, "feature;t", list("abcdefgh")), path)
''')


def test_concurrent_writers_to_one_stream_take_turns(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(CONCURRENT_SCRIPT)
    target = tmp_path / "out" / "r.x.stream"
    runs = [subprocess.Popen([sys.executable, str(script), str(target), str(seed)], stderr=subprocess.PIPE, text=True)
            for seed in (1, 2, 3)]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], errors
    view = streams.open_ssi_stream(target)  # size and checksum agree with the header
    assert len(np.unique(view.data)) == 1 and _leftovers(target.parent) == []


def test_a_writer_that_cannot_get_the_lock_fails_clearly(tmp_path, monkeypatch):
    path = streams.write_ssi_stream(_stream(10, 1.0), tmp_path / "r.x.stream")
    monkeypatch.setattr(atomic, "LOCK_TIMEOUT_S", 0.3)
    with atomic.output_lock(path):
        with pytest.raises(OutputError, match=r"r\.x\.stream: another run is writing this output"):
            streams.write_ssi_stream(_stream(20, 2.0), path)
    assert _read("stream", path) == "old"


def test_read_only_folder_is_one_line(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the full-disk tests cover OSError on write")
    folder = tmp_path / "ro"
    folder.mkdir()
    path = streams.write_ssi_stream(_stream(10, 1.0), folder / "r.x.stream")
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="cannot write"):
            streams.write_ssi_stream(_stream(20, 2.0), path)
    finally:
        folder.chmod(0o755)


# ---------------------------------------------------------------- integrity: bundles, heads, backbones


def _edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _reseal(folder: Path) -> None:
    """Re-write the ``checksums`` of a damaged saved model for its present files (as if saved damaged), so the
    content checks themselves run."""
    import hashlib

    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in ("checksums", atomic.MARKER))
    (folder / "checksums").write_text("".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n"
                                              for n in names))


def _config(doc: dict) -> dict:
    return doc["config"]  # what the bundle/head saved, inside the saved-model envelope


BUNDLE_CASES = {
    "nan-normaliser": ("normaliser.json", lambda b: _edit_json(b / "normaliser.json", lambda d: d["mean"].__setitem__(0, float("nan"))), "normaliser.json: mean holds NaN"),
    "short-normaliser": ("normaliser.json", lambda b: _edit_json(b / "normaliser.json", lambda d: d["scale"].pop()), "normaliser.json: scale has 5 values"),
    "zero-scale": ("normaliser.json", lambda b: _edit_json(b / "normaliser.json", lambda d: d["scale"].__setitem__(1, 0.0)), "scale must be > 0"),
    "2-class-label-map": ("config.json", lambda b: _edit_json(b / "config.json", lambda d: _config(d)["label_map"].__setitem__("classes", _config(d)["label_map"]["classes"][:2])), "label map has 2 classes"),
    "window-0": ("config.json", lambda b: _edit_json(b / "config.json", lambda d: _config(d)["training_config"].__setitem__("window", 0)), "window 0"),
    "stride-0": ("config.json", lambda b: _edit_json(b / "config.json", lambda d: _config(d)["training_config"].__setitem__("stride", 0)), "stride 0"),
    "wrong-in-dim": ("config.json", lambda b: _edit_json(b / "config.json", lambda d: _config(d)["architecture"].__setitem__("in_dim", 7)), "takes 7 features"),
    "garbage-config": ("config.json", lambda b: (b / "config.json").write_text("{not json"), "config.json: unreadable"),
    "no-architecture": ("config.json", lambda b: _edit_json(b / "config.json", lambda d: _config(d).pop("architecture")), "config.json: unreadable"),
    "missing-weights": ("model.safetensors", lambda b: (b / "model.safetensors").unlink(), "model.safetensors: missing"),
    "missing-normaliser": ("normaliser.json", lambda b: (b / "normaliser.json").unlink(), "normaliser.json: missing"),
    "truncated-weights": ("model.safetensors", lambda b: (b / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes()[:100]), "model.safetensors: unreadable tensors"),
}


@pytest.mark.parametrize("case", sorted(BUNDLE_CASES))
@pytest.mark.parametrize("marked", [True, False], ids=["checksums", "content-checks"])
def test_damaged_bundle_is_one_line_naming_the_file(icep_data, tmp_path, capsys, case, marked):
    name, damage, message = BUNDLE_CASES[case]
    bundle = tmp_path / "bundle"
    shutil.copytree(icep_data["bundle"], bundle)
    damage(bundle)
    if not marked:
        _reseal(bundle)
    with pytest.raises(SavedModelError) as info:
        from nova_infant.icep.bundle import load_bundle

        load_bundle(bundle)
    text = str(info.value)
    assert "\n" not in text and str(bundle / name) in text, text
    if not marked or "missing" in case:
        assert message in text, text
    else:
        assert "differs from its recorded SHA-256" in text, text
    session = icep_data["root"] / "ffsf" / "P1"
    before = sorted(os.listdir(session))
    code = main(["icep", "predict", "--root", str(icep_data["root"]), "--dataset", "ffsf", "--sessions", "P1",
                 "--bundle", str(bundle)])
    _one_line_error(capsys.readouterr().err, name)
    assert code == 2 and sorted(os.listdir(session)) == before


def _head(tmp_path):
    from nova_infant.taggers.heads import fit_head

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 6)).astype(np.float32), np.arange(40) % 2
    head = fit_head(x, y, ["a", "b"], kind="emotion", embedding="test", multilabel=False, epochs=2)
    return head.save(tmp_path / "head")


HEAD_CASES = {  # edited file, file the content check names, damage, message of the content check
    "nan-mean": ("config.json", "config.json", lambda h: _edit_json(h / "config.json", lambda d: _config(d)["mean"].__setitem__(0, float("nan"))), "mean must hold 6 finite"),
    "short-scale": ("config.json", "config.json", lambda h: _edit_json(h / "config.json", lambda d: _config(d)["scale"].pop()), "scale must hold 6 finite"),
    "duplicate-classes": ("config.json", "config.json", lambda h: _edit_json(h / "config.json", lambda d: _config(d).__setitem__("classes", ["a", "a"])), "distinct"),
    "three-classes": ("config.json", "model.safetensors", lambda h: _edit_json(h / "config.json", lambda d: _config(d).__setitem__("classes", ["a", "b", "c"])), "weights do not fit"),
    "missing-weights": ("model.safetensors", "model.safetensors", lambda h: (h / "model.safetensors").unlink(), "missing"),
    "garbage-config": ("config.json", "config.json", lambda h: (h / "config.json").write_text("[]"), "unreadable"),
}


@pytest.mark.parametrize("case", sorted(HEAD_CASES))
@pytest.mark.parametrize("marked", [True, False], ids=["checksums", "content-checks"])
def test_damaged_tagger_head_is_one_line_naming_the_file(tmp_path, case, marked, one_torch_thread):
    from nova_infant.taggers.heads import Head

    edited, reported, damage, message = HEAD_CASES[case]
    head = _head(tmp_path)
    assert Head.load(head, "emotion").cfg.classes == ["a", "b"]
    damage(head)
    if not marked:
        _reseal(head)
    with pytest.raises(SavedModelError) as info:
        Head.load(head, "emotion")
    text = str(info.value)
    assert "\n" not in text, text
    if marked and "missing" not in case:
        assert str(head / edited) in text and "recorded SHA-256" in text, text
    else:
        assert str(head / reported) in text and message in text, text


def test_tagger_head_never_replaces_a_foreign_folder(tmp_path, one_torch_thread):
    (tmp_path / "head").mkdir()
    (tmp_path / "head" / "data.csv").write_text("1,2")
    with pytest.raises(PathError, match="did not create"):
        _head(tmp_path)
    assert (tmp_path / "head" / "data.csv").read_text() == "1,2"


def test_backbone_with_weights_of_another_architecture_fails_naming_the_folder(tiny_dinov2, tiny_w2v_bert, tmp_path):
    from nova_infant.core.backbones import load_dinov2, load_w2v_bert

    mixed = tmp_path / "dinov2-with-w2v-weights"
    shutil.copytree(tiny_dinov2, mixed)
    shutil.copy(Path(tiny_w2v_bert) / "model.safetensors", mixed / "model.safetensors")
    with pytest.raises(WeightsUnavailableError) as info:
        load_dinov2(str(mixed), device="cpu", bf16=False)
    assert str(mixed) in str(info.value) and "missing" in str(info.value) and "unexpected" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(WeightsUnavailableError, match="holds a dinov2 checkpoint, expected w2v-bert"):
        load_w2v_bert(tiny_dinov2, device="cpu", bf16=False)
    with pytest.raises(WeightsUnavailableError, match="holds a wav2vec2-bert checkpoint, expected dinov2"):
        load_dinov2(tiny_w2v_bert, device="cpu", bf16=False)


def test_backbone_with_a_missing_weight_fails(tiny_dinov2, tmp_path):
    from safetensors.torch import load_file, save_file

    from nova_infant.core.backbones import load_dinov2

    partial = tmp_path / "partial"
    shutil.copytree(tiny_dinov2, partial)
    state = load_file(str(partial / "model.safetensors"))
    dropped = sorted(k for k in state if k.endswith("attention.output.dense.weight"))[0]
    save_file({k: v for k, v in state.items() if k != dropped}, str(partial / "model.safetensors"),
              metadata={"format": "pt"})
    with pytest.raises(WeightsUnavailableError, match=r"partial: weights do not fit the DINOv2 architecture.*1 missing"):
        load_dinov2(str(partial), device="cpu", bf16=False)
    assert load_dinov2(tiny_dinov2, device="cpu", bf16=False).is_standin


def test_only_staging_a_killed_run_of_ours_left_is_removed_by_the_next_writer(tmp_path):
    """core.staging: an entry is removed only with this host's tag for its pid, that pid not running, and not a
    symlink; a person's look-alikes, a running process's staging and another host's tag stay."""
    from nova_infant.core import staging

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    name = "r.x.stream"
    target = streams.write_ssi_stream(_stream(10, 1.0), tmp_path / name)
    other_host = f"{dead_pid}-{'0123456789abcdef'[:10]}"
    assert other_host != staging.owner_tag(dead_pid)
    left = {f".{name}.partial-{staging.owner_tag(dead_pid)}-abc": "dir",      # ours, killed: removed
            f".{name}.deleting-{staging.owner_tag(dead_pid)}-def": "dir",     # ours, killed mid-delete: removed
            f".{name}.partial-{staging.owner_tag(dead_pid)}-ghi.png": "file",  # ours, killed: removed
            f".{name}.partial-mine": "dir",                                   # a person's look-alike: kept
            f".{name}.partial-{other_host}-abc": "dir",                       # wrong tag (another host): kept
            f".{name}.partial-{staging.owner_tag(1)}-abc": "dir",             # pid 1 runs: kept
            f".{name}.partial-{staging.owner_tag(os.getpid())}-abc": "dir"}   # this process's own: kept
    for entry, kind in left.items():
        if kind == "dir":
            (tmp_path / entry).mkdir()
            (tmp_path / entry / "keep.txt").write_text("x")
        else:
            (tmp_path / entry).write_text("x")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("a person's file")
    link = tmp_path / f".{name}.partial-{staging.owner_tag(dead_pid)}-lnk"
    link.symlink_to(precious)                                                  # a symlink: never followed
    (tmp_path / f".{name}.lock").write_text(staging.owner_tag(dead_pid))      # a killed run's lock file
    streams.write_ssi_stream(_stream(20, 7.0), target)
    assert _read("stream", target) == "new"
    gone = {e for e in left if not (tmp_path / e).exists()}
    assert gone == set(list(left)[:3])
    assert link.is_symlink() and (precious / "keep.txt").read_text() == "a person's file"
    assert not (tmp_path / f".{name}.lock").exists()
    (tmp_path / f".{name}.lock").write_text("a person's notes")             # not a tag: opened, never deleted
    streams.write_ssi_stream(_stream(20, 7.0), target)
    assert (tmp_path / f".{name}.lock").read_text() == "a person's notes"
