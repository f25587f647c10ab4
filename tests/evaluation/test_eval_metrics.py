"""Metrics on hand-computed cases: balanced position calibration, ties, failures, rates, bootstrap CIs."""

import numpy as np
import pytest

from openchat_hf.evaluation.metrics import (
    bootstrap_cis,
    length_controlled_win_rate,
    question_scores,
    summarize_grades,
    summarize_pairwise,
)


def review(order, model, baseline, sample=0, error=None):
    return {
        "order": order,
        "sample": sample,
        "model_score": None if error else model,
        "baseline_score": None if error else baseline,
        "error": error,
    }


def question(category, reviews):
    model_score, baseline_score, outcome = question_scores(reviews)
    return {
        "category": category,
        "model_score": model_score,
        "baseline_score": baseline_score,
        "outcome": outcome,
        "reviews": reviews,
    }


def test_both_orders_are_averaged_so_position_bias_cancels():
    # The judge adds +1 to whoever is shown first: 8 vs 6 becomes 9-6 and 7-8 (model shown second).
    assert question_scores([review("model_first", 9, 6), review("baseline_first", 8, 7)]) == (8.5, 6.5, "win")
    # Equal answers: the biased orders disagree, the average ties.
    assert question_scores([review("model_first", 7, 6), review("baseline_first", 6, 7)]) == (6.5, 6.5, "tie")


def test_samples_are_averaged_within_an_order_before_the_orders():
    reviews = [
        review("model_first", 9, 5, 0),
        review("model_first", 7, 5, 1),
        review("model_first", 8, 5, 2, error="unparseable"),
        review("baseline_first", 4, 6, 0),
    ]
    # model_first mean (9+7)/2 = 8 vs 5, baseline_first 4 vs 6: model (8+4)/2 = 6, baseline (5+6)/2 = 5.5.
    assert question_scores(reviews) == (6.0, 5.5, "win")


def test_one_order_failing_keeps_the_other_order():
    reviews = [review("model_first", 5, 8), review("baseline_first", 0, 0, error="unparseable after 3 attempts")]
    assert question_scores(reviews) == (5.0, 8.0, "loss")


def test_all_reviews_failing_is_a_failed_question_never_zero():
    reviews = [review("model_first", 0, 0, error="x"), review("baseline_first", 0, 0, error="y")]
    assert question_scores(reviews) == (None, None, "failed")


def test_summary_on_a_hand_computed_case():
    questions = [
        question("writing", [review("model_first", 8, 6), review("baseline_first", 8, 6)]),  # win 8 vs 6
        question("writing", [review("model_first", 5, 5), review("baseline_first", 6, 6)]),  # tie 5.5 vs 5.5
        question("math", [review("model_first", 3, 9), review("baseline_first", 4, 8)]),  # loss 3.5 vs 8.5
        question("math", [review("model_first", 9, 7), review("baseline_first", 0, 0, error="e")]),  # win 9 vs 7
        question("math", [review("model_first", 0, 0, error="e"), review("baseline_first", 0, 0, error="e")]),
    ]
    s = summarize_pairwise(questions)
    assert s["model_total"] == pytest.approx(8 + 5.5 + 3.5 + 9)
    assert s["baseline_total"] == pytest.approx(6 + 5.5 + 8.5 + 7)
    assert s["relative_score"] == pytest.approx(26 / 27)
    assert (s["wins"], s["ties"], s["losses"]) == (2, 1, 1)
    assert s["win_rate"] == pytest.approx((2 + 0.5) / 4)
    assert s["win_rate_no_ties"] == pytest.approx(2 / 3)
    assert s["failures"] == 3 and s["failed_questions"] == 1
    assert s["n_questions"] == 5 and s["n_reviews"] == 10
    assert s["categories"]["writing"] == {
        "relative_score": pytest.approx(13.5 / 11.5),
        "wins": 1,
        "ties": 1,
        "losses": 0,
        "n": 2,
    }
    assert s["categories"]["math"]["relative_score"] == pytest.approx(12.5 / 15.5)
    assert s["categories"]["math"]["n"] == 3
    lo, hi = s["relative_score_ci"]
    assert lo <= s["relative_score"] <= hi
    lo, hi = s["win_rate_ci"]
    assert 0 <= lo <= s["win_rate"] <= hi <= 1


def test_all_ties_and_all_failures():
    ties = [question("g", [review("model_first", 7, 7), review("baseline_first", 7, 7)]) for _ in range(3)]
    s = summarize_pairwise(ties)
    assert s["win_rate"] == 0.5 and s["win_rate_no_ties"] is None and s["relative_score"] == 1.0
    assert s["win_rate_ci"] == [0.5, 0.5] and s["relative_score_ci"] == [1.0, 1.0]

    failed = [question("g", [review("model_first", 0, 0, error="e")]) for _ in range(2)]
    s = summarize_pairwise(failed)
    assert s["relative_score"] is None and s["win_rate"] is None and s["failed_questions"] == 2
    assert s["relative_score_ci"] == [None, None] and s["categories"]["g"]["n"] == 2


