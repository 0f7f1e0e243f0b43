"""Every ``nova-infant ...`` command line in README.md and docs/*.md runs: its sub-command exists (``--help`` exits
0) and every ``--flag`` it names is a flag of that sub-command. A doc naming a removed command or flag fails here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from nova_infant.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_ENV = re.compile(r"^(?:\$\s+)?(?:[A-Z_][A-Z0-9_]*=\S*\s+)*")
_END = re.compile(r"\s(?:\||&&|;|>|2>|#)\s?")


def _command_lines(text: str) -> list[str]:
    """The ``nova-infant ...`` command lines of a markdown text: lines of fenced code blocks (after a ``$`` prompt
    and ``VAR=value`` prefixes; ``\\`` continuations joined; cut at ``|``, ``&&``, ``;``, ``>``, ``#``) and inline
    code spans that start with ``nova-infant ``."""
    found, block, lines = [], False, text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            block = not block
        elif block:
            joined = line
            while joined.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                joined = joined.rstrip()[:-1] + " " + lines[i].strip()
            body = _ENV.sub("", joined.strip())
            for part in re.split(r"\s(?:&&|;)\s", body):
                part = _ENV.sub("", part.strip())
                if part.startswith("nova-infant ") or part == "nova-infant":
                    found.append(_END.split(part + " ")[0].strip())
        else:
            for span in re.findall(r"`([^`]+)`", line):
                if span.startswith("nova-infant ") or span == "nova-infant":
                    found.append(_END.split(span + " ")[0].strip())
        i += 1
    return found


def _documented() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for command in _command_lines(doc.read_text(encoding="utf-8")):
            out.append((doc.name, command))
    return sorted(set(out))


def _tokens(command: str) -> list[str]:
    try:
        return shlex.split(command)[1:]
    except ValueError:  # an unbalanced quote in prose-like code: plain words
        return command.split()[1:]


def _placeholder(token: str) -> bool:
    """``<module>``, ``…``, ``...``, ``[--flag X]``: a word the reader fills in."""
    return token.startswith(("<", "[", "…", "...")) or token.isupper()


def _resolve(tokens: list[str]):
    """The sub-command path named by the leading words of ``tokens`` and its parser."""
    parser, path = build_parser(), []
    while True:
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        words = [t for t in tokens[len(path):] if not t.startswith("-")]
        if not subs or not words or tokens[len(path)].startswith("-") or _placeholder(tokens[len(path)]):
            return path, parser
        choice = tokens[len(path)]
        if choice not in subs[0].choices:
            return path + [choice], None
        parser = subs[0].choices[choice]
        path.append(choice)


COMMANDS = _documented()


def test_the_docs_name_commands():
    names = {c.split()[1] for _, c in COMMANDS if len(c.split()) > 1}
    assert len(COMMANDS) > 40 and {"run", "demo", "batch", "write-trainers"} <= names


@pytest.mark.parametrize("doc,command", COMMANDS, ids=[f"{d}:{c[:60]}" for d, c in COMMANDS])
def test_documented_command_runs_with_help(doc, command, capsys):
    path, parser = _resolve(_tokens(command))
    assert parser is not None, f"{doc}: `{command}`: no sub-command {' '.join(path)!r}"
    with pytest.raises(SystemExit) as stop:
        main(path + ["--help"])
    assert stop.value.code in (0, None), f"{doc}: `{command}`: --help failed: {capsys.readouterr().err}"
    flags = {s for a in parser._actions for s in a.option_strings}
    named = {t.split("=")[0] for t in _tokens(command)[len(path):] if t.startswith("--")}
    assert named <= flags, f"{doc}: `{command}`: no flag {sorted(named - flags)} in `nova-infant {' '.join(path)}`"
