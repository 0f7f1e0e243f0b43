"""The write policy as a property (issue #21; core.write_policy): every writer entry point, pointed at its inputs, a
person's file, a folder of another kind or a name with ``..``/``/``, changes no byte under the test root, creates
nothing outside the folders it was given and stops with one line.

Entry points are enumerated from the ``nova-infant`` argument parser (sub-parsers, recursively; ``run <module>`` comes
from the spec registry), so a new command is covered without a line here. A command that writes nothing is declared
in ``READ_ONLY`` (checked: it must exist). ``RECIPES`` gives some commands real inputs, so that the policy itself
(not an earlier input check) is what refuses; every other command runs with placeholder inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from nova_infant.cli import build_parser, main
from nova_infant.core import annotations, atomic, streams, write_policy
from nova_infant.core.errors import PathError

#: commands that write no file (the test checks each still exists)
READ_ONLY = {"check-trainers": "parses .trainer files", "import-schemes": "NOVA database only",
             "icep import-schemes": "NOVA database only", "review agreement": None, "taggers evaluate": None}
# "review agreement" and "taggers evaluate" write only with --json/--png/--figure: they are writers (below)
READ_ONLY = {k: v for k, v in READ_ONLY.items() if v}


def _commands(parser=None, prefix=()):
    """``(command words, sub-parser)`` of every leaf command of the parser, recursively."""
    parser = parser or build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for action in subs:
        for name, sub in action.choices.items():
            yield from _commands(sub, (*prefix, name))


COMMANDS = {" ".join(words): sub for words, sub in _commands()}
WRITERS = sorted(c for c in COMMANDS if c not in READ_ONLY)


def _tree(root: Path) -> dict:
    """Every path under ``root``: file -> sha256, folder -> 'dir', link -> its target."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _run(argv, capsys) -> tuple[int, str]:
    import logging

    before = list(logging.root.handlers)
    for handler in before:  # main() logs to the stderr of this call, not an earlier test's
        logging.root.removeHandler(handler)
    raising, logging.raiseExceptions = logging.raiseExceptions, False  # libraries' handlers bound to an old stderr
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    finally:
        logging.raiseExceptions = raising
        for handler in list(logging.root.handlers):  # as it was for the tests that follow
            logging.root.removeHandler(handler)
        for handler in before:
            logging.root.addHandler(handler)
    captured = capsys.readouterr()
    return code, captured.err


def _one_line(err: str) -> list[str]:
    """The command's own ``error:`` lines (per-session report lines ``error: session <name>: ...`` of a command
    that goes on with the other sessions are not counted); no traceback."""
    lines = [line for line in err.strip().splitlines()
             if line.startswith("error:") and not line.startswith("error: session ")]
    assert "Traceback" not in err, err
    return lines


def _stream_file(path: Path, rows: int = 50, dim: int = 4) -> Path:
    data = np.arange(rows * dim, dtype=np.float32).reshape(rows, dim) / 100
    return streams.write_ssi_stream(streams.make_ssi_stream(data, 25.0, "feature;video;syn",
                                                            [f"d{i}" for i in range(dim)]), path)


