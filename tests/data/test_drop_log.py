"""The drop log: every input record is kept or is one line of dropped.jsonl, and the report counts are its counts."""

import json
from collections import Counter

import datasets
from data_helpers import conversation, write_dump, write_page

from openchat_hf.data import PipelineConfig, run_pipeline
from openchat_hf.data.droplog import read_drop_log
from openchat_hf.resources import SAMPLE_SHAREGPT_DIR

KEYS = ("source", "index", "id", "step", "reason", "excerpt")


def _log_counts(lines, model_type=None):
    return Counter((d["step"], d["reason"]) for d in lines if d.get("model_type") == model_type)


def test_every_input_record_is_kept_or_logged_once(sample_run):
    out, report = sample_run
    lines = list(read_drop_log(out))
    assert all(tuple(d)[: len(KEYS)] == KEYS and d["excerpt"] for d in lines)
    # The report's counts are the counts of the log.
    assert _log_counts(lines) == Counter({(s, r): n for s, rs in report["steps"].items() for r, n in rs.items()})
    for name, mt in report["model_types"].items():
        assert dict(_log_counts(lines, name)) == {("convert", r): n for r, n in mt["dropped"].items() if n}
    # Each input record (file, position) is either a row of the clean dataset or one non-convert log line.
    pages = sorted((SAMPLE_SHAREGPT_DIR / "ShareGPT").glob("*.html"))
    dump = json.loads((SAMPLE_SHAREGPT_DIR / "sharegpt_dump.json").read_text())
    inputs = {(f"ShareGPT/{p.name}", 0) for p in pages} | {("sharegpt_dump.json", i) for i in range(len(dump))}
    clean = datasets.load_from_disk(str(out / "clean"))
    kept = list(zip(clean["source"], clean["index"]))
    dropped = [(d["source"], d["index"]) for d in lines if d["step"] != "convert"]
    assert len(kept) + len(dropped) == len(inputs) == report["inputs"]
    assert set(kept) | set(dropped) == inputs and not set(kept) & set(dropped)
    # Ids are the records' own: dump records carry theirs.
    by_place = {(d["source"], d["index"]): d for d in lines}
    for i, rec in enumerate(dump):
        if ("sharegpt_dump.json", i) in by_place:
            assert by_place[("sharegpt_dump.json", i)]["id"] == rec.get("id")


def test_duplicates_name_the_record_kept_and_report_md_lists_top_reasons(sample_run):
    out, report = sample_run
    lines = list(read_drop_log(out))
    clean = datasets.load_from_disk(str(out / "clean"))
    kept_ids = set(clean["id"])
    dups = [d for d in lines if d["reason"] == "duplicate"]
    assert dups and all(d["kept_id"] in kept_ids and d["kept_id"] != d["id"] for d in dups)
    kept_at = dict(zip(clean["id"], zip(clean["source"], clean["index"])))
    assert all(kept_at[d["kept_id"]] == (d["kept_source"], d["kept_index"]) for d in dups)
    blocked = [d for d in lines if d["reason"] == "blocked_words"]
    assert all("'OpenAI' in turn" in d["excerpt"] for d in blocked)
    md = (out / "report.md").read_text()
    assert "## Top drop reasons" in md
    top = report["top_drops"]
    assert top[0]["records"] == max(n for rs in report["steps"].values() for n in rs.values())
    for drop in top:
        assert f"**{drop['step']} / {drop['reason']}**: {drop['records']} record" in md
        for example in drop["examples"]:
            assert f"`{example['source']}#{example['index']}" in md
            assert any({k: d[k] for k in example} == example for d in lines)


def test_hostile_inputs_are_logged_with_what_was_wrong(tmp_path):
    src = tmp_path / "in"
    pages = src / "ShareGPT"
    write_page(pages, "ok", conversation(1))
    (pages / "latin1.html").write_bytes("<html>caf\u00e9</html>".encode("latin-1"))
    text = json.dumps([{"id": f"d{i}", "conversations": conversation(10 + i)["items"]} for i in range(3)])
    (src / "cut.json").write_text(text[:-40])
    write_dump(
        src / "shapes.json", [{"conversations": "nope"}, 7, {"id": "x", "items": [{"from": "human", "value": 3}]}]
    )
    (src / "lines.jsonl").write_text("{broken\n")
    report = run_pipeline(src, tmp_path / "out", PipelineConfig(filter_models=[]))
    lines = {(d["source"], d["index"]): d for d in read_drop_log(tmp_path / "out")}
    assert lines[("ShareGPT/latin1.html", 0)]["excerpt"] == "byte 0xe9 at offset 9 is not UTF-8"
    assert lines[("cut.json", 2)]["reason"] == "truncated_file"
    assert "ends inside record 2" in lines[("cut.json", 2)]["excerpt"]
    assert lines[("shapes.json", 0)]["id"] is None and "keys: conversations" in lines[("shapes.json", 0)]["excerpt"]
    assert lines[("shapes.json", 1)]["excerpt"] == "not an object: 7"
    assert lines[("shapes.json", 2)]["id"] == "x" and "turn 0 needs string" in lines[("shapes.json", 2)]["excerpt"]
    assert lines[("lines.jsonl", 0)]["reason"] == "invalid_json"
    assert report["kept"] == 3 and len(lines) == report["inputs"] - 3


def test_convert_drops_are_logged_per_model_type(tmp_path, tokenizer_dirs):
    from test_pipeline import SHORT, _long_input

    config = PipelineConfig(model_types=SHORT.name, tokenizer=str(tokenizer_dirs["llama"]), overflow="drop")
    report = run_pipeline(_long_input(tmp_path), tmp_path / "out", config)
    lines = [d for d in read_drop_log(tmp_path / "out") if d["step"] == "convert"]
    assert len(lines) == report["model_types"][SHORT.name]["dropped"]["too_long"] == 3
    assert {d["model_type"] for d in lines} == {SHORT.name}
    assert all(d["excerpt"].endswith("how do I sort a list?") and "tokens (context 96)" in d["excerpt"] for d in lines)
    assert sorted(d["id"] for d in lines) == ["p1", "p3", "p5"]
