"""Step 4: the report: ``report.json`` (the contract the results web page reads) and ``report.md``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.metrics import question_scores, summarize_grades, summarize_pairwise
from openchat_hf.evaluation.records import read_rows

logger = logging.getLogger(__name__)

REPORT_VERSION = 1


def find_result_dirs(paths: list[str | Path]) -> list[Path]:
    """Judge / grade output folders (with ``meta.json``) among ``paths`` and their direct sub-folders."""
    found = []
    for path in map(Path, paths):
        if (path / "meta.json").is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p.parent for p in path.glob("*/meta.json"))
        else:
            raise EvaluationError(f"{path} is not a folder")
    if not found:
        raise EvaluationError(
            f"no judge or grade results (meta.json) in {', '.join(map(str, paths))}: run `eval judge` / `eval grade`"
        )
    return found


def _same(values: list, what: str):
    distinct = {json.dumps(v, sort_keys=True) for v in values}
    if len(distinct) > 1:
        raise EvaluationError(
            f"the results mix several {what} ({', '.join(sorted(distinct))}): report them separately"
        )
    return values[0] if values else None


def coverage(judged_ids, expected_ids) -> dict:
    """``{"judged", "total", "complete"}``: results present out of the questions the run was asked to judge."""
    judged = {str(i) for i in judged_ids}
    total = judged | {str(i) for i in expected_ids or []}
    return {"judged": len(judged), "total": len(total), "complete": judged >= total}


def _protocol(meta: dict) -> dict:
    return meta.get("protocol") or {"name": "openchat-hf", "prompts_sha256": None}


def pairwise_model_entry(meta: dict, rows: list[dict], n_resamples: int = 1000, seed: int = 0) -> dict:
    """One ``models[]`` entry of report.json from a judge folder's meta and judgment rows."""
    aggregation = meta.get("judge", {}).get("aggregation", "balanced")
    questions = []
    for row in sorted(rows, key=lambda r: (str(type(r["question_id"])), r["question_id"], r.get("turn") or 0)):
        model_score, baseline_score, outcome = question_scores(row["reviews"], aggregation)
        questions.append(
            {
                "question_id": row["question_id"],
                **({"turn": row["turn"]} if "turn" in row else {}),
                "category": row["category"],
                "question": row["question"],
                "answer": row["answer"],
                "baseline_answer": row["baseline_answer"],
                "model_score": model_score,
                "baseline_score": baseline_score,
                "outcome": outcome,
                "protocol": row.get("protocol", _protocol(meta)["name"]),
                "prompts_sha256": row.get("prompts_sha256", _protocol(meta)["prompts_sha256"]),
                "verdict_source": row.get("verdict_source", "text"),
                "reviews": row["reviews"],
            }
        )
    return {
        "model": meta["model"],
        **summarize_pairwise(questions, n_resamples, seed),
        "coverage": coverage([r["question_id"] for r in rows], meta.get("question_ids")),
        "protocol": _protocol(meta),
        "questions": questions,
    }


def _grade_coverage(grade_sets: list[tuple[dict, list[dict]]]) -> dict[str, dict]:
    per_model: dict[str, tuple[set, set]] = {}
    for meta, rows in grade_sets:
        for model in set(meta.get("models", [])) | {r["model"] for r in rows}:
            judged, expected = per_model.setdefault(model, (set(), set()))
            judged |= {str(r["question_id"]) for r in rows if r["model"] == model}
            expected |= {str(q) for q in meta.get("question_ids", [])}
    return {model: coverage(judged, expected) for model, (judged, expected) in per_model.items()}


def grade_questions(rows: list[dict], model: str) -> list[dict]:
    """The per-question grades of ``model`` for ``mt_bench.models[].questions``: the turns as in grades.jsonl."""
    model_rows = [r for r in rows if r["model"] == model]
    model_rows.sort(key=lambda r: (str(type(r["question_id"])), r["question_id"]))
    return [
        {
            "question_id": row["question_id"],
            "category": row["category"],
            "turns": [{k: turn.get(k) for k in ("turn", "rating", "text", "error")} for turn in row["turns"]],
        }
        for row in model_rows
    ]


