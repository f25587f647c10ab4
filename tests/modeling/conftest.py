"""Fixtures of the modeling tests: patched / exported tiny checkpoints and the fake Hub."""

from __future__ import annotations

import pytest
from fake_hub import FakeHub

from openchat_hf.modeling import export_checkpoint, patch_model


@pytest.fixture(scope="session")
def patched_llama(tiny_llama_dir, tmp_path_factory):
    """The tiny LLaMA patched as ``openchat_8192`` (EOT, mean init, context extrapolated to 8192)."""
    return patch_model(tiny_llama_dir, tmp_path_factory.mktemp("patched") / "llama", "openchat_8192")


@pytest.fixture(scope="session")
def patched_bigcode(tiny_bigcode_dir, tmp_path_factory):
    """The tiny GPTBigCode patched as ``opencoder`` (EOT, normal init, tied head)."""
    return patch_model(tiny_bigcode_dir, tmp_path_factory.mktemp("patched") / "bigcode", "opencoder")


@pytest.fixture(scope="session")
def exported_llama(patched_llama, tmp_path_factory):
    return export_checkpoint(patched_llama, tmp_path_factory.mktemp("exported") / "llama")


@pytest.fixture(scope="session")
def exported_bigcode(patched_bigcode, tmp_path_factory):
    return export_checkpoint(patched_bigcode, tmp_path_factory.mktemp("exported") / "bigcode")


@pytest.fixture
def fake_hub(monkeypatch):
    """A running :class:`FakeHub`; ``huggingface_hub`` is pointed at it (endpoint, token, online)."""
    with FakeHub() as hub:
        yield hub.patch(monkeypatch)
