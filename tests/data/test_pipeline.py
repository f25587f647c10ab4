"""The whole pipeline: report arithmetic, outputs that reload, template-exact tokens, split, overflow, bad input."""

import json
import math
from collections import Counter

import datasets
import pytest
from data_helpers import conversation, write_dump, write_page

from openchat_hf.data import DataPipelineError, PipelineConfig, run_pipeline
from openchat_hf.data.legacy import read_legacy_split
from openchat_hf.data.sample import build_conversations
from openchat_hf.model_types import ModelType, register_model_type
from openchat_hf.resources import SAMPLE_SHAREGPT_DIR
from openchat_hf.templates import setup_tokenizer

SHORT = register_model_type(ModelType(name="test_data_short", family="llama", max_length=96), overwrite=True)


def total_dropped(report):
    return sum(n for step in report["steps"].values() for n in step.values())


def test_sample_report_adds_up(sample_run):
    out, report = sample_run
    assert report == json.loads((out / "report.json").read_text())
    assert report["inputs"] == total_dropped(report) + report["kept"]
    files = list((SAMPLE_SHAREGPT_DIR / "ShareGPT").glob("*.html"))
    dump = json.loads((SAMPLE_SHAREGPT_DIR / "sharegpt_dump.json").read_text())
    assert report["inputs"] == len(files) + len(dump)
    assert report["steps"]["read"] == {"no_next_data": 1}  # the deleted page
    assert {"too_short", "empty_turn", "blocked_words"} <= set(report["steps"]["clean"])
    # The model filter runs as records are read: the malformed page without a model label is never cleaned.
    assert report["steps"]["filter"]["no_model_label"] == 1 and "wrong_roles" not in report["steps"]["clean"]
    assert report["steps"]["dedup"]["duplicate"] >= 4
    for name in ("openchat", "opencoder"):
        mt = report["model_types"][name]
        assert mt["input"] == report["kept"] == mt["train"] + mt["eval"] + sum(mt["dropped"].values())
    assert "| **kept** |" in (out / "report.md").read_text()


def test_sample_clean_dataset(sample_run):
    out, report = sample_run
    clean = datasets.load_from_disk(str(out / "clean"))
    assert clean.column_names == ["id", "model", "messages", "source", "index"]
    assert len(clean) == report["kept"]
    ids = set(clean["id"])
    assert "trimmed-leading-gpt" in ids  # leading assistant / trailing user turns trimmed, then kept
    assert not any(i.startswith("malformed") for i in ids)
    dups = {i.removesuffix("-dup") for i in ids if i.endswith("-dup")}
    assert dups and not dups & ids  # of each duplicate pair, only the first in input order is kept
    assert set(clean["model"]) == {"Model: GPT-4"}
    gpt4_in_sample = {c["id"] for c in build_conversations() if c["model"] == "Model: GPT-4"}
    assert {i.removesuffix("-dup") for i in ids} - {"trimmed-leading-gpt"} <= gpt4_in_sample
    for row in clean:
        assert [m["role"] for m in row["messages"]][:2] == ["user", "assistant"]
        text = " ".join(m["content"] for m in row["messages"])
        assert "Copy code" not in text and "openai" not in text.lower() and "<div" not in text
    assert any("```cpp\n" in m["content"] for row in clean for m in row["messages"])
    # Human turns of pages are HTML-escaped text (quotes too); the clean text has the characters back.
    assert any("&#x27;" in p.read_text() for p in (SAMPLE_SHAREGPT_DIR / "ShareGPT").glob("mtbench-*.html"))
    entities = ("&#x27;", "&quot;", "&lt;", "&gt;", "&amp;")
    assert not [m for row in clean for m in row["messages"] if any(e in m["content"] for e in entities)]
    assert any("'" in row["messages"][0]["content"] for row in clean if row["source"].endswith(".html"))
    assert any("| --- |" in m["content"] for row in clean for m in row["messages"])


