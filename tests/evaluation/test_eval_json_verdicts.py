"""JSON verdicts: the judge and grader ask for ``response_format`` where the endpoint accepts it (probed once, the
answer cached), fall back to text parsing otherwise, and every verdict records which path produced it."""

import pytest
from conftest import endpoint, write_answers

from openchat_hf.evaluation.grade import GradeConfig, run_grade
from openchat_hf.evaluation.judge import JudgeConfig, run_judge
from openchat_hf.evaluation.records import read_rows

ANSWERS = {1: "A GOOD answer.", 2: "A BAD answer."}
BASELINE = {1: "Plain one.", 2: "Plain two.", 3: "Plain three."}


def judge(tmp_path, server, answers=ANSWERS, **kwargs):
    config = JudgeConfig(
        answers=write_answers(tmp_path / "m.jsonl", "my-model", answers),
        baseline=write_answers(tmp_path / "b.jsonl", "base", BASELINE),
        endpoint=endpoint(server),
        out_dir=tmp_path / "judge",
        question_ids=list(answers),
        **kwargs,
    )
    return config, run_judge(config)


@pytest.mark.parametrize(
    ("accepts", "mode", "probes"),
    [("json_schema", "json_schema", 1), ("json_object", "json_object", 2), ("reject", "off", 2), ("ignore", "off", 2)],
)
def test_the_endpoint_is_probed_once_and_verdicts_follow_what_it_accepts(
    tmp_path, judge_server, accepts, mode, probes
):
    judge_server.response_format = accepts
    config, result = judge(tmp_path, judge_server)
    assert result.verdict_mode == mode and len(judge_server.probes) == probes
    rows = read_rows(config.out_dir / "judgments.jsonl")
    source = "text" if mode == "off" else "json"
    assert {r["verdict_source"] for r in rows} == {source}
    assert {rv["verdict_source"] for r in rows for rv in r["reviews"]} == {source}
    kinds = {(r.get("response_format") or {}).get("type") for r in judge_server.requests}
    assert kinds == {None if mode == "off" else mode}
    by_id = {r["question_id"]: r for r in rows}
    good = {rv["order"]: rv for rv in by_id[1]["reviews"]}
    assert good["model_first"]["scores"] == [9, 6] and good["baseline_first"]["scores"] == [7, 8]
    if mode == "json_schema":
        schema = judge_server.requests[0]["response_format"]["json_schema"]["schema"]
        assert list(schema["properties"]) == ["evaluation", "score_1", "score_2"]  # evidence first
        assert '"evaluation"' in judge_server.requests[0]["messages"][-1]["content"]

    # a later run (one more question) reuses the cached probe answer: no new probe
    answers = {**ANSWERS, 3: "A GOOD third."}
    config.answers = write_answers(tmp_path / "m.jsonl", "my-model", answers)
    config.question_ids = list(answers)
    again = run_judge(config)
    assert again.judged == 1 and len(judge_server.probes) == probes and again.verdict_mode == mode


def test_an_unreadable_json_verdict_falls_back_to_text_then_retries(tmp_path, judge_server):
    judge_server.response_format = "json_schema"
    config, result = judge(tmp_path, judge_server, answers={1: "ALWAYS_MALFORMED"}, parse_retries=1)
    (row,) = read_rows(config.out_dir / "judgments.jsonl")
    assert all(r["error"] and r["attempts"] == 2 for r in row["reviews"])
    assert row["verdict_source"] == "text"


def test_presets_never_ask_for_json_unless_told(tmp_path, judge_server):
    judge_server.response_format = "json_schema"
    judge(tmp_path, judge_server, answers={1: "A GOOD answer."}, protocol="openchat-v1")
    assert not judge_server.probes
    assert all("response_format" not in r for r in judge_server.requests)


def test_the_grader_asks_for_a_json_rating(tmp_path, judge_server):
    judge_server.response_format = "json_object"
    answers = write_answers(tmp_path / "m.jsonl", "my-model", {81: ["A GOOD post.", "A BAD rewrite."]})
    run_grade(
        GradeConfig(answers=[answers], endpoint=endpoint(judge_server), out_dir=tmp_path / "g", question_ids=[81])
    )
    (row,) = read_rows(tmp_path / "g" / "grades.jsonl")
    assert [t["rating"] for t in row["turns"]] == [8, 4]
    assert row["verdict_source"] == "json" and {t["verdict_source"] for t in row["turns"]} == {"json"}
    assert row["protocol"] == "openchat-hf" and len(row["prompts_sha256"]) == 64
