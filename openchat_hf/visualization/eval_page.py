"""The evaluation-results page, built from an evaluation report folder's ``report.json``.

The page shows relative scores (% of the baseline's total score) with confidence intervals, win / tie / loss bars,
the per-category breakdown, MT-bench averages when present, and every question with both answers and the judge's
reviews in both orders. Judge failures are shown as such.
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


def normalize_model(entry: dict[str, Any]) -> dict[str, Any]:
    """One model's entry with every score and rate as a percentage (``*_pct`` keys added; originals kept)."""
    out = dict(entry)
    total, base = _num(entry.get("model_total")), _num(entry.get("baseline_total"))
    score = _num(entry.get("relative_score"))
    score_scale = _scale(score, total / base if total is not None and base else None)
    out["relative_score_pct"] = _scaled(score, score_scale)
    out["relative_score_ci_pct"] = _scaled_pair(entry.get("relative_score_ci"), score_scale)
    wins, ties, losses = (int(_num(entry.get(k)) or 0) for k in ("wins", "ties", "losses"))
    judged = wins + ties + losses
    rate = _num(entry.get("win_rate"))
    rate_scale = _scale(rate, (wins + 0.5 * ties) / judged if judged and wins + ties else None)
    out["win_rate_pct"] = _scaled(rate, rate_scale)
    out["win_rate_ci_pct"] = _scaled_pair(entry.get("win_rate_ci"), rate_scale)
    out["win_rate_no_ties_pct"] = _scaled(entry.get("win_rate_no_ties"), rate_scale)
    out["categories"] = {
        str(name): {**cat, "relative_score_pct": _scaled(cat.get("relative_score"), score_scale)}
        for name, cat in (entry.get("categories") or {}).items()
        if isinstance(cat, dict)
    }
    out["questions"] = [q for q in entry.get("questions") or [] if isinstance(q, dict)]
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


def eval_page_data(report: dict[str, Any]) -> dict[str, Any]:
    """The page's data: the report with percentages normalised and models sorted by relative score."""
    models = [normalize_model(m) for m in report["models"]]
    models.sort(key=lambda m: -(m["relative_score_pct"] if m["relative_score_pct"] is not None else -math.inf))
    mt_bench = report.get("mt_bench") if isinstance(report.get("mt_bench"), dict) else None
    return {**report, "models": models, "mt_bench": mt_bench}


def build_eval_page(report: str | Path | dict[str, Any], out: str | Path, *, csp: bool = True) -> Path:
    """Write the evaluation page. ``out`` is an ``.html`` file or a folder (then ``OUT/eval.html``)."""
    if not isinstance(report, dict):
        report = load_report(report)
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        out = out / "eval.html"
    data = eval_page_data(report)
    title = f"{data.get('bench') or 'Evaluation'} results vs {data.get('baseline') or 'baseline'}"
    html = render_page(
        asset("eval.html"),
        title=title,
        data={"title": title, **data},
        scripts=[plotly_js(), asset("common.js") + "\n" + asset("eval.js")],
        csp=csp,
    )
    logger.info("Wrote %s (%d models).", out, len(data["models"]))
    return write_page(out, html)
