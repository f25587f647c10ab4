"""``openchat-hf data run`` end to end on the planted corpus: decontamination and near-dedup drop what was planted
(with the measured precision / recall), keep the look-alikes, and log and report every drop."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from openchat_hf.data import PipelineConfig, run_pipeline
from openchat_hf.data.planted import make_planted_corpus, score
from openchat_hf.resources import SAMPLE_SHAREGPT_DIR

ROOT = Path(__file__).resolve().parents[2]


def _write(corpus, folder: Path) -> Path:
    folder.mkdir(parents=True)
    rows = [{"id": r["id"], "messages": r["messages"], "model": "Model: GPT-4"} for r in corpus.records]
    (folder / "planted.json").write_text(json.dumps(rows), encoding="utf-8")
    return folder


def _cli(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return subprocess.run(["openchat-hf", *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("planted")
    corpus = make_planted_corpus(400, seed=3)
    extra = tmp / "extra_prompts.jsonl"  # one more benchmark, planted verbatim below
    extra.write_text(json.dumps({"id": "x1", "prompt": "Explain the offside rule in football to a complete beginner"}))
    corpus.records.append(
        {
            "id": "c_extra",
            "messages": [
                {"role": "user", "content": "explain the OFFSIDE rule in football to a complete beginner!"},
                {"role": "assistant", "content": "A player is offside when nearer to the goal line than the ball."},
            ],
            "label": "contaminated",
            "kind": "extra_file",
            "of": "extra_prompts/x1",
        }
    )
    src = _write(corpus, tmp / "in")
    res = _cli("data", "run", src, tmp / "out", "--filter-model", "all", "--decontaminate-against", extra)
    assert res.returncode == 0, res.stderr[-3000:]
    return corpus, tmp / "out", res.stdout


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "dropped.jsonl").read_text(encoding="utf-8").splitlines()]


def test_planted_drops_precision_recall(planted_run):
    corpus, out, _ = planted_run
    index_of = {r["id"]: i for i, r in enumerate(corpus.records)}
    log = _log(out)
    deco = {index_of[e["id"]]: e["reason"] for e in log if e["step"] == "decontaminate"}
    near = {}
    for e in log:
        if e["step"] == "near_dedup":
            near[index_of[e["id"]]] = (e["cluster"], index_of[e["kept_id"]])
    # clusters are named by an id; score() wants the same cluster key for the kept one
    result = score(corpus, deco, near)
    assert result["decontaminate"]["all"]["precision"] == 1.0
    assert result["decontaminate"]["all"]["recall"] >= 0.95
    assert result["kinds"]["extra_file"]["decontaminated"] == 1
    nd = result["near_dedup"]
    assert nd["all"]["false_drops"] == 0
    for kind in ("edit_1pct", "edit_3pct", "edit_5pct", "regenerated"):
        assert nd[kind]["recall"] == 1.0, kind
    for kind in ("lookalike_topic", "lookalike_oneliner", "lookalike_opener", "lookalike_shared_sentences"):
        assert result["kinds"][kind]["decontaminated"] == result["kinds"][kind]["near_dropped"] == 0, kind


def test_every_drop_is_logged_and_reported(planted_run):
    corpus, out, stdout = planted_run
    report = json.loads((out / "report.json").read_text())
    log = _log(out)
    counts = Counter((e["step"], e["reason"]) for e in log)
    for step in ("decontaminate", "near_dedup"):
        assert report["steps"][step] == {r: n for (s, r), n in counts.items() if s == step}
        assert report["steps"][step]
    assert report["inputs"] == len(corpus.records) == report["kept"] + len(log)
    for e in log:
        if e["step"] == "decontaminate":
            assert e["rule"] == e["reason"] and e["matched_id"] and e["matched_excerpt"] and e["excerpt"]
        if e["step"] == "near_dedup":
            assert e["kept_id"] and e["cluster"] and e["rule"] in ("transcript", "first_turn") and e["similarity"] > 0
    deco = report["decontamination"]
    assert (
        deco["prompts"] == 205 and deco["files"][0].startswith("bundled") and "extra_prompts.jsonl" in deco["files"][1]
    )
    assert set(deco["hits_by_rule"]) == {"benchmark_exact", "benchmark_short", "benchmark_ngram", "benchmark_minhash"}
    assert report["near_dedup"]["clusters"] > 0
    md = (out / "report.md").read_text()
    assert "## Decontamination examples" in md and "## Near-duplicate examples" in md
    assert "| decontaminate | benchmark_exact |" in md and "| near_dedup | near_duplicate |" in md
    assert "## Decontamination examples" in stdout


def test_off_switches(tmp_path):
    corpus = make_planted_corpus(150, seed=4)
    src = _write(corpus, tmp_path / "in")
    config = PipelineConfig(filter_models=[], decontaminate=False, near_dedup=False)
    report = run_pipeline(src, tmp_path / "out", config)
    assert "decontaminate" not in report["steps"] or not report["steps"]["decontaminate"]
    assert "near_dedup" not in report["steps"] or not report["steps"]["near_dedup"]
    assert report["kept"] == len(corpus.records)
    strict = run_pipeline(src, tmp_path / "strict", PipelineConfig(filter_models=[], near_dedup_threshold=0.3))
    loose = run_pipeline(src, tmp_path / "loose", PipelineConfig(filter_models=[], near_dedup_threshold=0.9))
    assert strict["steps"]["near_dedup"]["near_duplicate"] > loose["steps"]["near_dedup"]["near_duplicate"]


def test_bundled_sample_is_benchmark_text(tmp_path):
    """The bundled sample set is made of Vicuna-bench / MT-bench questions: decontamination drops them."""
    report = run_pipeline(SAMPLE_SHAREGPT_DIR, tmp_path / "out", PipelineConfig(filter_models=[]))
    dropped = sum(report["steps"]["decontaminate"].values())
    assert dropped >= 0.9 * (
        report["inputs"] - sum(report["steps"]["read"].values()) - sum(report["steps"]["clean"].values())
    )


def test_bad_prompts_file_is_a_one_line_error_before_any_work(tmp_path):
    src = _write(make_planted_corpus(20, seed=5, plant=False), tmp_path / "in")
    (tmp_path / "bad.json").write_text("{oops")
    for path, message in (
        (tmp_path / "missing.jsonl", "Cannot read the benchmark prompts file"),
        (tmp_path / "bad.json", "is not JSON"),
    ):
        res = _cli("data", "run", src, tmp_path / "out", "--decontaminate-against", path)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "out").exists()
    res = _cli("data", "run", src, tmp_path / "out", "--near-dedup-threshold", "1.5")
    assert res.returncode == 2 and "threshold must be in (0, 1]" in res.stderr