def _coders_annotation(path: Path) -> Path:
    """A discrete annotation as a coder's NOVA saves it: no nova-infant mark in the header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('<?xml version="1.0" ?>\n<annotation ssi-v="3">\n    <info ftype="ASCII" size="2"/>\n'
                    '    <meta annotator="gold" role="infant"/>\n    <scheme name="ICEP-R-infant" type="DISCRETE">\n'
                    '        <item name="Ipos" id="0"/>\n        <item name="Ineu" id="1"/>\n    </scheme>\n'
                    '</annotation>\n')
    Path(str(path) + "~").write_text("0.00;1.00;0;1.00\n1.00;2.00;1;1.00\n")
    return path


def _other_kind_folder(path: Path) -> Path:
    """A nova-infant folder of another kind (a cry-reason model with the lab's licence file beside it)."""
    with atomic.atomic_dir(path, "cry-reason-model") as tmp:
        (tmp / "config.json").write_text("{}")
    (path / "LICENSE.txt").write_text("the lab's licence\n")
    return path


@pytest.fixture
def world(tmp_path):
    """A test root with inputs of every kind: a session (video, audio, a coder's annotation, a stream), a person's
    files, a folder of another kind."""
    from nova_infant.core.sample_media import write_wav

    root = tmp_path / "root"
    session = root / "data" / "ds" / "S1"
    session.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_wav(session / "session.audio.wav", rng.uniform(-0.1, 0.1, 8000).astype(np.float32), 16000)
    (session / "infant.video.mp4").write_bytes(b"\0\0\0 ftypisom" + bytes(200))  # a recording (not decodable)
    _coders_annotation(session / "infant.ICEP-R-infant.gold.annotation")
    _stream_file(session / "infant.feat.stream")
    person = root / "person"
    person.mkdir()
    (person / "notes.txt").write_text("a person's notes\n")
    _other_kind_folder(root / "other-kind")
    return {"root": root, "session": session, "person": person / "notes.txt", "other": root / "other-kind"}


# ---------------------------------------------------------------- the enumeration


def test_every_command_is_enumerated_and_read_only_is_explicit():
    assert len(COMMANDS) >= 40 and "run dinov2-pca" in COMMANDS and "icep predict" in COMMANDS
    assert set(READ_ONLY) <= set(COMMANDS), set(READ_ONLY) - set(COMMANDS)
    from nova_infant.specs.registry import SPECS

    for spec in SPECS.values():  # the spec registry: every module is a `run` command
        assert f"run {spec.command}" in COMMANDS


def _placeholder_args(sub: argparse.ArgumentParser, world: dict, out, override: dict | None = None) -> list[str]:
    """Fill every required argument: outputs with ``out``, choices with the first, anything else with an input
    file of the world (a stream)."""
    override = override or {}
    argv, tail = [], []
    stream = world["session"] / "infant.feat.stream"
    for action in sub._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)) or action.dest == "help":
            continue
        if action.dest in override:
            value = override[action.dest]
        elif not action.option_strings or action.required:
            if action.dest in write_policy.OUTPUT_DESTS or action.dest in ("out_dir", "root"):
                value = out
            elif action.dest in write_policy.NAME_DESTS or action.dest in PLAIN:
                value = PLAIN.get(action.dest, "x")
            elif action.choices:
                value = list(action.choices)[0]
            elif action.nargs == 0:
                value = None
            else:
                value = stream
        else:
            continue
        values = value if isinstance(value, list) else [value]
        if action.option_strings:
            if action.nargs == 0:
                argv.append(action.option_strings[0])
            else:
                argv += [action.option_strings[0], *[str(v) for v in values]]
        else:
            tail += [str(v) for v in values]
    return tail + argv


PLAIN = {"trainer": "dinov2_pca", "dataset": "ds", "session": "S1", "sessions": "S1", "role": "infant", "annotator": "policy-test",
         "streams": "infant.feat", "scheme": "ICEP-R-infant"}


def _output_actions(sub):
    return [a for a in sub._actions if a.dest in write_policy.OUTPUT_DESTS or a.dest == "out_dir"]


def _name_actions(sub):
    return [a for a in sub._actions if a.dest in write_policy.NAME_DESTS or a.dest == "io"]


#: writers without an output argument: they write into the session folders they read (tested one by one below)
INTO_SESSIONS = {"icep predict": "test_icep_predict_annotator_gold_over_a_coders_annotation_is_refused",
                 "sample-session": "test_sample_session_into_an_existing_session_is_refused"}
CASES = [(c, kind) for c in WRITERS if c not in INTO_SESSIONS for kind in ("input", "person", "other-kind")]
#: cases that run a whole job into the folder they were given (minutes): the ``slow`` set
SLOW = {("demo", "other-kind"), ("taggers crying-cv", "other-kind"), ("taggers train-crying-head", "other-kind")}


