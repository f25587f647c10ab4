"""Bad input as users give it: a dump without model labels, a run where nothing survives, a model folder as INPUT."""

import json
import os
import subprocess
import sys

import datasets
import pytest
from data_helpers import conversation, write_dump, write_page
from test_html_detection import REAL

from openchat_hf.data import DataPipelineError, PipelineConfig, run_pipeline
from openchat_hf.data.droplog import read_drop_log


def _cli(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "openchat_hf.cli", "data", "run", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _sharegpt_v3_dump(path, n=6):
    """The layout of ShareGPT_V3_unfiltered_cleaned_split.json: Markdown values, split ids, no ``model`` field."""
    questions = ["How do I write a web page?", "Explain recursion.", "Write a haiku.", "Sort a list in Python."]
    records = [
        {
            "id": f"QWJhYvA_{i // 2}" + (f"_{i % 2}" if i % 2 else ""),
            "conversations": [
                {"from": "human", "value": questions[i % len(questions)] + f" ({i})"},
                {"from": "gpt", "value": REAL[(7 * i) % len(REAL)]},
            ],
        }
        for i in range(n)
    ]
    return write_dump(path, records), records


def test_model_filter_that_cannot_apply_is_refused_before_any_work(tmp_path, tokenizer_dirs):
    dump, records = _sharegpt_v3_dump(tmp_path / "ShareGPT_V3_unfiltered_cleaned_split.json")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("{}")  # an earlier run's output is left alone
    with pytest.raises(DataPipelineError, match=r"carries a ShareGPT 'model' label.*--filter-model all"):
        run_pipeline(dump, out, PipelineConfig(tokenizer=str(tokenizer_dirs["llama"])))
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    res = _cli(dump, tmp_path / "new", "--tokenizer", tokenizer_dirs["llama"])
    assert res.returncode == 2 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]  # after datasets' progress bars: one error line
    assert last.startswith("openchat-hf data: error: None of the 6 readable records") and "--filter-model all" in last
    assert not (tmp_path / "new").exists()
    # The option it names keeps everything.
    res = _cli(dump, tmp_path / "all", "--tokenizer", tokenizer_dirs["llama"], "--filter-model", "all")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "all" / "report.json").read_text())
    assert report["kept"] == len(records) and report["input_models"] == {"": len(records)}
    clean = datasets.load_from_disk(str(tmp_path / "all" / "clean"))
    assert [m["content"] for m in clean[0]["messages"]] == [t["value"] for t in records[0]["conversations"]]


def test_run_where_nothing_survives_the_filter_ends_with_its_report(tmp_path, tokenizer_dirs):
    pages = tmp_path / "in" / "ShareGPT"
    for i in range(3):
        write_page(pages, f"p{i}", conversation(i, model="Model: Default (GPT-3.5)"))
    config = PipelineConfig(tokenizer=str(tokenizer_dirs["llama"]))
    report = run_pipeline(tmp_path / "in", tmp_path / "out", config)
    assert report["kept"] == 0 and report["model_types"] == {}
    assert report["messages"][0].startswith("Nothing was kept: all 3 records were dropped (filter/model_filtered: 3)")
    assert "model labels found: 'Model: Default (GPT-3.5)': 3" in report["messages"][0]
    assert "--filter-model all" in (tmp_path / "out" / "report.md").read_text()
    assert len(list(read_drop_log(tmp_path / "out"))) == 3
    res = _cli(tmp_path / "in", tmp_path / "out2", "--tokenizer", tokenizer_dirs["llama"])
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("openchat-hf data: error: Nothing was kept: all 3 records")
    assert "| **kept** | | **0** |" in res.stdout
    assert (tmp_path / "out2" / "report.json").exists()


def test_model_type_with_nothing_left_after_convert_ends_with_its_report(tmp_path, tokenizer_dirs):
    pages = tmp_path / "in"
    write_page(pages, "long", conversation(1, answer=" ".join(f"w{i}" for i in range(2500))))  # > 2,048 tokens
    args = ["--tokenizer", tokenizer_dirs["llama"], "--overflow", "drop", "--eval-ratio", "0"]
    res = _cli(pages, tmp_path / "out", *args)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last == "openchat-hf data: error: openchat: no training conversation left (too_long: 1); see dropped.jsonl."
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["kept"] == 1 and report["model_types"]["openchat"]["train"] == 0
    assert datasets.load_from_disk(str(tmp_path / "out" / "openchat"))["train"].num_rows == 0


