"""The `openchat-hf eval` commands end to end (answers -> judge -> report, export-alpaca) over real HTTP."""

import json
import subprocess
import sys

import pytest
from conftest import write_answers

from openchat_hf.cli import main
from openchat_hf.evaluation.protocols import get_protocol
from openchat_hf.evaluation.questions import load_questions

MODEL_KEYS = {
    "model",
    "relative_score",
    "relative_score_ci",
    "model_total",
    "baseline_total",
    "wins",
    "ties",
    "losses",
    "win_rate",
    "win_rate_ci",
    "win_rate_no_ties",
    "failures",
    "n_questions",
    "categories",
    "questions",
    "length_controlled",
    "coverage",
    "protocol",
}
QUESTION_KEYS = {
    "question_id",
    "category",
    "question",
    "answer",
    "baseline_answer",
    "model_score",
    "baseline_score",
    "outcome",
    "reviews",
    "protocol",
    "prompts_sha256",
    "verdict_source",
}


def test_answers_judge_report_end_to_end(tmp_path, model_server, judge_server, capsys):
    ids = ["1", "2", "3", "4", "61", "62"]
    assert (
        main(
            [
                "eval",
                "answers",
                "--base-url",
                model_server.base_url,
                "--model",
                "tiny-chat",
                "--out",
                str(tmp_path / "answers"),
                "--question-ids",
                *ids,
                "--max-tokens",
                "32",
            ]
        )
        == 0
    )
    answers = tmp_path / "answers" / "tiny-chat.jsonl"
    assert (
        main(
            [
                "eval",
                "judge",
                "--answers",
                str(answers),
                "--baseline",
                "gpt35",
                "--judge-base-url",
                judge_server.base_url,
                "--judge-model",
                "fake-judge",
                "--out",
                str(tmp_path / "judge"),
                "--question-ids",
                *ids,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "estimate: judge fake-judge: 6 questions to judge, 12 calls to make (0 cached)" in out
    assert (
        main(["eval", "report", str(tmp_path / "judge"), "--out", str(tmp_path / "report"), "--note", "fake judge"])
        == 0
    )

    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["version"] == 1 and report["bench"] == "vicuna" and report["note"] == "fake judge"
    assert report["baseline"] == "gpt-3.5-turbo:20230327"
    assert report["judge"] == {
        "model": "fake-judge",
        "base_url": judge_server.base_url,
        "prompts_version": "openchat-hf-v1",
        "samples": 1,
        "protocol": "openchat-hf",
        "prompts_sha256": get_protocol("openchat-hf").prompts_sha256,
    }
    assert report["protocol"] == {"name": "openchat-hf", "prompts_sha256": get_protocol(None).prompts_sha256}
    assert report["mt_bench"] is None
    (model,) = report["models"]
    assert set(model) >= MODEL_KEYS and model["model"] == "tiny-chat"
    assert model["coverage"] == {"judged": 6, "total": 6, "complete": True}
    assert set(model["length_controlled"]) == {"win_rate", "ci_low", "ci_high", "n"}
    assert model["length_controlled"]["n"] == 6
    assert all(set(q) >= QUESTION_KEYS for q in model["questions"])
    # the fake model answers GOOD (judge: 8) to questions of even length, BAD (4) to odd; the baseline gets 6
    questions = {str(q.question_id): q for q in load_questions("vicuna")}
    expected = {i: "win" if len(questions[i].turns[0]) % 2 == 0 else "loss" for i in ids}
    assert {str(q["question_id"]): q["outcome"] for q in model["questions"]} == expected
    wins = list(expected.values()).count("win")
    assert (model["wins"], model["ties"], model["losses"]) == (wins, 0, 6 - wins)
    assert model["model_total"] == wins * 8.5 + (6 - wins) * 4.5 and model["baseline_total"] == 6 * 6.5
    assert set(model["categories"]) == {"generic", "coding"} and model["categories"]["coding"]["n"] == 2
    md = (tmp_path / "report" / "report.md").read_text()
    assert "fake judge" in md and "| tiny-chat |" in md and "openchat-hf-v1" in md


def test_errors_exit_2_with_one_line(tmp_path, capsys):
    code = main(
        [
            "eval",
            "judge",
            "--answers",
            str(tmp_path / "missing.jsonl"),
            "--baseline",
            "gpt35",
            "--judge-base-url",
            "http://127.0.0.1:9/v1",
            "--judge-model",
            "j",
            "--out",
            str(tmp_path / "j"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "missing.jsonl is not a file nor a shipped answer set" in err
    assert main(["eval", "report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "run `eval judge`" in capsys.readouterr().err


def test_export_alpaca_from_a_local_prompt_file(tmp_path, model_server):
    prompts = [
        {"instruction": "Name a color.", "dataset": "helpful_base", "output": "x", "generator": "ref"},
        {"instruction": "Add 2 and 3.", "dataset": "vicuna", "output": "y", "generator": "ref"},
    ]
    (tmp_path / "alpaca_eval.json").write_text(json.dumps(prompts))
    questions = tmp_path / "alpaca_questions.jsonl"
    assert (
        main(
            [
                "eval",
                "export-alpaca",
                "--alpaca-file",
                str(tmp_path / "alpaca_eval.json"),
                "--questions-out",
                str(questions),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "eval",
                "answers",
                "--questions",
                str(questions),
                "--base-url",
                model_server.base_url,
                "--model",
                "tiny",
                "--out",
                str(tmp_path / "answers"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "eval",
                "export-alpaca",
                "--answers",
                str(tmp_path / "answers" / "tiny.jsonl"),
                "--questions",
                str(questions),
                "--out",
                str(tmp_path / "outputs.json"),
                "--generator",
                "tiny-v1",
            ]
        )
        == 0
    )
    outputs = json.loads((tmp_path / "outputs.json").read_text())
    assert [o["instruction"] for o in outputs] == ["Name a color.", "Add 2 and 3."]
    assert [o["dataset"] for o in outputs] == ["helpful_base", "vicuna"]
    assert {o["generator"] for o in outputs} == {"tiny-v1"}
    assert outputs[0]["output"].startswith("A BAD answer to 'Name a color.'")


def test_export_alpaca_refuses_incomplete_answers(tmp_path, capsys):
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"question_id": 0, "category": "x", "turns": ["a"]}\n{"question_id": 1, "category": "x", "turns": ["b"]}\n'
    )
    answers = write_answers(tmp_path / "a.jsonl", "m", {0: "only one"})
    assert (
        main(
            [
                "eval",
                "export-alpaca",
                "--answers",
                str(answers),
                "--questions",
                str(questions),
                "--out",
                str(tmp_path / "o.json"),
            ]
        )
        == 2
    )
    assert "no answer for 1 of 2 questions" in capsys.readouterr().err


@pytest.mark.parametrize("step", ["answers", "judge", "grade", "report", "alpaca"])
def test_python_m_entry_points(step):
    result = subprocess.run(
        [sys.executable, "-m", f"openchat_hf.evaluation.{step}", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "usage: openchat-hf eval" in result.stdout
