"""`eval agreement`: a judge run over real HTTP against human labels we build, in our format and FastChat's MT-bench
human-judgment layout; accuracy with / without ties, Cohen's kappa and per-category figures computed by hand."""

import json

import pytest
from conftest import endpoint, write_answers

from openchat_hf.cli import main
from openchat_hf.evaluation.agreement import compute_agreement
from openchat_hf.evaluation.judge import JudgeConfig, run_judge

# the fake judge: GOOD beats the plain baseline, BAD loses to it, plain vs plain ties
ANSWERS = {1: "A GOOD one.", 2: "A GOOD two.", 3: "A BAD three.", 11: "A BAD four.", 12: "Plain.", 13: "Plain."}
JUDGE = {1: "model", 2: "model", 3: "baseline", 11: "baseline", 12: "tie", 13: "tie"}
HUMAN = {1: "model", 2: "baseline", 3: "baseline", 11: "tie", 12: "tie", 13: "model"}


@pytest.fixture
def judged(tmp_path, judge_server):
    config = JudgeConfig(
        answers=write_answers(tmp_path / "m.jsonl", "my-model", ANSWERS),
        baseline=write_answers(tmp_path / "b.jsonl", "base", {q: "Plain." for q in ANSWERS}),
        endpoint=endpoint(judge_server),
        out_dir=tmp_path / "judge",
        question_ids=list(ANSWERS),
    )
    run_judge(config)
    return config.out_dir


def check(run):
    # with ties: questions 1, 3, 12 agree -> 3 / 6; without ties (neither said tie): 1, 2, 3 -> 2 / 3
    assert (run["n"], run["accuracy"]) == (6, 0.5)
    assert (run["n_no_ties"], run["accuracy_no_ties"]) == (3, pytest.approx(2 / 3))
    # kappa: both label 1/3 of the pairs each class, so p_e = 1/3 and kappa = (1/2 - 1/3) / (2/3) = 1/4
    assert run["kappa"] == pytest.approx(0.25)
    lo, hi = run["accuracy_ci"]
    assert 0 <= lo <= 0.5 <= hi <= 1
    generic, knowledge = run["categories"]["generic"], run["categories"]["knowledge"]
    assert (generic["n"], generic["accuracy"]) == (3, pytest.approx(2 / 3))
    assert (knowledge["n"], knowledge["accuracy"], knowledge["accuracy_no_ties"]) == (3, pytest.approx(1 / 3), None)
    assert run["protocol"]["name"] == "openchat-hf"


def test_agreement_with_our_label_format(tmp_path, judged, capsys):
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            json.dumps({"question_id": q, "model": "my-model", "baseline": "base", "winner": w}) + "\n"
            for q, w in HUMAN.items()
        )
    )
    assert main(["eval", "agreement", str(judged), "--labels", str(labels), "--out", str(tmp_path / "a")]) == 0
    (run,) = json.loads((tmp_path / "a" / "agreement.json").read_text())["runs"]
    check(run)
    assert "| my-model vs base | judge-model | openchat-hf | 6 | 50.0 %" in capsys.readouterr().out


def test_agreement_with_fastchat_human_judgments(tmp_path, judged):
    rows = []
    for i, (q, w) in enumerate(HUMAN.items()):
        swap = i % 2 == 1  # FastChat's pairs come in either order
        a, b = ("base", "my-model") if swap else ("my-model", "base")
        winner = {"model": "model_b" if swap else "model_a", "baseline": "model_a" if swap else "model_b"}.get(
            w, "tie (bothbad)" if i % 3 else "tie"
        )
        rows.append(
            {"question_id": q, "model_a": a, "model_b": b, "winner": winner, "judge": f"expert_{i}", "turn": 1}
        )
    rows.append(
        {"question_id": 1, "model_a": "my-model", "model_b": "base", "winner": "model_b", "judge": "x", "turn": 2}
    )
    rows.append(
        {"question_id": 1, "model_a": "gpt-4", "model_b": "base", "winner": "model_a", "judge": "y", "turn": 1}
    )
    labels = tmp_path / "human.json"
    labels.write_text(json.dumps(rows))
    check(compute_agreement([judged], labels, "fastchat", turn=1, n_resamples=200)["runs"][0])
    both_turns = compute_agreement([judged], labels, "fastchat", n_resamples=10)["runs"][0]
    assert both_turns["n"] == 7  # the turn-2 label counts too; the gpt-4 pair matches no run


def test_bad_labels_give_one_line_errors(tmp_path, judged, capsys):
    labels = tmp_path / "bad.jsonl"
    labels.write_text(json.dumps({"question_id": 1, "model": "my-model", "baseline": "base", "winner": "A"}) + "\n")
    assert main(["eval", "agreement", str(judged), "--labels", str(labels), "--out", str(tmp_path / "a")]) == 2
    assert "label 0 is not a openchat-hf label" in capsys.readouterr().err
    labels.write_text(json.dumps({"question_id": 1, "model": "x", "baseline": "y", "winner": "tie"}) + "\n")
    assert main(["eval", "agreement", str(judged), "--labels", str(labels), "--out", str(tmp_path / "a")]) == 2
    assert "no label matches a judged pair" in capsys.readouterr().err
