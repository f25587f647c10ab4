"""Hostile endpoints and stale folders over real HTTP: broken 200 bodies are retried, recorded per item and resumed;
judgments made from other inputs are refused (saying which) or redone; partial folders are never reported as whole."""

import ast
import json
import logging
from pathlib import Path

import pytest
from conftest import endpoint, write_answers

from openchat_hf.cli import main
from openchat_hf.evaluation.answers import AnswerConfig, generate_answers
from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.grade import GradeConfig, run_grade
from openchat_hf.evaluation.judge import JudgeConfig, run_judge
from openchat_hf.evaluation.records import read_rows
from openchat_hf.evaluation.report import build_report, render_markdown

BASELINE = {i: f"A plain baseline answer number {i}." for i in range(1, 6)}


def judge_config(tmp_path, server, answers: dict, out="judge", **kwargs):
    model = write_answers(tmp_path / f"{out}-model.jsonl", "my-model", answers)
    base = write_answers(tmp_path / "baseline.jsonl", "base-model", BASELINE)
    kwargs.setdefault("question_ids", list(answers))
    return JudgeConfig(
        answers=model,
        baseline=base,
        endpoint=endpoint(server, retry_delay=0.01),
        out_dir=tmp_path / out,
        **kwargs,
    )


@pytest.mark.parametrize("kind", ["bad_json", "empty_choices", "no_message", "html"])
def test_a_broken_200_is_retried_and_then_passes(tmp_path, judge_server, kind):
    judge_server.add_fault("BROKEN", kind, times=2)  # two broken bodies, then a good one (3 retries allowed)
    config = judge_config(tmp_path, judge_server, {1: "A GOOD answer BROKEN.", 2: "Plain."})
    result = run_judge(config)
    assert result.judged == 2 and not result.endpoint_failures
    rows = {r["question_id"]: r for r in read_rows(config.out_dir / "judgments.jsonl")}
    assert all(r["error"] is None for r in rows[1]["reviews"])
    assert not (config.out_dir / "failures.jsonl").exists()


@pytest.mark.parametrize("kind", ["bad_json", "empty_choices"])
def test_a_judge_that_keeps_sending_broken_bodies_fails_only_that_item_recorded_and_resumable(
    tmp_path, judge_server, kind, capsys
):
    judge_server.add_fault("BROKEN", kind, times=None)
    config = judge_config(tmp_path, judge_server, {1: "A GOOD answer BROKEN.", 2: "Plain.", 3: "A BAD one."})
    result = run_judge(config)
    assert result.judged == 2 and len(result.endpoint_failures) == 1  # the others are judged
    failures = read_rows(config.out_dir / "failures.jsonl")
    assert [(f["step"], f["question_id"]) for f in failures] == [("judge", 1)]
    expected = "the response has no choices" if kind == "empty_choices" else "not a valid completion"
    assert expected in failures[0]["error"] and "after 4 attempts" in failures[0]["error"]
    with pytest.raises(EvaluationError, match="1 of 3 questions judged|2 of 3 questions judged"):
        build_report([config.out_dir])
    judge_server.faults.clear()  # the judge recovers: the same command finishes the one item
    again = run_judge(config)
    assert (again.judged, again.skipped, again.endpoint_failures) == (1, 2, [])
    assert build_report([config.out_dir])["models"][0]["coverage"] == {"judged": 3, "total": 3, "complete": True}