@pytest.mark.parametrize("command,case", [pytest.param(c, k, marks=pytest.mark.slow) if (c, k) in SLOW else (c, k)
                                          for c, k in CASES], ids=[f"{c}:{k}" for c, k in CASES])
def test_output_at_an_input_a_persons_file_or_another_kind_changes_nothing(command, case, world, capsys):
    """(a) each input, (b) a same-named file a person made, (c) a folder of another kind: no byte changes under the
    root, nothing is created outside the output named, and the exit code is non-zero with one line (a command that
    writes into a given folder may succeed in (c), adding files inside it only)."""
    sub = COMMANDS[command]
    outs = _output_actions(sub)
    target = {"input": world["session"] / "infant.feat.stream", "person": world["person"],
              "other-kind": world["other"]}[case]
    override = {a.dest: target for a in outs}
    argv = [*command.split(), *_placeholder_args(sub, world, target, override)]
    before = _tree(world["root"])
    code, err = _run(argv, capsys)
    after = _tree(world["root"])
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not changed, (argv, changed, err)
    created = sorted(set(after) - set(before))
    inside = target.relative_to(world["root"]).as_posix() + "/"
    assert all(c.startswith(inside) for c in created), (argv, created)
    if code == 0:
        assert case == "other-kind" and target.is_dir(), (argv, "exit 0", err)
    else:
        assert len(_one_line(err)) == 1, (argv, err)


NAME_CASES = [(c, a.dest, bad) for c in WRITERS for a in _name_actions(COMMANDS[c]) for bad in ("../escape", "/abs")]


@pytest.mark.parametrize("command,dest,bad", NAME_CASES, ids=[f"{c}:{d}={b}" for c, d, b in NAME_CASES])
def test_names_with_dots_or_slashes_are_refused_in_every_command(command, dest, bad, world, capsys):
    """(d) ``..`` and ``/`` in each name option: refused before anything runs, in one line, nothing changes."""
    sub = COMMANDS[command]
    out = world["root"] / "out"
    # an absolute --io value is a documented template ({dataset}/{session}): a '..' component is what must fail
    value = f"dinov2_pca={'sub/../../escape' if bad == '/abs' else bad}" if dest == "io" else bad
    action = next(a for a in sub._actions if a.dest == dest)
    if action.nargs in ("+", "*"):
        value = [value]
    argv = [*command.split(), *_placeholder_args(sub, world, out, {dest: value})]
    before = _tree(world["root"])
    code, err = _run(argv, capsys)
    assert _tree(world["root"]) == before, argv
    assert code != 0 and len(_one_line(err)) == 1, (argv, err)
    assert "not a plain name" in err or "invalid choice" in err, (argv, err)


def test_coverage_counts(capsys):
    """The closing note's figures: commands enumerated, writers, read-only, property cases."""
    with capsys.disabled():
        print(f"\nwrite policy: {len(COMMANDS)} commands, {len(WRITERS)} writers, {len(READ_ONLY)} read-only; "
              f"{len(CASES)} output cases, {len(NAME_CASES)} name cases")
    assert len(CASES) == 3 * (len(WRITERS) - len(INTO_SESSIONS))
    for command, test in INTO_SESSIONS.items():  # each has its own test, and has no output argument
        assert command in WRITERS and not _output_actions(COMMANDS[command]) and test in globals()
    assert all(_output_actions(COMMANDS[c]) for c in WRITERS if c not in INTO_SESSIONS)


def test_sample_session_into_an_existing_session_is_refused(tmp_path, capsys):
    session = tmp_path / "demo" / "carphone01"
    session.mkdir(parents=True)
    (session / "infant.video.mp4").write_bytes(b"the lab's real recording")
    before = _tree(tmp_path)
    code, err = _run(["sample-session", tmp_path], capsys)
    assert code == 2 and _tree(tmp_path) == before
    assert len(_one_line(err)) == 1 and "infant.video.mp4: exists and was not written by nova-infant" in err, err
    code, err = _run(["sample-session", tmp_path, "--session", "../../y"], capsys)
    assert code == 2 and _tree(tmp_path) == before and "not a plain name" in err
    assert _run(["sample-session", tmp_path, "--session", "new"], capsys)[0] == 0
    assert _run(["sample-session", tmp_path, "--session", "new", "--repeat", "2"], capsys)[0] == 0  # ours: replaced


