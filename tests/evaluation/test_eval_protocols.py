"""The published judge protocols as presets, checked against their sources over real HTTP: FastChat's 2023 GPT-4
reviews replayed through ``vicuna-2023`` give each pair's totals; ``openchat-v1`` judges and scores as v1's
``openai_eval.py``; FastChat's own ``show_result.py`` reads our ``mt-bench`` grades as they are."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_answers
from eval_fakes import ReplayJudge, messages_key
from test_eval_parsing import REVIEWS_DIR, human_reading, recorded_reviews

from openchat_hf.cli import main
from openchat_hf.evaluation.agreement import compute_agreement
from openchat_hf.evaluation.protocols import PROMPTS_DIR, get_protocol, parse_openchat_v1
from openchat_hf.evaluation.questions import load_questions
from openchat_hf.evaluation.records import read_rows
from openchat_hf.evaluation.report import build_report
from openchat_hf.resources import VICUNA_ANSWERS_DIR

SOURCE_BLOBS = {  # git blob ids of the source files (imoneoi/openchat@OpenChat-v1, lm-sys/FastChat)
    "openchat_v1/prompt.jsonl": "650a8d1b71e3bb14fc95807fd9ebd9b0b28088a8",
    "openchat_v1/reviewer.jsonl": "471cdea3e4cb3032c9622e7bbcd74ff38ae94e50",
    "vicuna_2023/prompt.jsonl": "9ac5d91610dc90afb0c2947769ba641d2509711e",
    "vicuna_2023/reviewer.jsonl": "2f8941a641bcee0307fb2bb40c0365150f9d84fe",
    "mt_bench/judge_prompts.jsonl": "4ec7524cbcdf308766fddc52df31e203316ad75f",
}
SHOW_RESULT = Path(__file__).parent / "fastchat" / "show_result.py"


def git_blob_id(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_shipped_prompts_are_the_sources_byte_for_byte():
    for name, blob in SOURCE_BLOBS.items():
        assert git_blob_id((PROMPTS_DIR / name).read_bytes()) == blob, name
    vendored = SHOW_RESULT.read_bytes().split(b"\n", 5)[5]
    assert git_blob_id(vendored) == "f20801b11a2e71c196d0c574c3c10aa28968c1fd"


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def fastchat_2023_messages(question: str, category: str, answer_1: str, answer_2: str) -> list[dict]:
    """FastChat's 2023 ``eval_gpt_review.gen_prompt``, re-implemented on the recorded reviewer / prompt files."""
    reviewers = read_jsonl(REVIEWS_DIR / "reviewer.jsonl")
    prompts = read_jsonl(REVIEWS_DIR / "prompt.jsonl")
    reviewer_idx = next((i for i, r in enumerate(reviewers) if r["category"] == category), 0)
    prompt = prompts[reviewers[reviewer_idx]["prompt_id"] - 1]
    user = prompt["prompt_template"].format(
        question=question, answer_1=answer_1, answer_2=answer_2, **prompt["defaults"]
    )
    return [{"role": "system", "content": prompt["system_prompt"]}, {"role": "user", "content": user}]


