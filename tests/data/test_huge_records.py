"""Huge records: tokenization work bounded by the context (same tokens as tokenizing everything), and a size limit."""

import json

import datasets
import pytest
from data_helpers import conversation, write_dump, write_page
from test_html_detection import REAL
from transformers import AutoTokenizer

from openchat_hf.data import PipelineConfig, convert, run_pipeline
from openchat_hf.data.droplog import read_drop_log
from openchat_hf.templates import setup_tokenizer


@pytest.fixture(scope="module")
def template(tokenizer_dirs):
    return setup_tokenizer(AutoTokenizer.from_pretrained(str(tokenizer_dirs["llama"])), "openchat")


def _huge_conversation(chars: int) -> list[dict]:
    text, i = [], 0
    while sum(map(len, text)) < chars:
        text.append(REAL[i % len(REAL)])
        i += 1
    return [
        {"role": "user", "content": "Summarise all of this:\n\n" + "\n\n".join(text)},
        {"role": "assistant", "content": "A summary."},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You're welcome."},
    ]


def _reference(template, messages, max_length, overflow):
    whole = template.tokenize(messages)
    if overflow == "truncate":
        return whole.input_ids[:max_length], whole.supervise_mask[:max_length], len(whole.input_ids) > max_length
    return whole.input_ids, whole.supervise_mask, False


@pytest.mark.parametrize("overflow", ["truncate", "drop"])
@pytest.mark.parametrize("fallback", [False, True])
def test_cut_before_tokenizing_gives_the_tokens_of_the_whole_text(template, monkeypatch, overflow, fallback):
    small = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": REAL[3]}]
    huge = _huge_conversation(400_000)
    encoded = []
    tokenize_arrays = template.tokenize_arrays

    def recording(conversations, **kwargs):
        encoded.extend(sum(len(m["content"]) for m in c) for c in conversations)
        return tokenize_arrays(conversations, **kwargs)

    monkeypatch.setattr(template, "tokenize_arrays", recording)
    if fallback:  # a budget too small to hold max_length tokens: the cut text is tokenized again, whole
        monkeypatch.setattr(convert, "max_token_chars", lambda tokenizer: 1)
    out = convert.convert_batch({"messages": [small, huge]}, template=template, max_length=2048, overflow=overflow)
    budget = (2048 + convert.CUT_MARGIN_TOKENS) * convert.max_token_chars(template.tokenizer)
    assert encoded[1] == budget < 400_000  # the huge one was tokenized only up to the budget
    rows = out.to_pylist()
    for messages, row in zip([small, huge], rows):
        ids, mask, truncated = _reference(template, messages, 2048, overflow)
        if overflow == "drop" and len(ids) > 2048:
            assert row["reason"] == "too_long" and row["length"] > 2048
            continue
        assert row["input_ids"] == ids and row["supervise_mask"] == mask
        assert row["truncated"] == truncated and row["length"] == len(ids)
    assert rows[1]["truncated"] == (overflow == "truncate")


def test_records_over_the_size_limit_are_dropped_with_a_reason(tmp_path):
    src = tmp_path / "in"
    big_answer = "\n\n".join(REAL) * 2  # ~1.3 MB of real text
    write_page(src / "ShareGPT", "big", conversation(1, answer=big_answer))
    write_page(src / "ShareGPT", "ok", conversation(2))
    items = conversation(3, answer=big_answer)["items"]
    write_dump(src / "dump.json", [{"id": "big-json", "conversations": items}, {"id": "small", **conversation(4)}])
    line_items = conversation(5, answer=big_answer)["items"]
    (src / "lines.jsonl").write_text(json.dumps({"id": "big-line", "items": line_items}) + "\n")
    report = run_pipeline(src, tmp_path / "out", PipelineConfig(filter_models=[], max_record_mb=1))
    assert report["steps"]["read"] == {"too_large": 3} and report["kept"] == 2
    lines = [d for d in read_drop_log(tmp_path / "out") if d["reason"] == "too_large"]
    assert all("over the 1 MB limit (--max-record-mb)" in d["excerpt"] for d in lines)
    assert {(d["source"], d["index"]) for d in lines} == {
        ("ShareGPT/big.html", 0),
        ("dump.json", 0),
        ("lines.jsonl", 0),
    }
    clean = datasets.load_from_disk(str(tmp_path / "out" / "clean"))
    assert sorted(clean["id"]) == ["ok", "small"]
    # No limit: all kept.
    # (near_dedup off: the three big records share their answer)
    report = run_pipeline(
        src, tmp_path / "out", PipelineConfig(filter_models=[], max_record_mb=None, near_dedup=False)
    )
    assert report["kept"] == 5
