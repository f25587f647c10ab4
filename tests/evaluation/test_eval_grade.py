"""MT-bench single-answer grading against the fake judge: per-turn ratings, reference answers, failures, report."""

import json

from conftest import endpoint, write_answers

from openchat_hf.evaluation.grade import GradeConfig, run_grade
from openchat_hf.evaluation.records import read_rows
from openchat_hf.evaluation.report import build_report

# 81 writing, 111 math (has a GPT-4 reference), 121 coding (has one)
ANSWERS = {
    81: ["A GOOD blog post about Hawaii.", "A BAD rewrite."],
    111: ["The area is 3. GOOD", "ALWAYS_MALFORMED"],
    121: ["def f(): pass", "GOOD follow-up"],
}


def test_grades_per_turn_with_references_and_failures(tmp_path, judge_server):
    answers = write_answers(tmp_path / "m.jsonl", "my-model", ANSWERS)
    out = tmp_path / "grade"
    cfg = GradeConfig(answers=[answers], endpoint=endpoint(judge_server), out_dir=out, parse_retries=1)
    cfg.question_ids = list(ANSWERS)
    result = run_grade(cfg)
    assert result.graded == 3 and result.failed_ratings == 1
    rows = {r["question_id"]: r for r in read_rows(out / "grades.jsonl")}
    assert [t["rating"] for t in rows[81]["turns"]] == [8, 4]
    assert [t["rating"] for t in rows[121]["turns"]] == [6, 8]
    math_turn2 = rows[111]["turns"][1]
    assert math_turn2["rating"] is None and math_turn2["attempts"] == 2 and "unparseable" in math_turn2["error"]

    prompts = [r["messages"][-1]["content"] for r in judge_server.requests]
    math_first = [p for p in prompts if "The area is 3." in p and "### Assistant:" not in p][0]
    assert "[The Start of Reference Answer]" in math_first  # the shipped GPT-4 reference for question 111
    writing = [p for p in prompts if "blog post about Hawaii" in p]
    assert writing and not any("Reference" in p for p in writing)
    turn2 = [p for p in prompts if "A BAD rewrite." in p][0]
    assert "A GOOD blog post about Hawaii." in turn2 and "turn 2" in turn2

    calls = judge_server.chat_calls
    assert run_grade(cfg).graded == 0 and judge_server.chat_calls == calls  # resumed: nothing left to do

    report = build_report([out])
    (mt,) = report["mt_bench"]["models"]
    assert mt["turns"] == {"1": (8 + 8 + 6) / 3, "2": (4 + 8) / 2}
    assert mt["categories"] == {"coding": 7.0, "math": 8.0, "writing": 6.0}
    assert mt["failures"] == 1 and report["models"] == [] and report["bench"] == "mt_bench"
    assert json.loads((out / "meta.json").read_text())["kind"] == "single"


def test_report_lists_each_models_graded_questions(tmp_path, judge_server):
    """``mt_bench.models[].questions``: the viewer's per-question grade table, one entry per graded question."""
    out = tmp_path / "grade"
    files = [
        write_answers(tmp_path / "m.jsonl", "my-model", ANSWERS),
        write_answers(tmp_path / "o.jsonl", "other", {81: ["GOOD", "GOOD again"], 121: ["BAD", "GOOD"]}),
    ]
    cfg = GradeConfig(answers=files, endpoint=endpoint(judge_server), out_dir=out, parse_retries=1)
    cfg.question_ids = list(ANSWERS)
    run_grade(cfg)
    rows = {(r["model"], r["question_id"]): r for r in read_rows(out / "grades.jsonl")}

    report = build_report([out], allow_partial=True)
    by_model = {m["model"]: m for m in report["mt_bench"]["models"]}
    mine, other = by_model["my-model"]["questions"], by_model["other"]["questions"]
    assert [q["question_id"] for q in mine] == [81, 111, 121] and [q["question_id"] for q in other] == [81, 121]
    assert [q["category"] for q in mine] == ["writing", "math", "coding"]
    for model, questions in (("my-model", mine), ("other", other)):
        for q in questions:
            graded = rows[(model, q["question_id"])]["turns"]
            assert q["turns"] == [{k: t[k] for k in ("turn", "rating", "text", "error")} for t in graded]
    failed = mine[1]["turns"][1]
    assert failed["turn"] == 2 and failed["rating"] is None and "unparseable" in failed["error"] and failed["text"]
    assert [t["rating"] for t in mine[0]["turns"]] == [8, 4]
