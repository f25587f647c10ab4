"""Metrics of pairwise judgments and single-answer grades (pure functions, tested on hand-computed cases).

Aggregation of a question's reviews (``balanced``, the default): the reviews of each order are averaged first (over
their successful samples), then the orders are averaged, so one order failing leaves the other order's mean rather
than a skewed mix. ``faireval`` is FairEval's rule instead: every successful sample of both orders pooled into one
flat mean (an order with more successful samples weighs more). Failed samples are left out by both rules (OpenChat
v1's protocol scores them 0 0 instead, and they then count as scores). A question without any scored review is
``failed``: it counts in ``failed_questions`` but in no total and no rate.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

TIE_TOLERANCE = 1e-9
WIN_VALUE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
AGGREGATIONS = ("balanced", "faireval", "fastchat-pair")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def question_scores(reviews: list[dict], aggregation: str = "balanced") -> tuple[float | None, float | None, str]:
    """``(model_score, baseline_score, outcome)`` of one question from its reviews (see the module docstring)."""
    if aggregation == "fastchat-pair":
        return _fastchat_pair(reviews)
    per_order: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for review in reviews:
        if review.get("model_score") is not None and (review.get("error") is None or review.get("scored_as_failure")):
            per_order[review["order"]].append((float(review["model_score"]), float(review["baseline_score"])))
    if not per_order:
        return None, None, "failed"
    if aggregation == "faireval":
        pooled = [pair for pairs in per_order.values() for pair in pairs]
        model_score, baseline_score = _mean([m for m, _ in pooled]), _mean([b for _, b in pooled])
    else:
        model_score = _mean([_mean([m for m, _ in pairs]) for pairs in per_order.values()])
        baseline_score = _mean([_mean([b for _, b in pairs]) for pairs in per_order.values()])
    if model_score > baseline_score + TIE_TOLERANCE:
        outcome = "win"
    elif model_score < baseline_score - TIE_TOLERANCE:
        outcome = "loss"
    else:
        outcome = "tie"
    return model_score, baseline_score, outcome


def _fastchat_pair(reviews: list[dict]) -> tuple[float | None, float | None, str]:
    """FastChat's MT-bench pairwise rule for one game (both orders): a win only when both orders name the same
    winner, a tie otherwise; a game with an unreadable verdict is dropped (``failed``). Scores: 1 / 0.5 / 0 points."""
    winners = [r.get("winner") for r in reviews]
    if not winners or any(r.get("error") is not None or w is None for r, w in zip(reviews, winners)):
        return None, None, "failed"
    if winners[0] == "tie" or any(w != winners[0] for w in winners):
        return 0.5, 0.5, "tie"
    return (1.0, 0.0, "win") if winners[0] == "model" else (0.0, 1.0, "loss")


def _counts(outcomes: list[str]) -> dict:
    wins, ties, losses = (outcomes.count(o) for o in ("win", "tie", "loss"))
    decided = wins + losses
    n = wins + ties + losses
    return {
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "win_rate": (wins + 0.5 * ties) / n if n else None,
        "win_rate_no_ties": wins / decided if decided else None,
    }


def bootstrap_cis(
    model_scores: list[float],
    baseline_scores: list[float],
    outcomes: list[str],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Percentile bootstrap CIs (questions resampled with replacement) of the relative score and the win rate."""
    n = len(model_scores)
    if n == 0:
        return {"relative_score_ci": [None, None], "win_rate_ci": [None, None]}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    model = np.asarray(model_scores, dtype=float)[idx].sum(1)
    baseline = np.asarray(baseline_scores, dtype=float)[idx].sum(1)
    relative = np.divide(model, baseline, out=np.full_like(model, np.nan), where=baseline > 0)
    win = np.asarray([WIN_VALUE[o] for o in outcomes])[idx].mean(1)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2

    def interval(values):
        values = values[~np.isnan(values)]
        return [float(np.percentile(values, lo)), float(np.percentile(values, hi))] if len(values) else [None, None]

    return {"relative_score_ci": interval(relative), "win_rate_ci": interval(win)}


