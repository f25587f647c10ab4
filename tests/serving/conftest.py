"""Fixtures: a tiny random-init OpenChat checkpoint and the embedded server on a free loopback port."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_helpers import MODEL_NAME, ServerThread


@pytest.fixture(scope="session")
def chat_model_dir(tiny_chat_dir) -> Path:
    assert Path(tiny_chat_dir).name == MODEL_NAME  # the served name defaults to the folder's name
    return Path(tiny_chat_dir)


@pytest.fixture(scope="session")
def backend(chat_model_dir):
    from openchat_hf.serving.backends import load_backend

    return load_backend(chat_model_dir, max_batch_size=16)


@pytest.fixture(scope="session")
def server(backend):
    """The embedded server with an API key, shared by the tests that don't restart it."""
    from openchat_hf.serving import create_app

    app = create_app(backend, model_name=MODEL_NAME, api_keys=("sk-test", "sk-other"), max_request_bytes=200_000)
    with ServerThread(app) as running:
        yield running
