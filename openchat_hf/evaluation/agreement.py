"""Step 6: judge-human agreement. Human labels for the same pairs the judge compared -> accuracy with and without
ties, Cohen's kappa, per category, with percentile bootstrap CIs, for each judge run (and its protocol).

Label formats (``--labels-format``):

- ``openchat-hf`` (JSON Lines, one label per line): ``{"question_id", "model", "baseline", "winner":
  "model"|"baseline"|"tie", "annotator": optional, "turn": optional}``;
- ``fastchat`` (FastChat's MT-bench human judgments, ``lmsys/mt_bench_human_judgments``, a JSON list or JSON Lines):
  ``{"question_id", "model_a", "model_b", "winner": "model_a"|"model_b"|"tie"|"tie (bothbad)", "judge", "turn"}``;
  a label counts for a judge run whose model and baseline are ``model_a`` and ``model_b`` in either order.

Each human label of a pair is one comparison (several annotators of one pair count several times, as in FastChat's
``compute_agreement.py``). "Without ties" leaves out the comparisons where the judge or the human said tie.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.metrics import question_scores
from openchat_hf.evaluation.records import read_rows
from openchat_hf.evaluation.report import find_result_dirs

logger = logging.getLogger(__name__)

CLASSES = ("model", "baseline", "tie")
OUTCOME_VOTE = {"win": "model", "loss": "baseline", "tie": "tie"}
LABEL_FORMATS = ("openchat-hf", "fastchat")


@dataclass(frozen=True)
class Label:
    question_id: str
    model: str
    baseline: str
    winner: str  # model | baseline | tie
    annotator: str | None = None
    turn: int | None = None


def _read_rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise EvaluationError(f"{path}:{lineno} is not valid JSON ({err})") from err
    return rows


def load_labels(path: str | Path, fmt: str = "openchat-hf") -> list[Label]:
    """Human labels from ``path`` in ``fmt`` (see the module docstring); a clear error for a bad row."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path} does not exist (expected human labels)")
    if fmt not in LABEL_FORMATS:
        raise EvaluationError(f"unknown labels format {fmt!r}: choose one of {', '.join(LABEL_FORMATS)}")
    try:
        rows = _read_rows(path)
    except json.JSONDecodeError as err:
        raise EvaluationError(f"{path} is neither a JSON list nor JSON Lines ({err})") from err
    labels = []
    for i, row in enumerate(rows):
        try:
            if fmt == "fastchat":
                winner = str(row["winner"])
                winner = "tie" if "tie" in winner else {"model_a": "model", "model_b": "baseline"}[winner]
                judge = row.get("judge")
                labels.append(
                    Label(
                        str(row["question_id"]),
                        str(row["model_a"]),
                        str(row["model_b"]),
                        winner,
                        annotator=str(judge) if judge is not None else None,
                        turn=int(row["turn"]) if row.get("turn") is not None else None,
                    )
                )
            else:
                if row["winner"] not in CLASSES:
                    raise KeyError("winner")
                labels.append(
                    Label(
                        str(row["question_id"]),
                        str(row["model"]),
                        str(row["baseline"]),
                        row["winner"],
                        annotator=row.get("annotator"),
                        turn=row.get("turn"),
                    )
                )
        except (KeyError, TypeError, ValueError) as err:
            raise EvaluationError(
                f"{path}: label {i} is not a {fmt} label (bad or missing {err}): {json.dumps(row)[:200]}"
            ) from err
    return labels


def judge_votes(directory: Path) -> tuple[dict, dict[tuple[str, int | None], tuple[str, str]]]:
    """A judge folder's meta and ``{(question_id, turn): (vote, category)}`` (vote: model | baseline | tie; turn:
    ``None`` for a judgment of the whole conversation, the game's turn for MT-bench pairwise)."""
    meta = json.loads((directory / "meta.json").read_text())
    if meta.get("kind") == "single":
        raise EvaluationError(f"{directory} holds single-answer grades; agreement needs a pairwise judge folder")
    aggregation = meta.get("judge", {}).get("aggregation", "balanced")
    votes = {}
    for row in read_rows(directory / "judgments.jsonl"):
        _, _, outcome = question_scores(row["reviews"], aggregation)
        if outcome != "failed":
            votes[(str(row["question_id"]), row.get("turn"))] = (OUTCOME_VOTE[outcome], row["category"])
    return meta, votes


def _figures(pairs: np.ndarray) -> dict:
    """``pairs``: (n, 2) class indices (judge, human) -> accuracy with / without ties and Cohen's kappa."""
    n = len(pairs)
    if n == 0:
        return {"n": 0, "accuracy": None, "n_no_ties": 0, "accuracy_no_ties": None, "kappa": None}
    agree = pairs[:, 0] == pairs[:, 1]
    tie = CLASSES.index("tie")
    no_ties = (pairs[:, 0] != tie) & (pairs[:, 1] != tie)
    po = float(agree.mean())
    pe = float(sum(np.mean(pairs[:, 0] == k) * np.mean(pairs[:, 1] == k) for k in range(len(CLASSES))))
    return {
        "n": n,
        "accuracy": po,
        "n_no_ties": int(no_ties.sum()),
        "accuracy_no_ties": float(agree[no_ties].mean()) if no_ties.any() else None,
        "kappa": (po - pe) / (1 - pe) if pe < 1 else None,
    }


