"""The `openchat-hf` command: every subcommand is listed with help text, errors are one line."""

from __future__ import annotations

import subprocess
import sys

from openchat_hf.cli import COMMAND_MODULES, build_parser, main

EXPECTED = ["data", "patch", "export", "train", "serve", "eval", "visualize", "demo", "assets"]


def test_help_lists_every_subcommand_with_help_text():
    result = subprocess.run([sys.executable, "-m", "openchat_hf.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for name in EXPECTED:
        assert f"    {name} " in result.stdout, name
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(EXPECTED) <= set(sub.choices)
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert all(helps.get(name) for name in EXPECTED), helps
    assert len(COMMAND_MODULES) == 8  # each module adds one or more of EXPECTED


def test_unknown_model_type_is_a_one_line_error(tmp_path, capsys):
    code = main(["patch", str(tmp_path), str(tmp_path / "out"), "--model-type", "no_such_type"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Unknown model type 'no_such_type'" in err and "Traceback" not in err