def test_recorded_gpt4_reviews_replayed_through_vicuna_2023_reproduce_each_pairs_totals(tmp_path, capsys):
    questions = {q.question_id: q for q in load_questions("vicuna")}
    vicuna = {r["question_id"]: r for r in read_jsonl(VICUNA_ANSWERS_DIR / "answer_vicuna-13b.jsonl")}
    responses, expected = {}, {}
    for model, review in recorded_reviews():
        answer = {r["question_id"]: r for r in read_jsonl(VICUNA_ANSWERS_DIR / f"answer_{model}.jsonl")}[
            review["question_id"]
        ]
        baseline = vicuna[review["question_id"]]
        assert (answer["answer_id"], baseline["answer_id"]) == (review["answer1_id"], review["answer2_id"])
        q = questions[review["question_id"]]
        messages = fastchat_2023_messages(q.turns[0], q.category, answer["text"], baseline["text"])
        responses[messages_key(messages)] = review["text"]
        totals = expected.setdefault(model, [0.0, 0.0])
        scores = human_reading(model, review)
        totals[0], totals[1] = totals[0] + scores[0], totals[1] + scores[1]
    assert expected["alpaca-13b"] == [583, 704]  # the figure FastChat published with these reviews

    with ReplayJudge(responses) as judge:
        for model in expected:
            code = main(
                ["eval", "judge", "--protocol", "vicuna-2023", "--answers", model, "--baseline", "vicuna-13b"]
                + ["--judge-base-url", judge.base_url, "--judge-model", "gpt-4", "--out", str(tmp_path / model)]
            )
            assert code == 0, capsys.readouterr().err
        assert len(judge.requests) == 240  # one order, one sample, no parse retry
        assert {(r["temperature"], r["max_tokens"]) for r in judge.requests} == {(0.2, 1024)}
        assert judge.statuses == {200: 240}  # every prompt byte-exact (a differing one gets a 400)
    spec = get_protocol("vicuna-2023")
    for model, (model_total, baseline_total) in expected.items():
        report = build_report([tmp_path / model])
        (entry,) = report["models"]
        assert (entry["model_total"], entry["baseline_total"]) == (model_total, baseline_total), model
        assert entry["failures"] == 0 and entry["coverage"]["complete"]
        assert report["protocol"] == {"name": "vicuna-2023", "prompts_sha256": spec.prompts_sha256}
        rows = read_rows(tmp_path / model / "judgments.jsonl")
        assert {(r["protocol"], r["prompts_sha256"], r["verdict_source"]) for r in rows} == {
            ("vicuna-2023", spec.prompts_sha256, "text")
        }
        assert {rv["order"] for r in rows for rv in r["reviews"]} == {"model_first"}


def v1_messages(question, answer_1: str, answer_2: str) -> list[dict]:
    """OpenChat v1's ``openai_eval`` prompt for one direction (its reviewer by category, else general)."""
    reviewers = {r["category"]: r for r in read_jsonl(PROMPTS_DIR / "openchat_v1" / "reviewer.jsonl")}
    prompts = {p["prompt_id"]: p for p in read_jsonl(PROMPTS_DIR / "openchat_v1" / "prompt.jsonl")}
    prompt = prompts[reviewers.get(question.category, reviewers["general"])["prompt_id"]]
    user = prompt["prompt_template"].format(
        question=question.turns[0], answer_1=answer_1, answer_2=answer_2, **prompt["defaults"]
    )
    return [{"role": "system", "content": prompt["system_prompt"]}, {"role": "user", "content": user}]


def test_openchat_v1_judges_both_orders_with_its_prompts_and_scores_unreadable_reviews_zero(tmp_path):
    questions = {q.question_id: q for q in load_questions("vicuna")}
    model = {1: "Model answer one.", 61: "def model(): pass", 68: "x = 4"}
    base = {1: "Baseline answer one.", 61: "def base(): pass", 68: "x = 5"}
    replies = {  # (question, order) -> the judge's text, Assistant 1 first
        (1, "model_first"): "Assistant 1 is more detailed.\n[8, 6]",
        (1, "baseline_first"): "Assistant 2 is better.\n7 9",
        (61, "model_first"): "Both compile.\n8, 7",  # v1 reads neither "8  7" (3 fields) nor a JSON list: 0 0
        (61, "baseline_first"): "Equal.\n[5, 5]",
        (68, "model_first"): "I cannot decide.",
        (68, "baseline_first"): "Scores: 9 and 2",
    }
    responses = {}
    for (qid, order), text in replies.items():
        a, b = (model[qid], base[qid]) if order == "model_first" else (base[qid], model[qid])
        responses[messages_key(v1_messages(questions[qid], a, b))] = text
    answers = write_answers(tmp_path / "m.jsonl", "my-model", model)
    baseline = write_answers(tmp_path / "b.jsonl", "base", base)
    with ReplayJudge(responses) as judge:
        code = main(
            ["eval", "judge", "--protocol", "openchat-v1", "--answers", str(answers), "--baseline", str(baseline)]
            + ["--judge-base-url", judge.base_url, "--judge-model", "gpt-4", "--out", str(tmp_path / "j")]
            + ["--question-ids", "1", "61", "68"]
        )
        assert code == 0 and judge.statuses == {200: 6}
        assert {(r["temperature"], r["max_tokens"]) for r in judge.requests} == {(0.2, 1024)}
    entry = build_report([tmp_path / "j"])["models"][0]
    q = {x["question_id"]: x for x in entry["questions"]}
    assert (q[1]["model_score"], q[1]["baseline_score"]) == (8.5, 6.5)  # ((8 + 9) / 2, (6 + 7) / 2)
    assert (q[61]["model_score"], q[61]["baseline_score"]) == (2.5, 2.5)  # (0 + 5) / 2 each
    assert (q[68]["model_score"], q[68]["baseline_score"], q[68]["outcome"]) == (0, 0, "tie")
    assert (entry["model_total"], entry["baseline_total"], entry["failures"]) == (11, 9, 3)
    failed = [r for x in q.values() for r in x["reviews"] if r["error"]]
    assert all(r["scored_as_failure"] and r["scores"] == [0, 0] for r in failed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Good.\n[8, 6]", [8, 6]),
        ("7 9\nbecause", [7, 9]),
        ("x\n8.5 7\n[1, 2]", [8.5, 7]),
        ("a\n[3,4] and [5, 6]", [3, 4]),  # in a line, the first list
    ],
)
def test_openchat_v1_parser_rules(text, expected):
    assert parse_openchat_v1(text) == expected


