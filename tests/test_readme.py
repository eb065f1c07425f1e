"""The README and docs/ say what runs: every `privinfer ...` command in their shell blocks parses
with the real argument parser, every `make` target they name exists, every docs/ link resolves,
and the README stays short enough to read (at most 150 lines)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from privinfer.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
_SHELL_BLOCK = re.compile(r"```(?:sh|bash|shell)\n(.*?)```", re.S)
_ANY_BLOCK = re.compile(r"```.*?```", re.S)
# An inline `privinfer ... --option` in the prose is a command too (a bare `privinfer serve` names one).
_INLINE = re.compile(r"`((?:sudo )?(?:\.venv/bin/)?privinfer [^`]*--[^`]+)`")
_PROGRAM = re.compile(r"^(?:sudo\s+)?(?:\S*/)?privinfer\s")


def shell_commands(path: Path) -> list[str]:
    """The commands in a markdown file's shell blocks (continuation lines joined, comments dropped)
    and its inline `privinfer ... --option` spans."""
    text = path.read_text()
    commands = []
    for block in _SHELL_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            command = shlex.split(line, comments=True)
            if command:
                commands.append(shlex.join(command))
    for span in _INLINE.findall(_ANY_BLOCK.sub("", text)):
        commands.append(shlex.join(shlex.split(span.replace("\n", " "))))
    return commands


def privinfer_arguments(path: Path) -> list[list[str]]:
    """The arguments of each `privinfer` command (``sudo`` and the venv's path dropped)."""
    found = []
    for command in shell_commands(path):
        if _PROGRAM.match(command + " "):
            words = shlex.split(command)
            found.append(words[words.index(next(w for w in words if w.endswith("privinfer"))) + 1 :])
    return found


def test_the_readme_is_short_and_starts_with_the_job():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail to docs/"
    first_screen = "\n".join(lines[:40])
    assert "make demo" in first_screen and "make test" in first_screen
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:3] == ["## Protect photos", "## Protect a video", "## Use your own servers"], headings


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_every_privinfer_command_in_the_docs_parses(path):
    commands = privinfer_arguments(path)
    if path == README:
        assert len(commands) >= 6, "the README shows a command for each job"
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit as refused:  # argparse's way of saying no (or of printing --help)
            assert refused.code == 0 and "--help" in argv, f"{path.name}: privinfer {shlex.join(argv)}"


def test_a_command_that_does_not_parse_is_caught():
    readme = README.read_text()
    assert privinfer_arguments(README), readme[:200]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "photo.jpg", "--obfuscator", "no-such-obfuscator"])


def test_the_make_targets_the_docs_name_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    named = {m for path in (README, *DOCS) for m in re.findall(r"\bmake ([\w-]+)", path.read_text())}
    assert {"demo", "test"} <= named and named <= targets, named - targets


def test_every_link_between_the_docs_resolves():
    for path in (README, *DOCS):
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", path.read_text()):
            assert (path.parent / target).is_file(), f"{path.name} links to {target}"
    assert {p.name for p in DOCS} <= set(re.findall(r"docs/([\w-]+\.md)", README.read_text())), "every doc is linked"