def test_bootstrap_is_seeded_and_narrows_with_more_questions():
    outcomes = ["win", "loss", "tie", "win"] * 5
    model, baseline = [8, 4, 6, 9] * 5, [6, 7, 6, 5] * 5
    a = bootstrap_cis(model, baseline, outcomes, seed=0)
    assert a == bootstrap_cis(model, baseline, outcomes, seed=0)
    assert a != bootstrap_cis(model, baseline, outcomes, seed=1)
    wide = bootstrap_cis(model[:4], baseline[:4], outcomes[:4], seed=0)
    assert wide["win_rate_ci"][1] - wide["win_rate_ci"][0] > a["win_rate_ci"][1] - a["win_rate_ci"][0]
    assert a["relative_score_ci"][0] < sum(model) / sum(baseline) < a["relative_score_ci"][1]


def test_summarize_grades_per_turn_and_category():
    rows = [
        {"model": "m", "category": "math", "turns": [{"turn": 1, "rating": 8}, {"turn": 2, "rating": 4}]},
        {"model": "m", "category": "writing", "turns": [{"turn": 1, "rating": 10}, {"turn": 2, "rating": None}]},
        {"model": "n", "category": "math", "turns": [{"turn": 1, "rating": 3}, {"turn": 2, "rating": 5}]},
    ]
    m, n = summarize_grades(rows)
    assert m["model"] == "m" and m["average"] == pytest.approx(22 / 3)
    assert m["turns"] == {"1": 9.0, "2": 4.0}
    assert m["categories"] == {"math": 6.0, "writing": 10.0}
    assert m["failures"] == 1
    assert n["average"] == 4.0


def planted(n: int, theta: float, phi: float, seed: int):
    """Synthetic judgments: the model's answers are longer on average and the judge prefers longer answers
    (``logit P(win) = theta + phi * tanh(delta / std)``); ``theta`` is the known length-free strength."""
    rng = np.random.default_rng(seed)
    baseline_len = rng.integers(200, 1200, size=n)
    model_len = baseline_len + rng.normal(400, 300, size=n).astype(int)
    delta = model_len - baseline_len
    p = 1 / (1 + np.exp(-(theta + phi * np.tanh(delta / delta.std()))))
    outcomes = ["win" if u < p_i else "loss" for u, p_i in zip(rng.random(n), p)]
    return outcomes, model_len.tolist(), baseline_len.tolist()


@pytest.mark.parametrize("theta", [0.0, 1.0])
def test_length_control_removes_a_planted_length_bias(theta):
    outcomes, model_len, baseline_len = planted(3000, theta, phi=2.0, seed=1)
    raw = outcomes.count("win") / len(outcomes)
    lc = length_controlled_win_rate(outcomes, model_len, baseline_len, n_resamples=50, seed=0)
    truth = 1 / (1 + np.exp(-theta))
    assert raw > truth + 0.15  # the bias inflates the raw win rate
    assert lc["win_rate"] == pytest.approx(truth, abs=0.03)
    assert lc["ci_low"] < lc["win_rate"] < lc["ci_high"] and lc["n"] == 3000


def test_length_control_without_a_bias_is_the_raw_win_rate():
    outcomes, model_len, baseline_len = planted(3000, 0.5, phi=0.0, seed=2)
    raw = outcomes.count("win") / len(outcomes)
    lc = length_controlled_win_rate(outcomes, model_len, baseline_len, n_resamples=20)
    assert lc["win_rate"] == pytest.approx(raw, abs=0.03)


def test_length_control_of_equal_lengths_and_ties():
    lc = length_controlled_win_rate(["win", "tie", "loss", "win"], [5] * 4, [5] * 4, n_resamples=20)
    assert lc["win_rate"] == pytest.approx(0.625, abs=1e-3)  # no length signal: (1 + .5 + 0 + 1) / 4
    assert length_controlled_win_rate([], [], [])["win_rate"] is None


def sample_review(order, sample, model, baseline, error=None):
    return {"order": order, "sample": sample, "model_score": model, "baseline_score": baseline, "error": error}


def test_k_samples_balanced_versus_faireval_aggregation():
    # model_first: 3 good samples (8, 6 each); baseline_first: 1 of 3 succeeded (4, 7), 2 failed
    reviews = [sample_review("model_first", s, 8, 6) for s in range(3)] + [
        sample_review("baseline_first", 0, 4, 7),
        sample_review("baseline_first", 1, None, None, "unparseable"),
        sample_review("baseline_first", 2, None, None, "unparseable"),
    ]
    # balanced: mean per order, then of the orders: model (8 + 4) / 2 = 6, baseline (6 + 7) / 2 = 6.5 -> loss
    assert question_scores(reviews, "balanced") == (6.0, 6.5, "loss")
    # FairEval: the 4 successful samples pooled: model (24 + 4) / 4 = 7, baseline (18 + 7) / 4 = 6.25 -> win
    assert question_scores(reviews, "faireval") == (7.0, 6.25, "win")
    assert question_scores(reviews[3:4] + reviews[4:], "faireval") == (4.0, 7.0, "loss")
    assert question_scores(reviews[4:], "faireval") == (None, None, "failed")