# ---------------------------------------------------------------- the acceptance cases of issue #21


@pytest.fixture(scope="module")
def coded_sessions(tmp_path_factory):
    """Three coded synthetic sessions whose gold annotations are a coder's (saved by NOVA: no nova-infant mark),
    and a tiny full-label-set bundle trained on them (its predictions carry the gold file's scheme)."""
    import torch

    from nova_infant.icep.synthetic import context_task, write_session

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("coded")
    root = base / "data"
    rng = np.random.default_rng(0)
    for name in ("P1", "P2", "P3"):
        x, y = context_task(120, 6, rng, cue=0.5)
        write_session(root, "ffsf", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
    bundle = base / "models" / "full"
    assert main(["icep", "train", "--root", str(root), "--dataset", "ffsf", "--streams", "infant.feat", "--model",
                 "mlp", "--hidden", "8", "--epochs", "1", "--label-set", "full", "--out", str(bundle)]) == 0
    for gold in root.rglob("*.gold.annotation"):  # as NOVA saves a coder's work: our mark is not kept
        text = re.sub(r'\s(generator\w*|data_check)="[^"]*"', "", gold.read_text())
        gold.write_text(text)
    return {"root": root, "bundle": bundle, "base": base}


def test_icep_predict_annotator_gold_over_a_coders_annotation_is_refused(coded_sessions, capsys):
    root = coded_sessions["root"]
    golds = sorted(root.rglob("infant.ICEP-R-infant.gold.annotation"))
    assert len(golds) == 3
    before = _tree(coded_sessions["base"])
    code, err = _run(["icep", "predict", "--root", root, "--dataset", "ffsf", "--bundle", coded_sessions["bundle"],
                      "--annotator", "gold"], capsys)
    assert code != 0 and _tree(coded_sessions["base"]) == before, err
    lines = _one_line(err)
    assert len(lines) == 1 and "gold.annotation" in lines[0] and "not written by nova-infant" in lines[0], err
    # the same bundle under another annotator writes beside the coder's files
    code, err = _run(["icep", "predict", "--root", root, "--dataset", "ffsf", "--bundle", coded_sessions["bundle"],
                      "--annotator", "icep"], capsys)
    assert code == 0, err
    assert all(before[k] == v for k, v in _tree(coded_sessions["base"]).items() if k in before)


def test_batch_io_output_over_the_session_video_is_refused(carphone_session, tiny_dinov2, capsys):
    video = Path(carphone_session["video"])
    before = hashlib.sha256(video.read_bytes()).hexdigest()
    tree = _tree(Path(carphone_session["root"]))
    code, err = _run(["batch", "dinov2_pca", "--root", carphone_session["root"], "--dataset", "demo",
                      "--io", "dinov2_pca=infant.video.mp4", "--option", f"model={tiny_dinov2}",
                      "--option", "device=cpu"], capsys)
    assert code != 0 and hashlib.sha256(video.read_bytes()).hexdigest() == before
    assert _tree(Path(carphone_session["root"])) == tree
    lines = _one_line(err)
    assert len(lines) == 1 and "infant.video.mp4" in lines[0] and "input" in lines[0], err


def test_make_standin_over_a_real_checkpoint_is_refused(tiny_dinov2, tmp_path, capsys):
    import shutil

    real = tmp_path / "dinov2-real"  # a checkpoint as the hub ships it: no nova-infant marker
    shutil.copytree(tiny_dinov2, real, ignore=shutil.ignore_patterns(atomic.MARKER, write_policy.FILES_RECORD))
    before = _tree(tmp_path)
    code, err = _run(["make-standin", "dinov2", real], capsys)
    assert code == 2 and _tree(tmp_path) == before
    assert len(_one_line(err)) == 1 and "did not create" in err, err
    # over its own stand-in of the same kind: replaced; of another kind: refused
    own = tmp_path / "standin"
    assert _run(["make-standin", "dinov2", own], capsys)[0] == 0
    assert _run(["make-standin", "dinov2", own], capsys)[0] == 0
    code, err = _run(["make-standin", "w2v-bert", own], capsys)
    assert code == 2 and "standin-dinov2" in err and "not a standin-w2v-bert" in err, err


# ---------------------------------------------------------------- the rules, one by one, at the low level


@pytest.mark.nova_invalid_files  # a link to a video, an edited data file: on purpose
def test_an_output_never_resolves_to_an_input_by_path_inode_or_link(tmp_path):
    video = tmp_path / "infant.video.mp4"
    video.write_bytes(b"raw recording")
    (tmp_path / "hard.mp4").hardlink_to(video)
    (tmp_path / "link.stream").symlink_to(video)
    stream = streams.make_ssi_stream(np.ones((3, 2), np.float32), 25.0, "feature;x", ["a", "b"])
    with write_policy.job("test"):
        write_policy.register_input(video)
        for target in (video, tmp_path / "hard.mp4", tmp_path / "link.stream"):
            with pytest.raises(PathError, match="is an input of this job"):
                if target.suffix == ".stream":
                    streams.write_ssi_stream(stream, target)
                else:
                    with atomic.atomic_file(target) as staged:
                        staged.write_bytes(b"clip")
    assert video.read_bytes() == b"raw recording"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.mp4", "infant.video.mp4", "link.stream"]


@pytest.mark.nova_invalid_files  # a link to a video, an edited data file: on purpose
def test_our_annotation_is_replaced_a_coders_or_an_edited_one_is_not(tmp_path):
    from nova_infant.icep.schemes import full_scheme, write_discrete_annotation

    segs = annotations.frames_to_segments(np.repeat([0, 1], 5), 40.0)
    ours = write_discrete_annotation(tmp_path / "infant.ICEP-R-infant.icep.annotation", full_scheme("infant"), segs,
                                     "infant", "icep")
    assert write_policy.header_mark(ours)["generator"] == "nova-infant"
    write_discrete_annotation(ours, full_scheme("infant"), segs, "infant", "icep")  # ours: replaced
    Path(str(ours) + "~").write_text("0.00;0.40;1;1.00\n")  # edited by another tool: data_check no longer matches
    with pytest.raises(PathError, match="changed after nova-infant wrote it"):
        write_discrete_annotation(ours, full_scheme("infant"), segs, "infant", "icep")
    coder = _coders_annotation(tmp_path / "infant.ICEP-R-infant.gold.annotation")
    before = _tree(tmp_path)
    with pytest.raises(PathError, match="not written by nova-infant"):
        write_discrete_annotation(coder, full_scheme("infant"), segs, "infant", "gold")
    assert _tree(tmp_path) == before


def test_a_prediction_never_takes_an_annotator_the_job_reads(tmp_path):
    from nova_infant.core.annotations import read_annotation
    from nova_infant.icep.schemes import full_scheme, write_discrete_annotation

    coder = _coders_annotation(tmp_path / "in" / "infant.ICEP-R-infant.gold.annotation")
    segs = annotations.frames_to_segments(np.repeat([0, 1], 5), 40.0)
    with write_policy.job("test"):
        read_annotation(coder)
        with pytest.raises(PathError, match="annotator 'gold' is an annotator this job reads"):
            write_discrete_annotation(tmp_path / "out" / "x.annotation", full_scheme("infant"), segs, "infant",
                                      "gold")
    assert not (tmp_path / "out").exists()


def test_user_folders_named_like_staging_or_journals_are_never_deleted(tmp_path, capsys):
    from nova_infant.icep.schemes import full_scheme, write_discrete_annotation

    segs = annotations.frames_to_segments(np.repeat([0, 1], 5), 40.0)
    anno = write_discrete_annotation(tmp_path / "r.s.a.annotation", full_scheme("infant"), segs, "r", "a")
    for name in (f".{anno.name}.partial-mine", f".{anno.name}.old", ".out.csv.partial-x", ".bundle.deleting-1"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "keep.txt").write_text("a person's file")
    before = _tree(tmp_path)
    assert _run(["review", "export-csv", anno, "--out", tmp_path / "out.csv"], capsys)[0] == 0
    write_discrete_annotation(anno, full_scheme("infant"), segs, "r", "a")
    after = _tree(tmp_path)
    assert all(after.get(k) == v for k, v in before.items() if "keep" in k or k.startswith(".")), after
    (tmp_path / f".{anno.name}.prev").mkdir()  # a person's folder with the journal's name: refused, kept
    (tmp_path / f".{anno.name}.prev" / "keep.txt").write_text("mine")
    with pytest.raises(PathError, match="prev: exists"):
        write_discrete_annotation(anno, full_scheme("infant"), segs, "r", "a")
    assert (tmp_path / f".{anno.name}.prev" / "keep.txt").read_text() == "mine"


def test_a_stale_journal_never_rolls_back_a_newer_file_and_readers_never_write(tmp_path):
    import shutil

    from nova_infant.core.annotations import read_annotation
    from nova_infant.icep.schemes import full_scheme, write_discrete_annotation

    path = tmp_path / "r.s.a.annotation"
    write_discrete_annotation(path, full_scheme("infant"), annotations.frames_to_segments(np.repeat([0, 4], 5), 40.0),
                              "r", "a")
    old = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # a journal as a killed writer leaves it: old pair saved, new pair's identity recorded, then killed
    journal = tmp_path / f".{path.name}.prev"
    journal.mkdir()
    for name in old:
        (journal / name).write_bytes(old[name])
    new = {name: {"size": 1, "mtime_ns": 1, "sha256": "0" * 64} for name in old}
    (journal / "journal.json").write_text(json.dumps({"format": atomic.JOURNAL_FORMAT, "saved": sorted(old),
                                                      "absent": [], "new": new}))
    # a coder saves a newer version meanwhile
    _coders_annotation(tmp_path / "coder.annotation")
    for suffix in ("", "~"):
        shutil.copyfile(tmp_path / f"coder.annotation{suffix}", Path(str(path) + suffix))
    newer = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    before = _tree(tmp_path)
    read_annotation(path)  # a reader: nothing written, nothing rolled back
    assert _tree(tmp_path) == before
    with atomic.output_lock(path):  # the next writer: the journal no longer matches, it is discarded
        assert atomic.recover_output(path) is False
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == newer
    assert not journal.exists()


def test_review_export_over_its_own_input_and_write_trainers_over_an_edited_trainer(tmp_path, capsys):
    from nova_infant.discover.registry import write_all_trainers

    anno = _coders_annotation(tmp_path / "infant.ICEP-R-infant.gold.annotation")
    before = _tree(tmp_path)
    code, err = _run(["review", "export-csv", anno, "--out", anno], capsys)
    assert code == 2 and _tree(tmp_path) == before and "is an input of this job" in err, err
    cml = tmp_path / "cml"
    trainers = write_all_trainers(cml)
    edited = trainers[0]
    edited.write_text(edited.read_text().replace('ssi-v="5"', 'ssi-v="5" lab="edited"'))
    before = _tree(tmp_path)
    code, err = _run(["write-trainers", cml], capsys)
    assert code == 2 and _tree(tmp_path) == before and f"{edited.name}: exists and was not written" in err, err


def test_a_folder_of_another_kind_or_edited_is_never_replaced(tmp_path):
    other = _other_kind_folder(tmp_path / "model")
    before = _tree(tmp_path)
    with pytest.raises(PathError, match="a nova-infant cry-reason-model folder, not a icep-bundle"):
        with atomic.atomic_dir(other, "icep-bundle") as tmp:
            (tmp / "x").write_text("x")
    (other / "LICENSE.txt").unlink()
    (other / "config.json").write_text('{"edited": true}')
    with pytest.raises(PathError, match="config.json was added or changed"):
        with atomic.atomic_dir(other, "cry-reason-model") as tmp:
            (tmp / "x").write_text("x")
    assert set(_tree(tmp_path)) == set(before) - {"model/LICENSE.txt"}


def test_the_coders_tier_is_replaced_only_with_a_byte_identical_backup_and_unchanged_since(tmp_path):
    """The one sanctioned write into a person's file (issue 24, into_coder_tier): permitted for that path, in that
    job, only after a byte-identical backup, and lapsing if the coder's file changes before the write."""
    import shutil

    from nova_infant.icep.schemes import full_scheme, write_discrete_annotation

    segs = annotations.frames_to_segments(np.repeat([0, 1], 5), 40.0)
    coder = _coders_annotation(tmp_path / "infant.ICEP-R-infant.gold.annotation")
    backup = tmp_path / "infant.ICEP-R-infant.gold-backup.annotation"
    with write_policy.job("completion test"):
        write_policy.register_input(coder)
        with pytest.raises(PathError, match="not a byte-identical backup"):
            write_policy.permit_replacing(coder, backup)  # no backup yet
        shutil.copyfile(coder, backup)
        shutil.copyfile(str(coder) + "~", str(backup) + "~")
        Path(str(backup) + "~").write_text(Path(str(backup) + "~").read_text().replace(";1", ";0", 1))  # differs
        with pytest.raises(PathError, match="not a byte-identical backup"):
            write_policy.permit_replacing(coder, backup)
        shutil.copyfile(str(coder) + "~", str(backup) + "~")
        write_policy.permit_replacing(coder, backup)
        rows = Path(str(coder) + "~").read_text().splitlines()
        rows[-1] = ";".join(rows[-1].split(";")[:3] + ["0.5"])  # the coder saved again (a confidence edited)
        Path(str(coder) + "~").write_text("\n".join(rows) + "\n")
        with pytest.raises(PathError):  # the permission lapsed: the normal rules refuse again
            write_discrete_annotation(coder, full_scheme("infant"), segs, "infant", "gold")
        shutil.copyfile(str(coder) + "~", str(backup) + "~")
        write_policy.permit_replacing(coder, backup)
        write_discrete_annotation(coder, full_scheme("infant"), segs, "infant", "gold")
    assert write_policy.header_mark(coder)["generator"] == "nova-infant"
    assert Path(str(backup) + "~").read_text().splitlines()[-1].endswith(";0.5")  # the coder's last save, kept
    with write_policy.job("a later job"):  # the permission was that job's only: the file is an input again
        write_policy.register_input(backup)
        with pytest.raises(PathError, match="input of this job"):
            write_discrete_annotation(backup, full_scheme("infant"), segs, "infant", "gold-backup")


def test_every_committed_file_record_matches_the_files_it_lists():
    """The checkout's generated trainers, schemes, pictures and benchmark reports are recorded as nova-infant's, so
    the documented regeneration commands may replace them; a record that no longer matches its file (a file
    regenerated without it) makes those commands refuse."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    tracked = subprocess.run(["git", "ls-files", f"*{write_policy.FILES_RECORD}"], cwd=repo, capture_output=True,
                             text=True).stdout.split()
    if not tracked:  # not a git checkout (an sdist): nothing committed to check
        tracked = [str(p.relative_to(repo)) for p in repo.rglob(write_policy.FILES_RECORD) if ".venv" not in p.parts]
    assert tracked
    stale = []
    for record in tracked:
        folder = (repo / record).parent
        for name, entry in json.loads((repo / record).read_text())["files"].items():
            if not (folder / name).is_file() or atomic.file_sha256(folder / name) != entry["sha256"]:
                stale.append(f"{folder.relative_to(repo)}/{name}")
    assert stale == [], stale
