"""Hand-made inputs for the visualization tests (an evaluation report following the contract, conversations)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from openchat_hf.visualization.conversations import renderer

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("OPENCHAT_HF_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "visualization"

# Hostile strings that must show up as text and run nothing.
HOSTILE_USER = (
    "Hi <script>window.__pwned = 'script'</script> and <img src=x onerror=\"window.__pwned = 'img'\"> "
    "and [click me](javascript:window.__pwned='link') and <a href=\"javascript:alert(1)\">a</a>"
)
HOSTILE_ASSISTANT = (
    "Here is code:\n\n```html\n</script><script>window.__pwned = 'fence'</script>\n"
    "<img src=x onerror=alert(1)>\n```\n\n"
    "- item with <b onmouseover=\"window.__pwned='b'\">bold?</b>\n"
    "- [safe link](https://example.com/docs) and ![img](https://example.com/x.png)\n"
    "\u2028line separator </script><!-- {{DATA}} {{SCRIPTS}}"
)


def save_artifact(page, name: str) -> Path:
    """Screenshot of ``page`` as a test artefact (docs images come from a demo run: see ``screenshots.py``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=False)
    return path


def _review(order: str, scores, text: str = "Both answers are relevant.", error=None, sample: int = 0) -> dict:
    return {"order": order, "sample": sample, "text": text, "scores": scores, "error": error}


PROTOCOL = {"name": "openchat-v1-pairwise", "prompts_sha256": "3f2a9c0d1e4b5a6978877665544332211aabbccddeeff0011"}


