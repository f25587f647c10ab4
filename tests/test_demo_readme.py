"""The README's step list is the demo's real command list (`openchat_hf.demo.demo_commands`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openchat_hf.demo import REAL_PLAN, TINY_PLAN, demo_commands, eval_commands, shell_line

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_loop_block() -> str:
    text = README.read_text()
    section = text[text.index("## The loop, step by step") :]
    block = section[section.index("```bash") : section.index("```", section.index("```bash") + 7)]
    return re.sub(r"\\\n\s*", "", block)  # join continuation lines


@pytest.mark.parametrize("step", [*demo_commands(REAL_PLAN), *eval_commands(REAL_PLAN)])
def test_readme_shows_each_demo_command_verbatim(step):
    commands = {**demo_commands(REAL_PLAN), **eval_commands(REAL_PLAN)}
    line = shell_line(commands[step])
    assert line in _readme_loop_block(), f"README step list is out of date for {step!r}: expected\n{line}"


def test_the_real_and_tiny_plans_differ_only_where_they_must():
    real, tiny = demo_commands(REAL_PLAN), demo_commands(TINY_PLAN)
    assert "fetch" in real and "fetch" not in tiny
    assert real["export"] == tiny["export"] and real["data"][:6] == tiny["data"][:6]
    assert "--eot-init" in real["patch"] and "--eot-init" not in tiny["patch"]
    for plan in (REAL_PLAN, TINY_PLAN):
        assert (Path(__file__).resolve().parent.parent / plan.recipe).exists()