def test_the_cli_exits_1_with_a_one_line_message_on_a_broken_judge(tmp_path, judge_server, capsys):
    judge_server.add_fault("BROKEN", "bad_json", times=None)
    model = write_answers(tmp_path / "m.jsonl", "my-model", {1: "BROKEN", 2: "fine"})
    code = main(
        ["eval", "judge", "--answers", str(model), "--baseline", "gpt35", "--judge-base-url", judge_server.base_url]
        + ["--judge-model", "j", "--out", str(tmp_path / "j"), "--question-ids", "1", "2", "--max-retries", "0"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "run the same command again" in err


@pytest.mark.parametrize("kind", ["bad_json", "empty_choices"])
def test_answers_record_a_broken_model_per_question_and_resume(tmp_path, model_server, kind):
    from openchat_hf.evaluation.questions import load_questions

    question = {str(q.question_id): q for q in load_questions("vicuna")}["2"]
    model_server.add_fault(question.turns[0][:40], kind, times=None)
    config = AnswerConfig(
        endpoint=endpoint(model_server, model="m", retry_delay=0.01),
        out_dir=tmp_path,
        question_ids=["1", "2", "3"],
    )
    result = generate_answers(config)
    assert result.written == 2 and len(result.failed) == 1 and "question 2" in result.failed[0]
    assert [(f["step"], f["question_id"]) for f in read_rows(config.failures_path)] == [("answers", 2)]
    calls = model_server.chat_calls
    assert calls == 2 + 4  # two good answers, four tries of the broken one
    model_server.faults.clear()
    again = generate_answers(config)
    assert (again.written, again.skipped) == (1, 2)
    assert sorted(r["question_id"] for r in read_rows(config.out_path)) == [1, 2, 3]


def test_judging_other_answers_into_the_same_folder_is_refused_naming_what_changed(tmp_path, judge_server):
    config = judge_config(tmp_path, judge_server, {1: "A GOOD answer.", 2: "Plain.", 3: "A BAD one."})
    run_judge(config)
    # same model name, another answers file: answer 2 changed
    changed = judge_config(tmp_path, judge_server, {1: "A GOOD answer.", 2: "Now a GOOD one.", 3: "A BAD one."}, "x")
    changed.out_dir = config.out_dir
    with pytest.raises(EvaluationError, match=r"the model's answer changed for questions 2; pass --redo-stale"):
        run_judge(changed)
    changed.redo_stale = True
    calls = judge_server.chat_calls
    result = run_judge(changed)
    assert (result.redone, result.judged, result.skipped) == (1, 1, 2) and judge_server.chat_calls == calls + 2
    rows = {r["question_id"]: r for r in read_rows(config.out_dir / "judgments.jsonl")}
    assert len(rows) == 3 and rows[2]["answer"] == "Now a GOOD one."
    assert build_report([config.out_dir])["models"][0]["wins"] == 2


def test_judging_with_other_settings_is_refused_naming_them(tmp_path, judge_server):
    config = judge_config(tmp_path, judge_server, {1: "A GOOD answer."})
    run_judge(config)
    config.max_tokens, config.temperature = 512, 0.5
    with pytest.raises(EvaluationError, match=r"judge max_tokens: 1024 -> 512; judge temperature: 0.0 -> 0.5"):
        run_judge(config)


def test_grade_refuses_other_settings_and_keeps_meta_matching_its_grades(tmp_path, judge_server):
    answers = write_answers(tmp_path / "m.jsonl", "my-model", {81: ["A GOOD post.", "A BAD rewrite."]})
    config = GradeConfig(answers=[answers], endpoint=endpoint(judge_server), out_dir=tmp_path / "g", question_ids=[81])
    run_grade(config)
    meta = (tmp_path / "g" / "meta.json").read_text()
    config.max_tokens = 300
    with pytest.raises(EvaluationError, match="judge max_tokens: 1024 -> 300"):
        run_grade(config)
    assert (tmp_path / "g" / "meta.json").read_text() == meta  # not overwritten
    config.max_tokens = None
    write_answers(answers, "my-model", {81: ["A BAD post now.", "A BAD rewrite."]})
    with pytest.raises(EvaluationError, match="the model's answer changed for questions my-model/81"):
        run_grade(config)
    config.redo_stale = True
    assert run_grade(config).redone == 1
    (row,) = read_rows(tmp_path / "g" / "grades.jsonl")
    assert [t["rating"] for t in row["turns"]] == [4, 4]


def test_a_partial_folder_is_refused_unless_allowed_and_then_marked(tmp_path, judge_server, capsys):
    answers = {i: f"Answer {i}." for i in range(1, 6)}
    config = judge_config(tmp_path, judge_server, answers)
    config.question_ids = list(answers)
    judge_server.add_fault("Answer 4.", "empty_choices", times=None)
    judge_server.add_fault("Answer 5.", "empty_choices", times=None)
    run_judge(config)
    code = main(["eval", "report", str(config.out_dir), "--out", str(tmp_path / "r")])
    assert code == 2 and "my-model: 3 of 5 questions judged" in capsys.readouterr().err
    assert main(["eval", "report", str(config.out_dir), "--out", str(tmp_path / "r"), "--allow-partial"]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["models"][0]["coverage"] == {"judged": 3, "total": 5, "complete": False}
    md = (tmp_path / "r" / "report.md").read_text()
    assert "**Partial results:** my-model: 3 of 5 questions judged" in md and "3 of 5 (partial)" in md


def test_missing_answers_count_against_coverage(tmp_path, judge_server):
    config = judge_config(tmp_path, judge_server, {1: "A GOOD answer.", 2: "Plain."}, question_ids=[1, 2, 3])
    run_judge(config)  # question 3 has no answer from the model
    with pytest.raises(EvaluationError, match="2 of 3 questions judged"):
        build_report([config.out_dir])


def test_mt_bench_report_header_speaks_of_grading_not_baselines(tmp_path, judge_server):
    answers = write_answers(tmp_path / "m.jsonl", "my-model", {81: ["A GOOD post.", "A BAD rewrite."]})
    run_grade(
        GradeConfig(answers=[answers], endpoint=endpoint(judge_server), out_dir=tmp_path / "g", question_ids=[81])
    )
    md = render_markdown(build_report([tmp_path / "g"]))
    header = md.split("## MT-bench")[0]
    assert "single-answer grading" in header and "no baseline" in header
    assert "position calibration" not in md and "Baseline" not in md and "both orders" not in md


def test_no_log_line_per_http_request(tmp_path, judge_server, caplog):
    caplog.set_level(logging.INFO)
    run_judge(judge_config(tmp_path, judge_server, {1: "A GOOD answer.", 2: "Plain."}))
    assert not [r for r in caplog.records if "HTTP Request" in r.getMessage()]
    assert [r for r in caplog.records if r.name.startswith("openchat_hf")]  # our own INFO lines still show


def test_step_modules_and_the_cli_do_not_import_each_other():
    folder = Path(__file__).parents[2] / "openchat_hf" / "evaluation"

    def imported(path: Path) -> set[str]:
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
        return names

    steps = ["answers", "judge", "grade", "report", "alpaca", "agreement"]
    for step in steps:
        if (folder / f"{step}.py").is_file():
            assert "openchat_hf.evaluation.cli" not in imported(folder / f"{step}.py"), step
    cli_top = {
        n.module for n in ast.parse((folder / "cli.py").read_text()).body if isinstance(n, ast.ImportFrom) and n.module
    }
    assert not any(m.endswith(tuple(f".{s}" for s in steps)) for m in cli_top)