def figures_with_cis(pairs: np.ndarray, n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """:func:`_figures` plus percentile bootstrap CIs (comparisons resampled with replacement)."""
    figures = _figures(pairs)
    keys = ("accuracy", "accuracy_no_ties", "kappa")
    samples = {k: [] for k in keys}
    rng = np.random.default_rng(seed)
    if len(pairs):
        for _ in range(n_resamples):
            f = _figures(pairs[rng.integers(0, len(pairs), size=len(pairs))])
            for k in keys:
                if f[k] is not None:
                    samples[k].append(f[k])
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    for k in keys:
        values = samples[k]
        figures[f"{k}_ci"] = [float(np.percentile(values, lo)), float(np.percentile(values, hi))] if values else None
    return figures


def agreement_of_run(directory: Path, labels: list[Label], n_resamples: int = 1000, seed: int = 0) -> dict:
    """Agreement of one judge folder with the labels of its (model, baseline) pair."""
    meta, votes = judge_votes(directory)
    pairs, categories = [], []
    for label in labels:
        if (label.model, label.baseline) == (meta["model"], meta["baseline"]):
            human = label.winner
        elif (label.model, label.baseline) == (meta["baseline"], meta["model"]):
            human = {"model": "baseline", "baseline": "model"}.get(label.winner, "tie")
        else:
            continue
        if label.turn is not None and (label.question_id, label.turn) in votes:
            key = (label.question_id, label.turn)  # a per-turn game (MT-bench pairwise)
        elif (label.question_id, None) in votes:
            key = (label.question_id, None)  # a judgment of the whole conversation
        else:
            continue
        vote, category = votes[key]
        pairs.append((CLASSES.index(vote), CLASSES.index(human)))
        categories.append(category)
    array = np.asarray(pairs, dtype=int).reshape(-1, 2)
    by_category = defaultdict(list)
    for pair, category in zip(pairs, categories):
        by_category[category].append(pair)
    return {
        "dir": str(directory),
        "model": meta["model"],
        "baseline": meta["baseline"],
        "judge": meta.get("judge", {}).get("model"),
        "protocol": meta.get("protocol") or {"name": "openchat-hf", "prompts_sha256": None},
        "judged_questions": len({qid for qid, _ in votes}),
        **figures_with_cis(array, n_resamples, seed),
        "categories": {
            c: figures_with_cis(np.asarray(p, dtype=int).reshape(-1, 2), n_resamples, seed)
            for c, p in sorted(by_category.items())
        },
    }


def compute_agreement(
    dirs: list[str | Path],
    labels_path: str | Path,
    labels_format: str = "openchat-hf",
    turn: int | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Agreement of every judge folder under ``dirs`` with the human labels (``turn``: only labels of that turn)."""
    labels = load_labels(labels_path, labels_format)
    if turn is not None:
        labels = [label for label in labels if label.turn == turn]
    if not labels:
        raise EvaluationError(f"{labels_path} holds no labels{f' for turn {turn}' if turn else ''}")
    runs = [agreement_of_run(d, labels, n_resamples, seed) for d in find_result_dirs(dirs)]
    if not any(run["n"] for run in runs):
        names = sorted({(label.model, label.baseline) for label in labels})[:5]
        raise EvaluationError(
            f"no label matches a judged pair (labels are for {names}; judged: "
            f"{[(r['model'], r['baseline']) for r in runs]}): check the model names and question ids"
        )
    return {
        "labels": str(labels_path),
        "labels_format": labels_format,
        "turn": turn,
        "bootstrap": {"resamples": n_resamples, "seed": seed, "level": 0.95},
        "runs": runs,
    }


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _ci(values) -> str:
    return "n/a" if not values else f"[{_pct(values[0])}, {_pct(values[1])}]"


def render_agreement(result: dict) -> str:
    lines = [f"# Judge-human agreement ({result['labels']})", ""]
    lines += [
        "| Judge run | Judge | Protocol | n | Accuracy | 95 % CI | n (no ties) | Accuracy (no ties) | 95 % CI | "
        "Cohen's kappa | 95 % CI |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        kappa = "n/a" if run["kappa"] is None else f"{run['kappa']:.3f}"
        kappa_ci = "n/a" if not run["kappa_ci"] else f"[{run['kappa_ci'][0]:.3f}, {run['kappa_ci'][1]:.3f}]"
        lines.append(
            f"| {run['model']} vs {run['baseline']} | {run['judge']} | {run['protocol']['name']} | {run['n']} | "
            f"{_pct(run['accuracy'])} | {_ci(run['accuracy_ci'])} | {run['n_no_ties']} | "
            f"{_pct(run['accuracy_no_ties'])} | {_ci(run['accuracy_no_ties_ci'])} | {kappa} | {kappa_ci} |"
        )
    for run in result["runs"]:
        lines += ["", f"## {run['model']} vs {run['baseline']} by category", "", "| Category | n | Accuracy | "
                  "Accuracy (no ties) | Cohen's kappa |", "|---|---|---|---|---|"]  # fmt: skip
        for category, c in run["categories"].items():
            kappa = "n/a" if c["kappa"] is None else f"{c['kappa']:.3f}"
            lines.append(
                f"| {category} | {c['n']} | {_pct(c['accuracy'])} | {_pct(c['accuracy_no_ties'])} | {kappa} |"
            )
    return "\n".join(lines) + "\n"


def write_agreement(result: dict, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "agreement.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "agreement.md").write_text(render_agreement(result), encoding="utf-8")
    return path


if __name__ == "__main__":
    from openchat_hf.evaluation.runner import run_step

    run_step("agreement")
