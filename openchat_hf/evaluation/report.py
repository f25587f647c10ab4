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


def pairwise_model_entry(meta: dict, rows: list[dict], n_resamples: int = 1000, seed: int = 0) -> dict:
    """One ``models[]`` entry of report.json from a judge folder's meta and judgment rows."""
    questions = []
    for row in sorted(rows, key=lambda r: (str(type(r["question_id"])), r["question_id"])):
        model_score, baseline_score, outcome = question_scores(row["reviews"])
        questions.append(
            {
                "question_id": row["question_id"],
                "category": row["category"],
                "question": row["question"],
                "answer": row["answer"],
                "baseline_answer": row["baseline_answer"],
                "model_score": model_score,
                "baseline_score": baseline_score,
                "outcome": outcome,
                "reviews": row["reviews"],
            }
        )
    return {"model": meta["model"], **summarize_pairwise(questions, n_resamples, seed), "questions": questions}


def build_report(paths: list[str | Path], note: str | None = None, n_resamples: int = 1000, seed: int = 0) -> dict:
    """The report of every judge / grade folder under ``paths`` (see the report.json contract)."""
    dirs = find_result_dirs(paths)
    pairwise, grades, grade_judges = [], [], []
    for directory in dirs:
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("kind") == "single":
            grades += read_rows(directory / "grades.jsonl")
            grade_judges.append(meta["judge"])
        else:
            rows = read_rows(directory / "judgments.jsonl")
            if not rows:
                logger.warning("%s has no judgments yet: skipped", directory)
                continue
            pairwise.append((meta, rows))
    judge_fields = ("model", "base_url", "prompts_version", "samples")
    judges = [{k: m["judge"].get(k) for k in judge_fields} for m, _ in pairwise]
    judge = _same([{k: v for k, v in j.items() if k != "base_url"} for j in judges], "judges") if judges else None
    if judge is not None:
        judge["base_url"] = judges[0]["base_url"]
    elif grade_judges:
        judge = {k: grade_judges[0].get(k) for k in judge_fields}
    models = [pairwise_model_entry(meta, rows, n_resamples, seed) for meta, rows in pairwise]
    models.sort(key=lambda m: -(m["relative_score"] or 0))
    return {
        "version": REPORT_VERSION,
        "bench": _same([m["bench"] for m, _ in pairwise], "benches") if pairwise else "mt_bench",
        "baseline": _same([m["baseline"] for m, _ in pairwise], "baselines") if pairwise else None,
        "judge": judge,
        "note": note,
        "bootstrap": {"resamples": n_resamples, "seed": seed, "level": 0.95},
        "models": models,
        "mt_bench": {"models": summarize_grades(grades)} if grades else None,
    }


def _fmt(value, pct: bool = False, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f} %" if pct else f"{value:.{digits}f}"


def _ci(values, pct: bool = False) -> str:
    return f"[{_fmt(values[0], pct)}, {_fmt(values[1], pct)}]"


def render_markdown(report: dict) -> str:
    """A human-readable summary of ``report`` (tables per model and category, MT-bench averages)."""
    judge = report["judge"] or {}
    lines = [f"# Evaluation report: {report['bench']}", ""]
    if report["note"]:
        lines += [f"> **Note:** {report['note']}", ""]
    lines += [
        f"- Judge: `{judge.get('model')}` at {judge.get('base_url')}, prompts `{judge.get('prompts_version')}`, "
        f"{judge.get('samples')} sample(s) per order, both orders (balanced position calibration)",
        f"- Baseline: `{report['baseline']}`",
        f"- 95 % bootstrap CIs: {report['bootstrap']['resamples']} resamples, seed {report['bootstrap']['seed']}",
        "",
    ]
    if report["models"]:
        lines += [
            "| Model | Relative score | 95 % CI | Win / tie / loss | Win rate (ties = ½) | 95 % CI | Win rate "
            "(no ties) | Failed reviews | Failed questions |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for m in report["models"]:
            lines.append(
                f"| {m['model']} | {_fmt(m['relative_score'], True)} | {_ci(m['relative_score_ci'], True)} | "
                f"{m['wins']} / {m['ties']} / {m['losses']} | {_fmt(m['win_rate'], True)} | "
                f"{_ci(m['win_rate_ci'], True)} | {_fmt(m['win_rate_no_ties'], True)} | {m['failures']} of "
                f"{m['n_reviews']} | {m['failed_questions']} of {m['n_questions']} |"
            )
        lines.append("")
        lines.append(
            "Relative score = sum of the model's scores / sum of the baseline's, over questions with a score."
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
            "| Model | Average | Turn 1 | Turn 2 | " + " | ".join(categories) + " | Failed ratings |",
            "|---|---|---|---|" + "---|" * len(categories) + "---|",
        ]
        for m in models:
            cats = " | ".join(_fmt(m["categories"].get(c)) for c in categories)
            lines.append(
                f"| {m['model']} | {_fmt(m['average'])} | {_fmt(m['turns'].get('1'))} | {_fmt(m['turns'].get('2'))} "
                f"| {cats} | {m['failures']} |"
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
    from openchat_hf.evaluation.cli import run_step

    run_step("report")
