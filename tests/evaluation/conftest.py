"""Fixtures of the evaluation tests: fake OpenAI-compatible servers on 127.0.0.1 and answer files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from eval_fakes import FakeOpenAI  # noqa: E402

from openchat_hf.evaluation.client import EndpointConfig  # noqa: E402


@pytest.fixture
def judge_server():
    with FakeOpenAI("judge") as server:
        yield server


@pytest.fixture
def model_server():
    with FakeOpenAI("model") as server:
        yield server


def endpoint(server: FakeOpenAI, model: str = "judge-model", **kwargs) -> EndpointConfig:
    """An endpoint config pointing at a fake server, with fast retries."""
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("max_retries", 3)
    return EndpointConfig(base_url=server.base_url, model=model, **kwargs)


def write_answers(path: Path, model: str, answers: dict) -> Path:
    """A FastChat-format answer file: ``answers[question_id]`` is a string or a list of turns."""
    with open(path, "w", encoding="utf-8") as f:
        for qid, turns in answers.items():
            turns = [turns] if isinstance(turns, str) else turns
            row = {"question_id": qid, "model_id": model, "choices": [{"index": 0, "turns": turns}]}
            f.write(json.dumps(row) + "\n")
    return path
