"""Pairwise judging against a fake judge over real HTTP: BPC, parse retries, failures, 429/5xx/timeouts, caching,
resumability and the estimate."""

import json

import pytest
from conftest import endpoint, write_answers

from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.judge import JudgeConfig, run_judge
from openchat_hf.evaluation.records import read_rows
from openchat_hf.evaluation.report import build_report

BASELINE = {i: f"A plain baseline answer number {i}." for i in range(1, 9)}


@pytest.fixture
def baseline_file(tmp_path):
    return write_answers(tmp_path / "baseline.jsonl", "base-model", BASELINE)


def run(tmp_path, server, model_answers, baseline_file, out="judge", **kwargs):
    answers = write_answers(tmp_path / "model.jsonl", "my-model", model_answers)
    kwargs.setdefault("question_ids", list(model_answers))
    config = JudgeConfig(
        answers=answers,
        baseline=baseline_file,
        endpoint=endpoint(server, **kwargs.pop("endpoint", {})),
        out_dir=tmp_path / out,
        **kwargs,
    )
    return config, run_judge(config)


def rows_by_id(out_dir):
    return {row["question_id"]: row for row in read_rows(out_dir / "judgments.jsonl")}


def test_both_orders_are_judged_and_mapped_back(tmp_path, judge_server, baseline_file):
    config, result = run(
        tmp_path, judge_server, {1: "A GOOD answer.", 2: "A BAD answer.", 3: "Same quality."}, baseline_file
    )
    assert result.judged == 3 and judge_server.chat_calls == 6
    rows = rows_by_id(config.out_dir)
    good = {r["order"]: r for r in rows[1]["reviews"]}
    # judge: GOOD = 8, plain = 6, +1 for whoever is shown first
    assert good["model_first"]["scores"] == [9, 6] and good["baseline_first"]["scores"] == [7, 8]
    assert (good["baseline_first"]["model_score"], good["baseline_first"]["baseline_score"]) == (8, 7)
    report = build_report([config.out_dir])
    questions = {q["question_id"]: q for q in report["models"][0]["questions"]}
    assert (questions[1]["model_score"], questions[1]["baseline_score"], questions[1]["outcome"]) == (8.5, 6.5, "win")
    assert (questions[2]["model_score"], questions[2]["outcome"]) == (4.5, "loss")
    assert questions[3]["outcome"] == "tie"  # the position bias cancels out
    # the second order really swaps the answers in the prompt
    first = [r for r in judge_server.requests if "A GOOD answer." in r["messages"][-1]["content"]]
    contents = sorted(r["messages"][-1]["content"] for r in first)
    assert [c.index("A GOOD answer.") < c.index(BASELINE[1]) for c in contents].count(True) == 1


def test_parse_failures_are_retried_then_recorded_never_scored(tmp_path, judge_server, baseline_file):
    answers = {1: "MALFORMED_ONCE but GOOD", 2: "ALWAYS_MALFORMED", 3: "MALFORMED_WHEN_FIRST GOOD"}
    config, result = run(tmp_path, judge_server, answers, baseline_file, parse_retries=2)
    rows = rows_by_id(config.out_dir)
    once = rows[1]["reviews"]
    assert all(r["error"] is None for r in once) and {r["attempts"] for r in once} == {2}
    always = rows[2]["reviews"]
    assert all(r["scores"] is None and r["attempts"] == 3 for r in always)
    assert all(
        "unparseable" in r["error"] and r["text"] == "Both answers are fine, I cannot decide between them."
        for r in always
    )
    when_first = {r["order"]: r for r in rows[3]["reviews"]}
    assert when_first["model_first"]["error"] and when_first["baseline_first"]["scores"] == [7, 8]
    assert result.failed_reviews == 3
    model = build_report([config.out_dir])["models"][0]
    q = {q["question_id"]: q for q in model["questions"]}
    assert q[2]["outcome"] == "failed" and q[2]["model_score"] is None
    assert (q[3]["model_score"], q[3]["baseline_score"], q[3]["outcome"]) == (8, 7, "win")  # the other order only
    assert model["failures"] == 3 and model["failed_questions"] == 1
    assert model["model_total"] == 8.5 + 8 and model["baseline_total"] == 6.5 + 7


def test_rate_limits_server_errors_and_timeouts_are_retried(tmp_path, judge_server, baseline_file):
    judge_server.slow_seconds = 1.5
    answers = {1: "RATE_LIMIT GOOD", 2: "SERVER_ERROR GOOD", 3: "SLOW GOOD"}
    config, result = run(tmp_path, judge_server, answers, baseline_file, endpoint={"timeout": 0.5})
    assert result.judged == 3 and not result.endpoint_failures and result.failed_reviews == 0
    assert judge_server.statuses[429] == 4 and judge_server.statuses[500] == 2
    outcomes = [q["outcome"] for q in build_report([config.out_dir])["models"][0]["questions"]]
    assert outcomes == ["win", "win", "win"]


