"""Every command the README and docs/ show still parses: each `python -m purejaxppo.run ...`, `python -m
purejaxppo.evaluate ...` and `python -m purejaxppo.tune ...`, in a code block or inline, goes through its
command's own argument parser (and a training or tuning command's flags through the config and search they
build); a command shown with the error it prints prints that error, before anything is compiled or written. The
README stays a first page."""

import re
import shlex
import sys
from pathlib import Path

import pytest

from purejaxppo.cli.args import build_parser, config_from_args, parse_sweeps
from purejaxppo.cli.evaluate import build_parser as build_evaluate_parser
from purejaxppo.cli.run import main as run_main
from purejaxppo.cli.tune import build_parser as build_tune_parser
from purejaxppo.cli.tune import space_of, spec_from_args
from purejaxppo.cli.tune_flags import check_search_flags as check_tune_args

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"python -m purejaxppo\.(run|evaluate|tune)\b([^`\n]*)(?:\n(error: .*))?")


def commands() -> list[tuple[str, str, str, str | None]]:
    """(page, command, arguments, the error line shown after it or None) of every command shown, a command
    continued over lines joined first. `python -m purejaxppo.evaluate` (or `.tune`) alone names the command in prose."""
    found = []
    for page in PAGES:
        text = re.sub(r"\\\n\s*", " ", page.read_text())
        for match in COMMAND.finditer(text):
            command, arguments, error = match.groups()
            if command in ("evaluate", "tune") and not arguments.strip():
                continue
            found.append((page.name, command, arguments, error))
    return found


def test_the_pages_show_commands_of_both_kinds():
    shown = commands()
    assert len(shown) >= 20 and {command for _, command, _, _ in shown} == {"run", "evaluate", "tune"}
    assert any(error for *_, error in shown)


@pytest.mark.parametrize("page, command, arguments, error", commands(),
                         ids=lambda x: x if not isinstance(x, str) or len(x) < 60 else x[:60])
def test_every_command_shown_parses(page, command, arguments, error, tmp_path, capsys, monkeypatch):
    args = shlex.split(arguments, comments=True)
    parser = {"run": build_parser, "evaluate": build_evaluate_parser, "tune": build_tune_parser}[command]()
    try:
        parsed = parser.parse_args(args)
    except SystemExit:
        pytest.fail(f"{page}: python -m purejaxppo.{command}{arguments} does not parse")
    if error is not None and command == "run":  # the command prints this error, and writes nothing
        for extra in ("tensorboardX", "wandb"):  # errors are shown as they read where no extra is installed
            monkeypatch.setitem(sys.modules, extra, None)
        out = tmp_path / "out"
        assert run_main([*args, "--out", str(out)]) == 2
        assert capsys.readouterr().err.strip() == error
        assert not out.exists()
    elif command == "run" and parsed.resume is None:
        config_from_args(parsed)  # a flag's value the config refuses raises ValueError
        parse_sweeps(parsed.sweep)
    elif command == "tune" and parsed.resume is None:
        check_tune_args(parsed)
        space_of(spec_from_args(parsed))  # a --param the tuner refuses raises ValueError


def test_the_readme_is_a_first_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 220
    assert "make run" in readme and "make test" in readme
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, f"the README does not link docs/{page.name}"