def build_report(
    paths: list[str | Path],
    note: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    allow_partial: bool = False,
) -> dict:
    """The report of every judge / grade folder under ``paths`` (see the report.json contract).

    A run that does not cover every question it was asked to judge is refused unless ``allow_partial``; the report
    then marks it (``coverage.complete`` false).
    """
    dirs = find_result_dirs(paths)
    pairwise, grade_sets = [], []
    for directory in dirs:
        meta = json.loads((directory / "meta.json").read_text())
        meta["_dir"] = str(directory)
        if meta.get("kind") == "single":
            grade_sets.append((meta, read_rows(directory / "grades.jsonl")))
        else:
            rows = read_rows(directory / "judgments.jsonl")
            if not rows:
                logger.warning("%s has no judgments yet: skipped", directory)
                continue
            pairwise.append((meta, rows))
    grades = [row for _, rows in grade_sets for row in rows]
    judge_fields = ("model", "base_url", "prompts_version", "samples", "protocol", "prompts_sha256")
    judges = [{k: m["judge"].get(k) for k in judge_fields} for m, _ in pairwise]
    judge = _same([{k: v for k, v in j.items() if k != "base_url"} for j in judges], "judges") if judges else None
    if judge is not None:
        judge["base_url"] = judges[0]["base_url"]
    elif grade_sets:
        judge = {k: grade_sets[0][0]["judge"].get(k) for k in judge_fields}
    models = [pairwise_model_entry(meta, rows, n_resamples, seed) for meta, rows in pairwise]
    models.sort(key=lambda m: -(m["relative_score"] or 0))
    mt_bench = None
    if grades:
        grade_coverage = _grade_coverage(grade_sets)
        mt_models = summarize_grades(grades)
        for entry in mt_models:
            entry["coverage"] = grade_coverage.get(entry["model"], coverage([], []))
            entry["questions"] = grade_questions(grades, entry["model"])
        mt_bench = {"models": mt_models, "protocol": _protocol(grade_sets[0][0])}
    partial = [
        f"{m['model']}: {m['coverage']['judged']} of {m['coverage']['total']} questions judged"
        for m in models
        if not m["coverage"]["complete"]
    ] + [
        f"{m['model']} (grades): {m['coverage']['judged']} of {m['coverage']['total']} questions graded"
        for m in (mt_bench or {}).get("models", [])
        if not m["coverage"]["complete"]
    ]
    if partial and not allow_partial:
        raise EvaluationError(
            f"incomplete results ({'; '.join(partial)}): finish them with the same `eval judge` / `eval grade` "
            "command (it resumes), or pass --allow-partial to report them marked as partial"
        )
    return {
        "version": REPORT_VERSION,
        "bench": _same([m["bench"] for m, _ in pairwise], "benches") if pairwise else "mt_bench",
        "baseline": _same([m["baseline"] for m, _ in pairwise], "baselines") if pairwise else None,
        "judge": judge,
        "protocol": _same([_protocol(m) for m, _ in pairwise], "protocols")
        if pairwise
        else (_protocol(grade_sets[0][0]) if grade_sets else None),
        "note": note,
        "partial": partial,
        "bootstrap": {"resamples": n_resamples, "seed": seed, "level": 0.95},
        "models": models,
        "mt_bench": mt_bench,
    }


def _fmt(value, pct: bool = False, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f} %" if pct else f"{value:.{digits}f}"


def _ci(values, pct: bool = False) -> str:
    return f"[{_fmt(values[0], pct)}, {_fmt(values[1], pct)}]"


def _pairwise_header(report: dict) -> list[str]:
    judge = report["judge"] or {}
    protocol = report.get("protocol") or {}
    orders = "one order (the model as Assistant 1)" if protocol.get("name") == "vicuna-2023" else "both orders"
    return [
        f"- Judge: `{judge.get('model')}` at {judge.get('base_url')}, protocol `{protocol.get('name')}` (prompts "
        f"`{judge.get('prompts_version')}`, sha256 {str(protocol.get('prompts_sha256'))[:12]}), "
        f"{judge.get('samples')} sample(s) per order, {orders}",
        f"- Baseline: `{report['baseline']}`",
    ]


