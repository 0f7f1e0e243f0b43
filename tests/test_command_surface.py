"""One command surface: every module runs through ``nova-infant run <module>`` (its spec's flags, checks and
writer); the old per-module command lines are aliases onto it and write the same bytes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nova_infant.cli import main
from nova_infant.specs.registry import SPECS

CLI = Path(__file__).resolve().parents[1] / "modules" / "cli"


def test_top_level_help_lists_one_command_per_module_and_hides_the_aliases(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for spec in SPECS.values():
        assert sum(line.split()[:2] == ["run", spec.command] for line in out.splitlines()) == 1, spec.command
    commands = [line.split()[0] for line in out.split("positional arguments:")[1].split("\noptions:")[0].splitlines()
                if line.startswith("    ") and not line.startswith("     ")]
    assert "run" in commands and "w2v-bert" not in commands and len(commands) == len(set(commands))


def test_no_file_of_the_command_line_runs_a_module_itself():
    """Only the spec runner (``nova_infant.specs.cli.run_sessions``) calls a spec's ``run`` and the writer."""
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                assert not (node.func.attr == "run" and isinstance(owner, ast.Name) and owner.id.isupper()), path
            if isinstance(node, ast.Name):
                assert node.id not in ("write_files", "nova_objects"), f"{path.name}: {node.id}"
    assert not {"dinov2.py", "w2v_bert.py", "taggers.py", "icep.py"} & {p.name for p in CLI.glob("*.py")}


def test_old_w2v_bert_command_line_writes_the_bytes_of_run_w2v_bert(tmp_path, carphone_session, tiny_w2v_bert,
                                                                     capsys):
    audio = str(carphone_session["audio"])
    flags = ["--model", tiny_w2v_bert, "--device", "cpu", "--frame-step", "100ms"]
    assert main(["run", "w2v-bert", "--audio", audio, "--out", str(tmp_path / "run"), "--role", "session", *flags]) == 0
    assert main(["w2v-bert", audio, str(tmp_path / "alias" / "session.w2vbert.stream"), *flags]) == 0
    new, old = tmp_path / "run" / "session.w2vbert.stream", tmp_path / "alias" / "session.w2vbert.stream"
    assert Path(f"{new}~").read_bytes() == Path(f"{old}~").read_bytes()
    assert new.read_text() == old.read_text()


@pytest.mark.parametrize("flag,value", [("--role", "../escaped"), ("--session", "a/b"), ("--dataset", "..")])
def test_run_refuses_a_name_that_would_leave_the_output_folder(tmp_path, carphone_session, flag, value, capsys):
    out = tmp_path / "out"
    code = main(["run", "w2v-bert", "--audio", str(carphone_session["audio"]), "--out", str(out),
                 "--model", str(tmp_path / "unused"), flag, value])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "not a plain name" in err and flag in err
    assert not out.exists() and not list(tmp_path.rglob("*escaped*"))