class GradingJudge(ReplayJudge):
    """A grader that rates from markers in the last answer it is shown and writes two ratings for TWICE."""

    def __init__(self):
        super().__init__({})

    def reply(self, body):
        with self._lock:
            self.requests.append(body)
        prompt = body["messages"][-1]["content"]
        last = prompt.rsplit("### Assistant A:", 1)[-1] if "### Assistant A:" in prompt else prompt
        last = last.split("[The Start of Assistant's Answer]")[-1]
        if "BROKEN" in last:
            return 200, "I cannot rate this answer.", {}
        if "TWICE" in last:
            return 200, "First impression: Rating: [[3]]. After a second look I would say [[7]].", {}
        return 200, f"The answer is fine.\n\nRating: [[{8 if 'GOOD' in last else 5}]]", {}


def parse_show_result(out: str) -> dict:
    """{"1": {model: mean}, "2": {...}, "avg": {...}} from show_result.py's printed tables."""
    tables, current = {}, None
    for line in out.splitlines():
        if "First turn" in line:
            current = tables.setdefault("1", {})
        elif "Second turn" in line:
            current = tables.setdefault("2", {})
        elif "Average" in line:
            current = tables.setdefault("avg", {})
        elif current is not None:
            m = re.match(r"^(\S+)\s+(?:\d\s+)?(-?\d+\.\d+)$", line.strip())
            if m:
                current[m.group(1)] = float(m.group(2))
    return tables