def test_tokenized_outputs_match_the_template(sample_run, tokenizer_dirs):
    out, report = sample_run
    clean = datasets.load_from_disk(str(out / "clean"))
    for style, name in (("llama", "openchat"), ("gpt2", "opencoder")):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(tokenizer_dirs[style]))
        template = setup_tokenizer(tok, name)
        dd = datasets.load_from_disk(str(out / name))
        assert set(dd) == {"train", "eval"}
        assert dd["train"].column_names == ["input_ids", "supervise_mask", "length"]
        expected = {tuple(c.input_ids): c.supervise_mask for c in template.tokenize_batch(clean["messages"])}
        rows = list(dd["train"]) + list(dd["eval"])
        assert len(rows) == len(clean)
        for row in rows:
            assert expected[tuple(row["input_ids"])] == row["supervise_mask"]
            assert row["length"] == len(row["input_ids"])
        # The chat template gives the same ids (the one-template invariant, through the pipeline).
        first = template.tokenize(clean[0]["messages"]).input_ids
        assert tok.apply_chat_template(clean[0]["messages"], tokenize=True, return_dict=True)["input_ids"] == first
        # Legacy files hold the same rows in the same order.
        for split in ("train", "eval"):
            pairs, texts = read_legacy_split(out, name, split)
            assert [p[0] for p in pairs] == dd[split]["input_ids"]
            assert [p[1] for p in pairs] == dd[split]["supervise_mask"]
            assert [tok(t, add_special_tokens=False)["input_ids"] for t in texts] == dd[split]["input_ids"]
    assert report["model_types"]["openchat"]["eval"] == math.ceil(report["kept"] * 0.1)


def test_split_is_seeded_and_shared_by_model_types(sample_run, tokenizer_dirs, tmp_path):
    out, _ = sample_run
    eval_texts = read_legacy_split(out, "openchat", "eval")[1]
    eval_coder = read_legacy_split(out, "opencoder", "eval")[1]
    strip = [t.replace("<s>", "").replace("Human: ", "User:").replace("Assistant: ", "Assistant:") for t in eval_texts]
    assert strip == eval_coder  # the same conversations in both model types
    config = dict(
        model_types="openchat",
        tokenizer=str(tokenizer_dirs["llama"]),
        eval_ratio=0.1,
        legacy=True,
        decontaminate=False,
    )
    run_pipeline(SAMPLE_SHAREGPT_DIR, tmp_path / "same", PipelineConfig(**config))
    run_pipeline(SAMPLE_SHAREGPT_DIR, tmp_path / "other", PipelineConfig(**config, seed=7))
    assert read_legacy_split(tmp_path / "same", "openchat", "eval")[1] == eval_texts
    assert read_legacy_split(tmp_path / "other", "openchat", "eval")[1] != eval_texts


def _long_input(tmp_path):
    pages = tmp_path / "in" / "ShareGPT"
    for i in range(6):  # distinct long answers (identical ones would be near-duplicates)
        long_answer = " ".join(f"p{i}word{j}" for j in range(200))
        write_page(pages, f"p{i}", conversation(i, answer=long_answer if i % 2 else None))
    return tmp_path / "in"


@pytest.mark.parametrize("overflow", ["truncate", "drop"])
def test_overflow(tmp_path, tokenizer_dirs, overflow):
    config = PipelineConfig(
        model_types=SHORT.name, tokenizer=str(tokenizer_dirs["llama"]), overflow=overflow, eval_ratio=0
    )
    report = run_pipeline(_long_input(tmp_path), tmp_path / "out", config)
    mt = report["model_types"][SHORT.name]
    dd = datasets.load_from_disk(str(tmp_path / "out" / SHORT.name))
    assert max(dd["train"]["length"]) <= SHORT.max_length
    if overflow == "truncate":
        assert (mt["train"], mt["truncated"], mt["dropped"]["too_long"]) == (6, 3, 0)
        assert Counter(dd["train"]["length"])[SHORT.max_length] == 3
    else:
        assert (mt["train"], mt["truncated"], mt["dropped"]["too_long"]) == (3, 0, 3)


def test_special_token_strings_are_neutralised_and_counted(tmp_path, tokenizer_dirs):
    answer = "Write <|end_of_turn|> or </s> literally."
    write_page(tmp_path / "in", "s", conversation(1, answer=answer))
    config = PipelineConfig(model_types="openchat", tokenizer=str(tokenizer_dirs["llama"]), eval_ratio=0)
    report = run_pipeline(tmp_path / "in", tmp_path / "out", config)
    assert report["model_types"]["openchat"]["neutralized_special_tokens"] == 2
    ids = datasets.load_from_disk(str(tmp_path / "out" / "openchat"))["train"][0]["input_ids"]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dirs["llama"]))
    eot = setup_tokenizer(tok, "openchat") and tok.convert_tokens_to_ids("<|end_of_turn|>")
    assert ids.count(eot) == 2 and ids.count(tok.eos_token_id) == 0  # only the two real turn ends