def _grade_header(report: dict) -> list[str]:
    judge = report["judge"] or {}
    protocol = (report.get("mt_bench") or {}).get("protocol") or {}
    return [
        f"- Grader: `{judge.get('model')}` at {judge.get('base_url')}, protocol `{protocol.get('name')}` (prompts "
        f"sha256 {str(protocol.get('prompts_sha256'))[:12]}): single-answer grading, one rating from 1 to 10 per "
        "turn, no baseline"
    ]


def render_markdown(report: dict) -> str:
    """A human-readable summary of ``report`` (tables per model and category, MT-bench averages)."""
    lines = [f"# Evaluation report: {report['bench']}", ""]
    if report["note"]:
        lines += [f"> **Note:** {report['note']}", ""]
    if report.get("partial"):
        lines += ["> **Partial results:** " + "; ".join(report["partial"]) + ".", ""]
    lines += _pairwise_header(report) if report["models"] else []
    lines += _grade_header(report) if report["mt_bench"] else []
    if report["models"]:
        lines.append(
            f"- 95 % bootstrap CIs: {report['bootstrap']['resamples']} resamples, seed {report['bootstrap']['seed']}"
        )
    lines.append("")
    if report["models"]:
        lines += [
            "| Model | Relative score | 95 % CI | Win / tie / loss | Win rate (ties = ½) | 95 % CI | Length-controlled "
            "win rate | 95 % CI | Win rate (no ties) | Failed reviews | Failed questions | Coverage |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for m in report["models"]:
            lc, cov = m["length_controlled"], m["coverage"]
            lines.append(
                f"| {m['model']} | {_fmt(m['relative_score'], True)} | {_ci(m['relative_score_ci'], True)} | "
                f"{m['wins']} / {m['ties']} / {m['losses']} | {_fmt(m['win_rate'], True)} | "
                f"{_ci(m['win_rate_ci'], True)} | {_fmt(lc['win_rate'], True)} | "
                f"{_ci([lc['ci_low'], lc['ci_high']], True)} | {_fmt(m['win_rate_no_ties'], True)} | "
                f"{m['failures']} of {m['n_reviews']} | {m['failed_questions']} of {m['n_questions']} | "
                f"{cov['judged']} of {cov['total']}{'' if cov['complete'] else ' (partial)'} |"
            )
        lines.append("")
        lines.append(
            "Relative score = sum of the model's scores / sum of the baseline's, over questions with a score. "
            "Length-controlled win rate: AlpacaEval 2's GLM (minimal form), the win rate with the answer-length "
            "difference's effect removed."
        )
        for m in report["models"]:
            lines += [
                "",
                f"## {m['model']} by category",
                "",
                "| Category | Relative score | W / T / L | n |",
                "|---|---|---|---|",
            ]
            for cat, c in m["categories"].items():
                lines.append(
                    f"| {cat} | {_fmt(c['relative_score'], True)} | {c['wins']} / {c['ties']} / {c['losses']} | "
                    f"{c['n']} |"
                )
    if report["mt_bench"]:
        models = report["mt_bench"]["models"]
        categories = sorted({c for m in models for c in m["categories"]})
        lines += [
            "",
            "## MT-bench (single-answer grading, 1-10)",
            "",
            "| Model | Average | Turn 1 | Turn 2 | " + " | ".join(categories) + " | Failed ratings | Coverage |",
            "|---|---|---|---|" + "---|" * len(categories) + "---|---|",
        ]
        for m in models:
            cats = " | ".join(_fmt(m["categories"].get(c)) for c in categories)
            cov = m["coverage"]
            lines.append(
                f"| {m['model']} | {_fmt(m['average'])} | {_fmt(m['turns'].get('1'))} | {_fmt(m['turns'].get('2'))} "
                f"| {cats} | {m['failures']} | {cov['judged']} of {cov['total']}"
                f"{'' if cov['complete'] else ' (partial)'} |"
            )
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path


if __name__ == "__main__":
    from openchat_hf.evaluation.runner import run_step

    run_step("report")
