"""The parameter table in docs/serving.md is the one the code renders, and every honoured parameter is accepted."""

from __future__ import annotations

from pathlib import Path

from openchat_hf.serving.protocol import PARAMETERS, ChatCompletionRequest, CompletionRequest, parameter_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def test_docs_table_matches_the_code():
    assert parameter_table() in DOC.read_text(), "regenerate with: python -m openchat_hf.serving.protocol"


def test_every_documented_parameter_is_a_request_field_and_back():
    fields = set(ChatCompletionRequest.model_fields) | set(CompletionRequest.model_fields)
    assert set(PARAMETERS) == fields