def test_malformed_inputs_are_counted_never_lost(tmp_path):
    src = tmp_path / "in"
    pages = src / "ShareGPT"
    write_page(pages, "ok1", conversation(1))
    write_page(pages, "ok2", conversation(1))  # same content as ok1, later in input order
    write_page(pages, "gpt35", conversation(2, model="Model: Default (GPT-3.5)"))
    (pages / "deleted.html").write_text("<html><body>gone</body></html>")
    (pages / "latin1.html").write_bytes("caf\u00e9".encode("latin-1"))
    good = (pages / "ok1.html").read_text()
    (pages / "cut.html").write_text(good[: len(good) // 2])
    write_dump(src / "wrong.json", {"not": "a list"})
    text = json.dumps(
        [{"id": f"d{i}", "conversations": conversation(10 + i)["items"], "model": "Model: GPT-4"} for i in range(3)]
    )
    (src / "truncated.json").write_text(text[:-40])
    (src / "empty.json").write_text("")
    report = run_pipeline(src, tmp_path / "out", PipelineConfig())
    assert report["inputs"] == 6 + 1 + 3 + 1  # 6 pages, wrong.json, 2 complete + 1 truncated tail, empty.json
    assert report["steps"]["read"] == {"no_next_data": 1, "not_utf8": 1, "truncated_file": 3, "wrong_shape": 1}
    assert report["steps"]["dedup"] == {"duplicate": 1}
    assert report["steps"]["filter"] == {"model_filtered": 1}
    assert report["kept"] == 3 and report["inputs"] == total_dropped(report) + report["kept"]
    assert sorted(datasets.load_from_disk(str(tmp_path / "out" / "clean"))["id"]) == ["d0", "d1", "ok1"]


def test_bad_configuration_fails_early_with_clear_errors(tmp_path):
    write_page(tmp_path / "in", "p", conversation(1))
    with pytest.raises(DataPipelineError, match="Tokenizer folder .* does not exist"):
        run_pipeline(tmp_path / "in", tmp_path / "out", PipelineConfig(tokenizer=str(tmp_path / "nope")))
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataPipelineError, match="No ShareGPT input found"):
        (tmp_path / "empty").mkdir()
        run_pipeline(tmp_path / "empty", tmp_path / "out", PipelineConfig())
    with pytest.raises(DataPipelineError, match="Unknown model type"):
        PipelineConfig(model_types="nope")
    with pytest.raises(DataPipelineError, match="eval_ratio"):
        PipelineConfig(eval_ratio=1.5)
    with pytest.raises(DataPipelineError, match="No tokenizer given for model type"):
        run_pipeline(
            tmp_path / "in", tmp_path / "out", PipelineConfig(model_types="openchat,opencoder", tokenizer="openchat=x")
        )
    bad_tok = tmp_path / "badtok"
    bad_tok.mkdir()
    with pytest.raises(DataPipelineError, match="Cannot load a tokenizer"):
        run_pipeline(tmp_path / "in", tmp_path / "out", PipelineConfig(tokenizer=str(bad_tok)))


def test_parallel_run_gives_the_same_outputs(tmp_path, tokenizer_dirs, sample_run):
    out, report = sample_run
    config = PipelineConfig(
        model_types="openchat", tokenizer=str(tokenizer_dirs["llama"]), eval_ratio=0.1, num_proc=2, decontaminate=False
    )
    par = run_pipeline(SAMPLE_SHAREGPT_DIR, tmp_path / "par", config)
    assert par["steps"] == report["steps"] and par["kept"] == report["kept"]
    assert (
        datasets.load_from_disk(str(tmp_path / "par" / "clean"))[:] == datasets.load_from_disk(str(out / "clean"))[:]
    )
    assert read_legacy_split(tmp_path / "par", "openchat", "train") == read_legacy_split(out, "openchat", "train")


def test_clean_json_input_skips_html_conversion(tmp_path):
    rows = [
        {
            "id": "c",
            "model": "x",
            "messages": [{"role": "user", "content": "<p>lit</p>"}, {"role": "assistant", "content": "*ok*"}],
        }
    ]
    write_dump(tmp_path / "clean.json", rows)
    report = run_pipeline(tmp_path / "clean.json", tmp_path / "out", PipelineConfig(filter_models=[]))
    assert report["kept"] == 1
    assert datasets.load_from_disk(str(tmp_path / "out" / "clean"))[0]["messages"][0]["content"] == "<p>lit</p>"


def test_output_inside_the_input_folder_is_not_read_back(tmp_path):
    src = tmp_path / "in"
    write_page(src / "ShareGPT", "p1", conversation(1))
    write_page(src / "ShareGPT", "p2", conversation(2))
    first = run_pipeline(src, src / "out", PipelineConfig())
    again = run_pipeline(src, src / "out", PipelineConfig())  # report.json etc. under INPUT/out are skipped
    assert first["inputs"] == again["inputs"] == 2 and again["kept"] == 2
