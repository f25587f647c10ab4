"""The evaluation-results page, built from one or more evaluation report folders' ``report.json`` (runs).

The page shows relative scores (% of the baseline's total score) with confidence intervals, raw and length-controlled
win rates side by side, win / tie / loss bars, how often the two judging orders disagree (position bias), the
per-category breakdown, MT-bench averages, per-turn scores and per-question grades when present, and every question
with both answers side by side and the judge's reviews in both orders. Judge failures are shown as such. The
``length_controlled``, ``coverage`` and ``protocol`` keys are optional: older reports render without them.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from openchat_hf.visualization.errors import VisualizationError
from openchat_hf.visualization.html import asset, plotly_js, render_page, write_page

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = (1,)


def _num(value: Any) -> float | None:
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else None
    )


def _scale(value: float | None, ratio: float | None) -> float:
    """100 if ``value`` is a fraction, 1 if it is already a percentage (reports may store either).

    ``ratio`` is what the value should be as a fraction (model_total / baseline_total, wins / judged); the closer
    reading wins. Without it, values within [-1.5, 1.5] are read as fractions.
    """
    if value is None:
        return 1.0
    if ratio is not None:
        return 1.0 if abs(value - 100 * ratio) <= abs(value - ratio) else 100.0
    return 100.0 if abs(value) <= 1.5 else 1.0


def _scaled(value: Any, scale: float) -> float | None:
    value = _num(value)
    return None if value is None else value * scale


def _scaled_pair(pair: Any, scale: float) -> list[float | None] | None:
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        return None
    return [_scaled(v, scale) for v in pair]


def _rate_scale(entry: dict[str, Any]) -> float:
    wins, ties, losses = (int(_num(entry.get(k)) or 0) for k in ("wins", "ties", "losses"))
    judged = wins + ties + losses
    rate = _num(entry.get("win_rate"))
    return _scale(rate, (wins + 0.5 * ties) / judged if judged and wins + ties else None)


def _length_controlled(value: Any, rate_scale: float | None) -> dict[str, Any] | None:
    """``length_controlled`` as percentages (same unit as the raw win rate, else guessed), or ``None``."""
    if not isinstance(value, dict):
        return None
    rate = _num(value.get("win_rate"))
    scale = rate_scale if rate_scale is not None else _scale(rate, None)
    n = _num(value.get("n"))
    return {
        "win_rate_pct": _scaled(rate, scale),
        "ci_pct": [_scaled(value.get("ci_low"), scale), _scaled(value.get("ci_high"), scale)],
        "n": int(n) if n is not None else None,
    }


def _coverage(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    judged, total = _num(value.get("judged")), _num(value.get("total"))
    complete = value.get("complete")
    if not isinstance(complete, bool):
        complete = judged is not None and total is not None and judged >= total
    return {
        "judged": int(judged) if judged is not None else None,
        "total": int(total) if total is not None else None,
        "complete": complete,
    }


def _protocol(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    out = {k: str(value[k]) for k in ("name", "prompts_sha256") if isinstance(value.get(k), (str, int, float))}
    return out or None


def _review_scores(review: dict[str, Any]) -> tuple[float, float] | None:
    """(model score, baseline score) of one successful review, from either layout a report may use."""
    if not isinstance(review, dict) or review.get("error"):
        return None
    mine, theirs = _num(review.get("model_score")), _num(review.get("baseline_score"))
    if mine is not None and theirs is not None:
        return mine, theirs
    scores = review.get("scores")
    if isinstance(scores, (list, tuple)) and len(scores) == 2 and all(_num(v) is not None for v in scores):
        first, second = float(scores[0]), float(scores[1])
        return (second, first) if review.get("order") == "baseline_first" else (first, second)
    return None


def _outcome(mine: float, theirs: float) -> str:
    return "win" if mine > theirs + 1e-9 else "loss" if mine < theirs - 1e-9 else "tie"


def order_outcomes(reviews: Any) -> dict[str, Any]:
    """Each judging order's verdict on one question and whether the two orders agree (position bias).

    ``agreement`` is ``"agree"``, ``"flip"`` (a win in one order, a loss in the other), ``"partial"`` (a tie in one
    order only), ``"one_order"`` (only one order was scored) or ``None`` (no scored review).
    """
    per_order: dict[str, list[tuple[float, float]]] = {}
    for review in reviews if isinstance(reviews, list) else []:
        scores = _review_scores(review)
        if scores is not None and review.get("order") in ("model_first", "baseline_first"):
            per_order.setdefault(review["order"], []).append(scores)
    outcomes = {
        order: _outcome(sum(m for m, _ in pairs) / len(pairs), sum(b for _, b in pairs) / len(pairs))
        for order, pairs in per_order.items()
    }
    if len(outcomes) < 2:
        agreement = "one_order" if outcomes else None
    else:
        a, b = outcomes["model_first"], outcomes["baseline_first"]
        agreement = "agree" if a == b else "partial" if "tie" in (a, b) else "flip"
    return {"order_outcomes": outcomes, "agreement": agreement, "orders_disagree": agreement in ("flip", "partial")}


def position_bias(questions: list[dict[str, Any]]) -> dict[str, Any]:
    """How often the judge preferred the answer it read first, over the decided (non-tie) scored reviews.

    Only questions scored in both orders count: with one order (e.g. the Vicuna-2023 protocol, the model always
    first) "read first" and "the model" are the same answer and the share would measure the model, not the judge.
    """
    first_won = decided = 0
    for q in questions:
        if q.get("agreement") not in ("agree", "flip", "partial"):
            continue
        for review in q.get("reviews") or []:
            scores = _review_scores(review)
            if scores is None or review.get("order") not in ("model_first", "baseline_first"):
                continue
            mine, theirs = scores
            if mine == theirs:
                continue
            decided += 1
            model_won = mine > theirs
            first_won += model_won == (review["order"] == "model_first")
    disagree = [q for q in questions if q.get("orders_disagree")]
    return {
        "first_position_win_pct": 100 * first_won / decided if decided else None,
        "decided_reviews": decided,
        "disagreements": len(disagree),
        "flips": sum(q.get("agreement") == "flip" for q in disagree),
        "both_orders": sum(q.get("agreement") in ("agree", "flip", "partial") for q in questions),
    }


def normalize_model(entry: dict[str, Any], report: dict[str, Any] | None = None) -> dict[str, Any]:
    """One model's entry with every score and rate as a percentage (``*_pct`` keys added; originals kept).

    Also reads the optional ``length_controlled``, ``coverage`` and ``protocol`` (the entry's own, else the
    report's), and adds each question's per-order verdicts (:func:`order_outcomes`) and the model's
    :func:`position_bias`.
    """
    report = report or {}
    out = dict(entry)
    total, base = _num(entry.get("model_total")), _num(entry.get("baseline_total"))
    score = _num(entry.get("relative_score"))
    score_scale = _scale(score, total / base if total is not None and base else None)
    out["relative_score_pct"] = _scaled(score, score_scale)
    out["relative_score_ci_pct"] = _scaled_pair(entry.get("relative_score_ci"), score_scale)
    rate_scale = _rate_scale(entry)
    out["win_rate_pct"] = _scaled(entry.get("win_rate"), rate_scale)
    out["win_rate_ci_pct"] = _scaled_pair(entry.get("win_rate_ci"), rate_scale)
    out["win_rate_no_ties_pct"] = _scaled(entry.get("win_rate_no_ties"), rate_scale)
    has_rate = _num(entry.get("win_rate")) is not None
    out["length_controlled"] = _length_controlled(
        entry.get("length_controlled", report.get("length_controlled")), rate_scale if has_rate else None
    )
    out["coverage"] = _coverage(entry.get("coverage", report.get("coverage")))
    out["protocol"] = _protocol(entry.get("protocol", report.get("protocol")))
    out["categories"] = {
        str(name): {**cat, "relative_score_pct": _scaled(cat.get("relative_score"), score_scale)}
        for name, cat in (entry.get("categories") or {}).items()
        if isinstance(cat, dict)
    }
    out["questions"] = [{**q, **order_outcomes(q.get("reviews"))} for q in entry.get("questions") or []
                        if isinstance(q, dict)]  # fmt: skip
    out["position_bias"] = position_bias(out["questions"])
    return out


def load_report(report_dir: str | Path) -> dict[str, Any]:
    """Read and check ``REPORT_DIR/report.json`` (or a path to the file itself)."""
    path = Path(report_dir)
    if path.is_dir() or path.suffix.lower() != ".json":
        path = path / "report.json"
    if not path.is_file():
        raise VisualizationError(f"{path} not found: pass the folder written by `openchat-hf eval report --out DIR`.")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise VisualizationError(f"{path} is not valid JSON ({err}); re-run `openchat-hf eval report`.") from err
    if not isinstance(report, dict) or not isinstance(report.get("models"), list):
        raise VisualizationError(f"{path} is not an evaluation report: expected an object with a 'models' list.")
    if report.get("version") not in SUPPORTED_VERSIONS:
        raise VisualizationError(
            f"{path} has report version {report.get('version')!r}; this openchat-hf reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}. Upgrade openchat-hf or re-run the report."
        )
    for i, model in enumerate(report["models"]):
        if not isinstance(model, dict) or not isinstance(model.get("model"), str):
            raise VisualizationError(f"{path}: models[{i}] must be an object with a 'model' name.")
    return report


def _mt_bench_models(report: dict[str, Any]) -> list[dict[str, Any]]:
    mt = report.get("mt_bench")
    models = mt.get("models") if isinstance(mt, dict) else None
    out = []
    for m in models if isinstance(models, list) else []:
        if not isinstance(m, dict) or not isinstance(m.get("model"), str):
            continue
        questions = [q for q in m.get("questions") or [] if isinstance(q, dict)]
        out.append({**m, "questions": questions})
    return out


def run_labels(sources: list[str | Path | dict[str, Any]]) -> list[str]:
    """Short, distinct labels for report sources: the report folder's name (never a full path)."""
    paths = [None if isinstance(s, dict) else Path(s) for s in sources]
    folders = [None if p is None else (p.parent if p.suffix.lower() == ".json" else p) for p in paths]
    short = [f"run {i + 1}" if f is None else (f.name or f"run {i + 1}") for i, f in enumerate(folders)]
    labels = [
        f"{folder.parent.name}/{folder.name}"
        if folder is not None and short.count(name) > 1 and folder.parent.name
        else name
        for name, folder in zip(short, folders)
    ]
    return [label if labels.count(label) == 1 else f"{label} ({i + 1})" for i, label in enumerate(labels)]


def _comparability(runs: list[dict[str, Any]]) -> list[str]:
    """Plain-language warnings when runs differ in what makes their numbers comparable."""
    notes = []
    for key, what in (("bench", "question sets"), ("baseline", "baselines")):
        values = sorted({str(r.get(key)) for r in runs})
        if len(values) > 1:
            notes.append(f"The runs use different {what} ({', '.join(values)}): their scores are not comparable.")
    judges = sorted({str((r.get("judge") or {}).get("model")) for r in runs})
    if len(judges) > 1:
        notes.append(f"The runs were judged by different models ({', '.join(judges)}).")
    prompts = {(p.get("name"), p.get("prompts_sha256")) for r in runs for p in r.get("protocols", [])}
    if len(prompts) > 1:
        notes.append("The runs used different judging protocols or prompt files (see the protocol column).")
    return notes


def eval_page_data(reports: dict[str, Any] | list[dict[str, Any]], labels: list[str] | None = None) -> dict[str, Any]:
    """The page's data: one or more reports (runs), percentages normalised, models sorted by relative score.

    Every model entry gets ``run`` (its run's index) and ``label`` (the model's name, plus the run's label when the
    page compares several runs). The first report's top-level keys are kept for a single run.
    """
    reports = [reports] if isinstance(reports, dict) else list(reports)
    labels = list(labels) if labels else [f"run {i + 1}" for i in range(len(reports))]
    if len(labels) != len(reports):
        raise VisualizationError(f"{len(labels)} run labels for {len(reports)} reports.")
    several = len(reports) > 1
    runs, models, mt_models = [], [], []
    for i, (report, label) in enumerate(zip(reports, labels)):
        run_models = [normalize_model(m, report) for m in report["models"]]
        for m in run_models:
            m["run"], m["label"] = i, f"{m['model']} · {label}" if several else m["model"]
        for m in _mt_bench_models(report):
            mt_models.append({**m, "run": i, "label": f"{m['model']} · {label}" if several else m["model"]})
        models += run_models
        protocols = [m["protocol"] for m in run_models if m["protocol"]] or (
            [p] if (p := _protocol(report.get("protocol"))) else []
        )
        runs.append(
            {
                "label": label,
                "bench": report.get("bench"),
                "baseline": report.get("baseline"),
                "judge": report.get("judge") if isinstance(report.get("judge"), dict) else None,
                "note": report.get("note") if isinstance(report.get("note"), str) else None,
                "protocols": [dict(t) for t in {tuple(sorted(p.items())) for p in protocols}],
                "coverage": _coverage(report.get("coverage")),
            }
        )
    models.sort(key=lambda m: -(m["relative_score_pct"] if m["relative_score_pct"] is not None else -math.inf))
    first = reports[0]
    data = {**first} if not several else {"version": first.get("version")}
    if several:
        for key in ("bench", "baseline"):
            values = {json.dumps(r.get(key)) for r in reports}
            data[key] = first.get(key) if len(values) == 1 else None
        data["note"] = None
    data.update(
        runs=runs,
        models=models,
        mt_bench={"models": mt_models} if mt_models else None,
        comparability=_comparability(runs) if several else [],
        protocol=runs[0]["protocols"][0] if len(runs[0]["protocols"]) == 1 else None,
    )
    return data


def build_eval_page(
    report: str | Path | dict[str, Any] | list[str | Path | dict[str, Any]],
    out: str | Path,
    *,
    labels: list[str] | None = None,
    csp: bool = True,
) -> Path:
    """Write the evaluation page for one report or several runs (a list of report folders / files / dicts).

    ``out`` is an ``.html`` file or a folder (then ``OUT/eval.html``); ``labels`` name the runs (default: each
    report's folder name).
    """
    sources = list(report) if isinstance(report, (list, tuple)) else [report]
    if not sources:
        raise VisualizationError("No evaluation report to show.")
    reports = [s if isinstance(s, dict) else load_report(s) for s in sources]
    labels = labels or run_labels(sources)
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        out = out / "eval.html"
    data = eval_page_data(reports, labels)
    if len(reports) > 1:
        title = f"{data.get('bench') or 'Evaluation'} results: {len(reports)} runs compared"
    else:
        title = f"{data.get('bench') or 'Evaluation'} results vs {data.get('baseline') or 'baseline'}"
    html = render_page(
        asset("eval.html"),
        title=title,
        data={**data, "title": title},
        scripts=[plotly_js(), asset("common.js") + "\n" + asset("eval.js")],
        csp=csp,
    )
    logger.info("Wrote %s (%d runs, %d models).", out, len(reports), len(data["models"]))
    return write_page(out, html)