def make_report(hostile_answer: str = "A **good** answer.\n\n- one\n- two", new_keys: bool = True) -> dict:
    """A two-model Vicuna-bench report in the contract's format (ratios as the evaluation code writes them).

    ``new_keys`` adds the contract's ``length_controlled``, ``coverage`` and ``protocol`` (``False``: an older
    report without them) and MT-bench per-question grades.
    """
    alpha_questions = [
        {
            "question_id": 1,
            "category": "writing",
            "question": "Write a haiku about the sea.",
            "answer": hostile_answer,
            "baseline_answer": "Waves fold into foam\n\n```python\nprint('sea')\n```",
            "model_score": 9.0,
            "baseline_score": 7.0,
            "outcome": "win",
            "reviews": [
                _review("model_first", [9, 7], "Assistant 1 is **vivid**."),
                _review("baseline_first", [7, 9], "Assistant 2 wins <script>window.__pwned='judge'</script>"),
            ],
        },
        {
            "question_id": 2,
            "category": "math",
            "question": "What is 2 + 2?",
            "answer": "4",
            "baseline_answer": "4",
            "model_score": 8.0,
            "baseline_score": 8.0,
            "outcome": "tie",
            # Position bias: each order prefers the answer it read first (a flip that averages to a tie).
            "reviews": [_review("model_first", [9, 7]), _review("baseline_first", [9, 7])],
        },
        {
            "question_id": 3,
            "category": "math",
            "question": "Integrate x^2.",
            "answer": "x^3",
            "baseline_answer": "x^3/3 + C",
            "model_score": None,
            "baseline_score": None,
            "outcome": "failed",
            "reviews": [
                _review("model_first", None, "I cannot decide.", error="no scores found in the judge's answer"),
                _review("baseline_first", None, "", error="HTTP 500 from the judge"),
            ],
        },
        {
            "question_id": 4,
            "category": "writing",
            "question": "Describe a sunset.",
            "answer": "Orange.",
            "baseline_answer": "The sky glows with orange and pink hues.",
            "model_score": 4.0,
            "baseline_score": 8.0,
            "outcome": "loss",
            "reviews": [_review("model_first", [4, 8]), _review("baseline_first", [8, 4])],
        },
    ]
    alpha = {
        "model": "alpha-13b",
        "relative_score": 21 / 23,
        "relative_score_ci": [0.80, 1.02],
        "model_total": 21.0,
        "baseline_total": 23.0,
        "wins": 1,
        "ties": 1,
        "losses": 1,
        "win_rate": 0.5,
        "win_rate_ci": [0.1, 0.9],
        "win_rate_no_ties": 0.5,
        "failures": 1,
        "n_questions": 4,
        "categories": {
            "writing": {"relative_score": 13 / 15, "wins": 1, "ties": 0, "losses": 1, "n": 2},
            "math": {"relative_score": 1.0, "wins": 0, "ties": 1, "losses": 0, "n": 2},
        },
        "questions": alpha_questions,
    }
    beta_questions = copy.deepcopy(alpha_questions)
    for q in beta_questions:
        q["answer"] = f"beta says: {q['answer']}"
    beta = {
        **copy.deepcopy(alpha),
        "model": "beta-7b",
        "relative_score": 1.2,
        "relative_score_ci": [1.1, 1.3],
        "model_total": 27.6,
        "wins": 3,
        "ties": 0,
        "losses": 0,
        "win_rate": 1.0,
        "win_rate_ci": [0.7, 1.0],
        "win_rate_no_ties": 1.0,
        "categories": {"writing": {"relative_score": 1.25, "wins": 2, "ties": 0, "losses": 0, "n": 2}},
        "questions": beta_questions,
    }
    report = {
        "version": 1,
        "bench": "vicuna",
        "baseline": "gpt-3.5-turbo",
        "judge": {"model": "gpt-4", "base_url": "http://127.0.0.1:9/v1", "prompts_version": "v1", "samples": 1},
        "note": "Hand-made report for tests.",
        "models": [alpha, beta],
        "mt_bench": {
            "models": [
                {"model": "alpha-13b", "average": 6.25, "turns": {"1": 7.0, "2": 5.5}, "categories": {"math": 3.0}}
            ]
        },
    }
    if new_keys:
        alpha["length_controlled"] = {"win_rate": 0.42, "ci_low": 0.2, "ci_high": 0.65, "n": 3}
        alpha["coverage"] = {"judged": 4, "total": 4, "complete": True}
        beta["length_controlled"] = {"win_rate": 0.8, "ci_low": 0.61, "ci_high": 0.95, "n": 3}
        beta["coverage"] = {"judged": 4, "total": 5, "complete": False}
        report["protocol"] = dict(PROTOCOL)
        report["mt_bench"]["models"][0]["questions"] = [
            {"question_id": 82, "category": "math", "model": "alpha-13b", "turns": [
                {"turn": 1, "rating": 3, "text": "Wrong sum. Rating: [[3]]", "error": None},
                {"turn": 2, "rating": 2, "text": "Still wrong <script>window.__pwned='mt'</script> [[2]]",
                 "error": None}]},
            {"question_id": 81, "category": "writing", "model": "alpha-13b", "turns": [
                {"turn": 1, "rating": 9, "text": "Vivid. [[9]]", "error": None},
                {"turn": 2, "rating": None, "text": "", "error": "no [[rating]] in the judge's answer"}]},
        ]  # fmt: skip
    return report


def write_report(folder: Path, report: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return folder


def sample_messages() -> list[list[dict[str, str]]]:
    """Conversations with distinct topics, for pages and search."""
    return [
        [
            {"role": "user", "content": "How do I sort a list in Python?"},
            {"role": "assistant", "content": "Use `sorted()`:\n\n```python\nsorted([3, 1, 2])\n```"},
        ],
        [
            {"role": "system", "content": "You are a poet."},
            {"role": "user", "content": "Write about the aardvark."},
            {"role": "assistant", "content": "1. The aardvark digs\n2. It eats ants"},
        ],
        [
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Italy?"},
            {"role": "assistant", "content": "Rome."},
        ],
    ]


def rendered(messages_list, model_type: str = "openchat") -> list[str]:
    template = renderer(model_type)
    return [template.render(m).text for m in messages_list]