def summarize_pairwise(questions: list[dict], n_resamples: int = 1000, seed: int = 0) -> dict:
    """Totals, W/T/L, win rates, bootstrap CIs and per-category figures of scored questions.

    Each question dict needs ``category``, ``model_score``, ``baseline_score``, ``outcome`` and ``reviews``.
    ``relative_score`` is a ratio (1.057 means 105.7 % of the baseline's total).
    """
    valid = [q for q in questions if q["outcome"] != "failed"]
    model_total = sum(q["model_score"] for q in valid)
    baseline_total = sum(q["baseline_score"] for q in valid)
    summary = {
        "relative_score": model_total / baseline_total if baseline_total > 0 else None,
        "model_total": model_total,
        "baseline_total": baseline_total,
        **_counts([q["outcome"] for q in valid]),
        "failures": sum(r.get("error") is not None for q in questions for r in q["reviews"]),
        "failed_questions": len(questions) - len(valid),
        "n_reviews": sum(len(q["reviews"]) for q in questions),
        "n_questions": len(questions),
    }
    summary.update(
        bootstrap_cis(
            [q["model_score"] for q in valid],
            [q["baseline_score"] for q in valid],
            [q["outcome"] for q in valid],
            n_resamples=n_resamples,
            seed=seed,
        )
    )
    categories = {}
    for category in sorted({q["category"] for q in questions}):
        cat_valid = [q for q in valid if q["category"] == category]
        base = sum(q["baseline_score"] for q in cat_valid)
        counts = _counts([q["outcome"] for q in cat_valid])
        categories[category] = {
            "relative_score": sum(q["model_score"] for q in cat_valid) / base if base > 0 else None,
            "wins": counts["wins"],
            "ties": counts["ties"],
            "losses": counts["losses"],
            "n": sum(q["category"] == category for q in questions),
        }
    summary["categories"] = categories
    summary["length_controlled"] = length_controlled_win_rate(
        [q["outcome"] for q in valid],
        [answer_length(q.get("answer")) for q in valid],
        [answer_length(q.get("baseline_answer")) for q in valid],
        n_resamples=n_resamples,
        seed=seed,
    )
    return summary


def answer_length(answer) -> int:
    """Characters of an answer (all turns of a multi-turn one), the length AlpacaEval's length control uses."""
    if answer is None:
        return 0
    return sum(map(len, answer)) if isinstance(answer, list) else len(answer)


def summarize_grades(rows: list[dict]) -> list[dict]:
    """MT-bench averages per model: overall, per turn and per category (failed ratings left out, and counted)."""
    by_model: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_model[row["model"]].append(row)
    models = []
    for model, model_rows in by_model.items():
        turns, categories, ratings, failures = defaultdict(list), defaultdict(list), [], 0
        for row in model_rows:
            for turn in row["turns"]:
                if turn.get("rating") is None:
                    failures += 1
                    continue
                turns[str(turn["turn"])].append(turn["rating"])
                categories[row["category"]].append(turn["rating"])
                ratings.append(turn["rating"])
        models.append(
            {
                "model": model,
                "average": _mean(ratings),
                "turns": {k: _mean(v) for k, v in sorted(turns.items())},
                "categories": {k: _mean(v) for k, v in sorted(categories.items())},
                "failures": failures,
                "n_questions": len(model_rows),
            }
        )
    return sorted(models, key=lambda m: -(m["average"] or 0))


def _fit_length_glm(y: np.ndarray, x: np.ndarray, ridge: float = 1e-3, iterations: int = 50) -> tuple[float, float]:
    """Logistic regression ``logit P(win) = theta + phi * x`` on soft labels ``y`` (Newton steps, small L2)."""
    features = np.stack([np.ones_like(x), x], axis=1)
    weights = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-features @ weights))
        gradient = features.T @ (p - y) + ridge * weights
        hessian = (features * (p * (1 - p))[:, None]).T @ features + ridge * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(weights[0]), float(weights[1])


def length_controlled_win_rate(
    outcomes: list[str],
    model_lengths: list[float],
    baseline_lengths: list[float],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """AlpacaEval 2's length-controlled win rate, minimal form (no per-instruction term).

    Fits ``logit P(model wins) = theta + phi * tanh((len_model - len_baseline) / std)`` on the questions' outcomes
    (a tie is half a win) and reports the win rate with the length term set to zero, ``sigmoid(theta)``; the CI is a
    percentile bootstrap over questions (the GLM refitted on each resample).
    """
    n = len(outcomes)
    if n == 0:
        return {"win_rate": None, "ci_low": None, "ci_high": None, "n": 0}
    y = np.asarray([WIN_VALUE[o] for o in outcomes], dtype=float)
    delta = np.asarray(model_lengths, dtype=float) - np.asarray(baseline_lengths, dtype=float)
    scale = delta.std()
    x = np.tanh(delta / scale) if scale > 0 else np.zeros(n)

    def controlled(idx) -> float:
        theta, _ = _fit_length_glm(y[idx], x[idx])
        return float(1.0 / (1.0 + np.exp(-theta)))

    rng = np.random.default_rng(seed)
    samples = [controlled(rng.integers(0, n, size=n)) for _ in range(n_resamples)]
    lo, hi = np.percentile(samples, [100 * (1 - level) / 2, 100 * (1 + level) / 2]) if samples else (None, None)
    return {
        "win_rate": controlled(np.arange(n)),
        "ci_low": None if lo is None else float(lo),
        "ci_high": None if hi is None else float(hi),
        "n": n,
    }