def test_model_or_tokenizer_folder_as_input_is_named(tmp_path, tiny_llama_dir, tokenizer_dirs):
    res = _cli(tiny_llama_dir, tmp_path / "out")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "holds a model (config.json" in res.stderr and "model.safetensors" in res.stderr
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataPipelineError, match=r"holds a tokenizer \(tokenizer.json, tokenizer_config.json\)"):
        run_pipeline(tokenizer_dirs["llama"], tmp_path / "out", PipelineConfig())
    with pytest.raises(DataPipelineError, match=r"holds the output of `openchat-hf data run`"):
        write_page(tmp_path / "in", "p", conversation(1))
        run_pipeline(tmp_path / "in", tmp_path / "out", PipelineConfig())
        run_pipeline(tmp_path / "out", tmp_path / "out2", PipelineConfig())


def test_model_folder_inside_the_input_is_skipped_and_reported(tmp_path, tiny_llama_dir):
    import shutil

    src = tmp_path / "in"
    write_page(src / "ShareGPT", "p", conversation(1))
    shutil.copytree(tiny_llama_dir, src / "base-model")
    report = run_pipeline(src, tmp_path / "out", PipelineConfig())
    assert report["inputs"] == report["kept"] == 1
    assert report["skipped_folders"] == [
        "base-model: a model (config.json, generation_config.json, model.safetensors, tokenizer.json)"
    ]
    assert "Skipped base-model: a model" in (tmp_path / "out" / "report.md").read_text()


def test_duplicate_ids_with_different_content_are_reported(tmp_path):
    conv = [{"id": "same", "conversations": conversation(i)["items"], "model": "Model: GPT-4"} for i in range(3)]
    conv.append({"id": "same", "conversations": conversation(0)["items"], "model": "Model: GPT-4"})  # a true copy
    conv.append({"id": "other", "conversations": conversation(7)["items"], "model": "Model: GPT-4"})
    write_dump(tmp_path / "in" / "a.json", conv[:2])
    write_dump(tmp_path / "in" / "b.json", conv[2:])
    report = run_pipeline(tmp_path / "in", tmp_path / "out", PipelineConfig())
    assert report["kept"] == 4 and report["steps"]["dedup"] == {"duplicate": 1}
    records = [{"source": "a.json", "index": 0}, {"source": "a.json", "index": 1}, {"source": "b.json", "index": 0}]
    assert report["duplicate_ids"] == {"ids": 1, "records": 3, "examples": [{"id": "same", "records": records}]}
    lines = (tmp_path / "out" / "duplicate_ids.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"id": "same", "records": records}]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Duplicate ids" in md and "- `same`: a.json#0, a.json#1, b.json#0" in md
    assert any("1 id is carried by 3 kept conversations of different content" in m for m in report["messages"])


def test_real_markdown_answer_that_is_an_html_page_survives_the_pipeline(tmp_path):
    page = next(t for t in REAL if t.startswith("<!DOCTYPE html>"))
    fenced = next(t for t in REAL if "<html" in t and not t.startswith("<!DOCTYPE"))
    rows = [
        {
            "id": "a",
            "conversations": [{"from": "human", "value": "Write a joke page."}, {"from": "gpt", "value": page}],
        },
        {"id": "b", "conversations": [{"from": "human", "value": "Make it red."}, {"from": "gpt", "value": fenced}]},
    ]
    write_dump(tmp_path / "dump.json", rows)
    run_pipeline(
        tmp_path / "dump.json", tmp_path / "out", PipelineConfig(filter_models=[], near_dedup=False)
    )  # the second answer quotes the first
    clean = datasets.load_from_disk(str(tmp_path / "out" / "clean"))
    assert [row["messages"][1]["content"] for row in clean] == [page.strip(), fenced.strip()]
