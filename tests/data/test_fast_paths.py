"""The pipeline's fast paths give what the plain ones gave: the model filter before cleaning, the convert step's flat
arrays, and a tokenizer folder loaded without importing torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from data_helpers import GPT4, conversation, write_page
from real_assets import ALL_REAL_TOKENIZERS

from openchat_hf.data import PipelineConfig, run_pipeline
from openchat_hf.data.convert import convert_batch
from openchat_hf.templates import ChatTemplate, setup_tokenizer

GPT35 = "Model: Default (GPT-3.5)"


def _log(out):
    return [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]


def test_other_models_are_filtered_before_cleaning(tmp_path, monkeypatch):
    from openchat_hf.data import clean

    pages = tmp_path / "in" / "ShareGPT"
    blocked = conversation(1, GPT35)
    blocked["items"][1]["value"] += "<p>Trained by OpenAI.</p>"
    write_page(pages, "a-gpt35-blocked", blocked)  # would be a clean drop (blocked word) if it were cleaned
    write_page(pages, "b-gpt35", conversation(2, GPT35))
    write_page(pages, "c-gpt4-same-as-b", conversation(2, GPT4))  # same content as the GPT-3.5 page before it
    write_page(pages, "d-gpt4", conversation(3, GPT4))
    converted = []
    to_markdown = clean.to_markdown
    monkeypatch.setattr(clean, "to_markdown", lambda text, **kw: converted.append(text) or to_markdown(text, **kw))
    config = PipelineConfig(decontaminate=False, near_dedup=False)
    report = run_pipeline(tmp_path / "in", tmp_path / "out", config)
    log = {d["id"]: d for d in _log(tmp_path / "out")}
    assert {i: (d["step"], d["reason"]) for i, d in log.items()} == {
        "a-gpt35-blocked": ("filter", "model_filtered"),
        "b-gpt35": ("filter", "model_filtered"),
    }
    assert log["a-gpt35-blocked"]["excerpt"].startswith(f"model: {GPT35}; Question 1: how do I sort")
    assert report["kept"] == 2  # the GPT-4 copy of a GPT-3.5 conversation is no duplicate of a filtered record
    assert len(converted) == 4  # only the two GPT-4 pages' turns were converted to Markdown
    assert report["input_models"] == {GPT35: 2, GPT4: 2}


HARD = [
    "",
    " leading space",
    "  two leading spaces and trailing  ",
    "emoji 🤖🧪 and CJK 漢字, byte fallback",
    "\n\nnewlines first\n",
    "a <|end_of_turn|> inside, and </s> and <s>",
    "tabs\tand\u00a0nbsp",
    "ends with a space ",
]


def _conversations():
    convs = []
    for i, text in enumerate(HARD):
        convs.append(
            [
                {"role": "user", "content": HARD[(i + 3) % len(HARD)] or "hi"},
                {"role": "assistant", "content": text},
                {"role": "user", "content": text},
                {"role": "assistant", "content": HARD[(i + 1) % len(HARD)]},
            ]
        )
    convs.append([{"role": "system", "content": "Be brief."}, *convs[0]])
    return convs


@pytest.mark.parametrize("style", ["llama", "gpt2"])
def test_flat_arrays_match_the_offsets_rule(base_tokenizers, style):
    """The convert step's char_to_token masks equal the offsets rule (both are transformers' assistant-mask rule)."""
    import copy

    template = setup_tokenizer(copy.deepcopy(base_tokenizers[style]), "openchat")
    convs = _conversations()
    batch = template.tokenize_arrays(convs)
    encodings = template.tokenizer.backend_tokenizer.encode_batch(batch.texts, add_special_tokens=False)
    for i, (conv, encoding) in enumerate(zip(convs, encodings)):
        rendered = template.render(conv)
        assert batch.texts[i] == rendered.text
        row = batch.row(i)
        assert row.input_ids == encoding.ids
        assert row.supervise_mask == ChatTemplate._mask_from_offsets(encoding.offsets, rendered.assistant_spans)
        assert row.num_neutralized == rendered.num_neutralized
    table = convert_batch({"messages": convs}, template=template, max_length=40, overflow="truncate").to_pylist()
    for i, row in enumerate(table):
        whole = batch.row(i)
        assert row["input_ids"] == whole.input_ids[:40] and row["supervise_mask"] == whole.supervise_mask[:40]
        assert row["truncated"] == (len(whole.input_ids) > 40) and row["length"] == len(row["input_ids"])
        assert row["text"] == batch.texts[i]
        assert row["reason"] == ("" if 1 in row["supervise_mask"] else "no_supervised_tokens")
    dropped = convert_batch({"messages": convs}, template=template, max_length=40, overflow="drop").to_pylist()
    assert [r["reason"] == "too_long" for r in dropped] == [
        len(batch.row(i).input_ids) > 40 for i in range(len(convs))
    ]
    assert convert_batch({"messages": []}, template=template, max_length=40, overflow="drop").num_rows == 0


def test_a_tokenizer_folder_loads_without_torch(tokenizer_dirs):
    """`data run` needs no torch: a tokenizer-only folder loads as AutoTokenizer would load it, without its import."""
    code = (
        "import sys, json; from openchat_hf.tokenizer_loading import load_tokenizer; "
        f"t = load_tokenizer({str(tokenizer_dirs['llama'])!r}, 'openchat'); "
        "print(json.dumps([type(t).__name__, 'torch' in sys.modules, t.backend_tokenizer.to_str()]))"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    name, torch_imported, spec = json.loads(out.stdout.strip().splitlines()[-1])
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(tokenizer_dirs["llama"]))
    assert not torch_imported
    assert name == type(reference).__name__ and spec == reference.backend_tokenizer.to_str()


@pytest.mark.parametrize("name", ALL_REAL_TOKENIZERS)
def test_flat_arrays_match_the_offsets_rule_on_real_tokenizers(real_tokenizer, name):
    template = setup_tokenizer(real_tokenizer(name), "openchat")
    convs = _conversations()
    batch = template.tokenize_arrays(convs)
    encodings = template.tokenizer.backend_tokenizer.encode_batch(batch.texts, add_special_tokens=False)
    for i, (conv, encoding) in enumerate(zip(convs, encodings)):
        spans = template.render(conv).assistant_spans
        assert batch.row(i).input_ids == encoding.ids
        assert batch.row(i).supervise_mask == ChatTemplate._mask_from_offsets(encoding.offsets, spans)