def test_fastchat_show_result_reads_our_mt_bench_grades(tmp_path):
    a = write_answers(
        tmp_path / "a.jsonl",
        "model-a",
        {81: ["A GOOD post.", "A rewrite."], 111: ["Area 3 TWICE", "GOOD circle"], 121: ["code", "BROKEN"]},
    )
    b = write_answers(
        tmp_path / "b.jsonl", "model-b", {81: ["post", "GOOD rewrite"], 111: ["2", "3"], 121: ["c", "d"]}
    )
    out = tmp_path / "grade"
    with GradingJudge() as judge:
        code = main(
            ["eval", "grade", "--protocol", "mt-bench", "--answers", str(a), str(b), "--judge-base-url"]
            + [judge.base_url, "--judge-model", "gpt-4", "--out", str(out), "--question-ids", "81", "111", "121"]
        )
        assert code == 0
        assert {(r["temperature"], r["max_tokens"]) for r in judge.requests} == {(0.0, 2048)}
        math = [r["messages"] for r in judge.requests if "Area 3 TWICE" in r["messages"][-1]["content"]]
    prompts = {p["name"]: p for p in read_jsonl(PROMPTS_DIR / "mt_bench" / "judge_prompts.jsonl")}
    q111 = {q.question_id: q for q in load_questions("mt_bench")}[111]
    expected_turn1 = prompts["single-math-v1"]["prompt_template"].format(
        question=q111.turns[0], answer="Area 3 TWICE", ref_answer_1=q111.reference[0]
    )
    turn1 = [m for m in math if m[-1]["content"] == expected_turn1]  # requests run concurrently: find it by content
    assert turn1
    assert turn1[0][0] == {"role": "system", "content": prompts["single-math-v1"]["system_prompt"]}

    fastchat_file = out / "model_judgment" / "gpt-4_single.jsonl"
    rows = read_jsonl(fastchat_file)
    assert len(rows) == 12 and set(rows[0]) == {
        "question_id", "model", "judge", "user_prompt", "judgment", "score", "turn", "tstamp"
    }  # fmt: skip
    by = {(r["model"], r["question_id"], r["turn"]): r for r in rows}
    assert by[("model-a", 111, 1)]["score"] == 3  # FastChat reads the first [[x]]
    assert by[("model-a", 121, 2)]["score"] == -1  # and writes -1 for an unreadable judgment
    assert by[("model-a", 111, 2)]["judge"] == ["gpt-4", "single-math-v1-multi-turn"]

    shown = subprocess.run(
        [sys.executable, str(SHOW_RESULT), "--input-file", str(fastchat_file), "--mode", "single"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    tables = parse_show_result(shown)
    report = build_report([out])
    ours = {m["model"]: m for m in report["mt_bench"]["models"]}
    assert set(tables["avg"]) == {"model-a", "model-b"}
    for model, entry in ours.items():
        assert tables["1"][model] == pytest.approx(entry["turns"]["1"], abs=1e-4)
        assert tables["2"][model] == pytest.approx(entry["turns"]["2"], abs=1e-4)
        assert tables["avg"][model] == pytest.approx(entry["average"], abs=1e-4)
    assert ours["model-a"]["failures"] == 1 and report["mt_bench"]["protocol"]["name"] == "mt-bench"


def test_presets_refuse_what_their_source_cannot_do(tmp_path, capsys):
    answers = write_answers(tmp_path / "m.jsonl", "m", {81: ["a", "b"]})
    judge = ["--judge-base-url", "http://127.0.0.1:9/v1", "--judge-model", "j", "--out", str(tmp_path / "o")]
    code = main(["eval", "grade", "--protocol", "vicuna-2023", "--answers", str(answers), *judge])
    assert code == 2 and "is pairwise: run `eval judge --protocol vicuna-2023`" in capsys.readouterr().err
    code = main(
        ["eval", "judge", "--protocol", "openchat-v1", "--bench", "mt_bench", "--answers", str(answers)]
        + ["--baseline", str(answers), "--question-ids", "81", *judge]
    )
    assert code == 2 and "judges single-turn questions (Vicuna-bench)" in capsys.readouterr().err
    code = main(["eval", "judge", "--protocol", "nope", "--answers", str(answers), "--baseline", str(answers), *judge])
    assert code == 2 and "unknown protocol 'nope': choose one of openchat-hf" in capsys.readouterr().err


class VerdictJudge(ReplayJudge):
    """An MT-bench pairwise judge: [[A]] or [[B]] for the answer of the judged turn marked GOOD, else [[A]] (a
    position bias), and no verdict when the first answer says UNSURE."""

    def __init__(self):
        super().__init__({})

    def reply(self, body):
        with self._lock:
            self.requests.append(body)
        prompt = body["messages"][-1]["content"]

        def answer(label):
            if "multi-turn" in body["messages"][0]["content"] or f"### Assistant {label}:" in prompt:
                return prompt.rsplit(f"### Assistant {label}:\n", 1)[1].split("\n\n", 1)[0]
            return prompt.split(f"[The Start of Assistant {label}'s Answer]\n", 1)[1].split("\n[The End", 1)[0]

        a, b = answer("A"), answer("B")
        if "UNSURE" in a:
            return 200, "Both have merits; I cannot tell.", {}
        verdict = "[[B]]" if "GOOD" in b and "GOOD" not in a else "[[A]]"
        return 200, f"Assistant A and B compared carefully. Final verdict: {verdict}", {}


def test_fastchat_show_result_reads_our_mt_bench_pairwise_judgments(tmp_path):
    model = {81: ["A GOOD post.", "A plain rewrite."], 111: ["Area 2.", "A GOOD circle."], 121: ["UNSURE", "c"]}
    base = {81: ["A post.", "A rewrite."], 111: ["The area is 3, GOOD.", "A circle."], 121: ["code", "more code"]}
    answers = write_answers(tmp_path / "m.jsonl", "my-model", model)
    baseline = write_answers(tmp_path / "b.jsonl", "base", base)
    out = tmp_path / "pair"
    with VerdictJudge() as judge:
        code = main(
            ["eval", "judge", "--protocol", "mt-bench", "--answers", str(answers), "--baseline", str(baseline)]
            + ["--bench", "mt_bench", "--judge-base-url", judge.base_url, "--judge-model", "gpt-4"]
            + ["--out", str(out), "--question-ids", "81", "111", "121"]
        )
        assert code == 0 and len(judge.requests) == 12  # 3 questions x 2 turns x 2 orders
        assert {(r["temperature"], r["max_tokens"]) for r in judge.requests} == {(0.0, 2048)}
        prompts = [r["messages"][-1]["content"] for r in judge.requests]
    templates = {p["name"]: p for p in read_jsonl(PROMPTS_DIR / "mt_bench" / "judge_prompts.jsonl")}
    q111 = {q.question_id: q for q in load_questions("mt_bench")}[111]
    expected = templates["pair-math-v1"]["prompt_template"].format(
        question=q111.turns[0], answer_a="Area 2.", answer_b="The area is 3, GOOD.", ref_answer_1=q111.reference[0]
    )
    assert expected in prompts

    report = build_report([out], allow_partial=False)
    (entry,) = report["models"]
    games = {(q["question_id"], q["turn"]): q["outcome"] for q in entry["questions"]}
    assert games == {
        (81, 1): "win",
        (81, 2): "tie",  # both plain: the judge prefers A in both orders, so the orders disagree
        (111, 1): "loss",
        (111, 2): "win",
        (121, 1): "failed",
        (121, 2): "tie",
    }
    fastchat_file = out / "model_judgment" / "gpt-4_pair.jsonl"
    rows = read_jsonl(fastchat_file)
    assert {(r["question_id"], r["turn"], r["g1_winner"], r["g2_winner"]) for r in rows} >= {
        (81, 1, "model_1", "model_1"),
        (121, 1, "error", "model_2"),
    }
    shown = subprocess.run(
        [sys.executable, str(SHOW_RESULT), "--input-file", str(fastchat_file), "--mode", "pairwise-baseline"]
        + ["--baseline-model", "base"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    line = next(x for x in shown.splitlines() if x.startswith("my-model"))
    win, loss, tie, win_rate, loss_rate, adjusted = line.split()[1:]
    assert (int(win), int(loss), int(tie)) == (entry["wins"], entry["losses"], entry["ties"]) == (2, 1, 2)
    assert float(adjusted) == pytest.approx(entry["win_rate"])

    # FastChat's human labels are per turn: each one meets the game of its turn
    labels = tmp_path / "human.json"
    human = [(81, 1, "model_a"), (81, 2, "model_b"), (111, 1, "model_b"), (111, 2, "tie"), (121, 1, "model_a")]
    labels.write_text(
        json.dumps(
            [
                {
                    "question_id": q,
                    "model_a": "my-model",
                    "model_b": "base",
                    "winner": w,
                    "judge": "expert_0",
                    "turn": t,
                }
                for q, t, w in human
            ]
        )
    )
    (run,) = compute_agreement([out], labels, "fastchat", n_resamples=10)["runs"]
    # games: 81/1 win = model_a (agree), 81/2 tie vs model_b, 111/1 loss = model_b (agree), 111/2 win vs tie;
    # 121/1 failed: no vote
    assert (run["n"], run["accuracy"], run["n_no_ties"], run["accuracy_no_ties"]) == (4, 0.5, 2, 1.0)