def test_rerun_costs_nothing_and_a_shared_cache_is_reused(tmp_path, judge_server, baseline_file):
    answers = {1: "GOOD", 2: "MALFORMED_ONCE BAD", 3: "plain"}
    config, first = run(tmp_path, judge_server, answers, baseline_file)
    calls = judge_server.chat_calls
    assert first.stats.calls == calls == 8  # 6 reviews + 2 parse retries
    _, again = run(tmp_path, judge_server, answers, baseline_file)
    assert again.judged == 0 and again.skipped == 3 and judge_server.chat_calls == calls
    # a new output folder with the same cache: every call (retries included) comes from the cache
    _, fresh = run(
        tmp_path, judge_server, answers, baseline_file, out="judge2", cache_path=config.out_dir / "cache.jsonl"
    )
    assert fresh.judged == 3 and fresh.stats.calls == 0 and fresh.stats.cache_hits == 8
    assert judge_server.chat_calls == calls
    assert rows_by_id(tmp_path / "judge2")[2]["reviews"] == rows_by_id(config.out_dir)[2]["reviews"]


def test_samples_are_separate_cached_calls(tmp_path, judge_server, baseline_file):
    config, result = run(tmp_path, judge_server, {1: "GOOD", 2: "BAD"}, baseline_file, samples=3)
    assert judge_server.chat_calls == 12 and result.estimate["calls"] == 12
    assert {r["temperature"] for r in judge_server.requests} == {1.0}
    reviews = rows_by_id(config.out_dir)[1]["reviews"]
    assert sorted((r["order"], r["sample"]) for r in reviews) == [
        (o, s) for o in ("baseline_first", "model_first") for s in range(3)
    ]
    assert json.loads((config.out_dir / "meta.json").read_text())["judge"]["samples"] == 3


def test_an_outage_loses_nothing(tmp_path, judge_server, baseline_file):
    answers = {i: "GOOD" for i in range(1, 7)}
    judge_server.down = True
    config, result = run(tmp_path, judge_server, answers, baseline_file, endpoint={"max_retries": 1})
    assert result.judged == 0 and len(result.endpoint_failures) == 6
    assert read_rows(config.out_dir / "judgments.jsonl") == []
    judge_server.down = False
    before = judge_server.chat_calls
    _, result = run(tmp_path, judge_server, answers, baseline_file)
    assert result.judged == 6 and judge_server.chat_calls - before == 12
    assert len(rows_by_id(config.out_dir)) == 6


def test_dry_run_estimates_without_calling(tmp_path, judge_server, baseline_file):
    answers = write_answers(tmp_path / "model.jsonl", "my-model", {1: "GOOD", 2: "BAD"})
    seen = []
    config = JudgeConfig(
        answers=answers,
        baseline=baseline_file,
        endpoint=endpoint(judge_server),
        out_dir=tmp_path / "j",
        question_ids=[1, 2],
        samples=2,
        max_tokens=500,
    )
    result = run_judge(config, dry_run=True, on_estimate=seen.append)
    assert judge_server.chat_calls == 0 and not (tmp_path / "j" / "judgments.jsonl").exists()
    assert seen == [result.estimate]
    assert result.estimate["calls"] == 8 and result.estimate["max_completion_tokens"] == 4000
    assert result.estimate["prompt_tokens"] > 8 * 100  # every prompt holds the instructions


def test_changed_settings_and_missing_answers_are_clear_errors(tmp_path, judge_server, baseline_file):
    run(tmp_path, judge_server, {1: "GOOD"}, baseline_file)
    with pytest.raises(EvaluationError, match="other settings"):
        run(tmp_path, judge_server, {1: "GOOD"}, baseline_file, samples=2)
    with pytest.raises(EvaluationError, match="no question"):
        run(tmp_path, judge_server, {70: "GOOD"}, baseline_file, out="other", question_ids=None)


def test_shipped_baseline_by_name(tmp_path, judge_server):
    answers = write_answers(tmp_path / "model.jsonl", "my-model", {1: "GOOD", 61: "BAD code"})
    config = JudgeConfig(answers=answers, baseline="gpt35", endpoint=endpoint(judge_server), out_dir=tmp_path / "j")
    result = run_judge(config)
    assert result.judged == 2
    meta = json.loads((tmp_path / "j" / "meta.json").read_text())
    assert meta["baseline"] == "gpt-3.5-turbo:20230327"
    coding_prompt = [r for r in judge_server.requests if "BAD code" in r["messages"][-1]["content"]][0]
    assert "programming question" in coding_prompt["messages"][-1]["content"]
