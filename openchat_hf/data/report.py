"""The pipeline report: counts per step and drop reason (the counts of ``dropped.jsonl``) that always add up to the
number of input records, the top drop reasons with examples, and plain-language messages about the outcome."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openchat_hf.data.droplog import DropLog
from openchat_hf.data.errors import DataPipelineError

STEPS = ("read", "clean", "decontaminate", "dedup", "filter", "near_dedup")
TOP_REASONS = 10


def new_report(input_path: str, output_dir: str, num_files: int, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 2,
        "input": str(input_path),
        "output": str(output_dir),
        "files": num_files,
        "inputs": 0,
        "input_models": {},
        "steps": {step: {} for step in STEPS},
        "kept": 0,
        "duplicate_ids": {"ids": 0, "records": 0, "examples": []},
        "model_types": {},
        "top_drops": [],
        "messages": [],
        "config": config,
    }


def top_drops(log: DropLog, limit: int = TOP_REASONS) -> list[dict[str, Any]]:
    """The most frequent ``(step, reason)`` pairs of the drop log with their first examples."""
    ranked = sorted(log.totals().items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [
        {
            "step": step,
            "reason": reason,
            "records": n,
            "examples": [
                {k: e[k] for k in ("source", "index", "id", "excerpt")} for e in log.examples()[(step, reason)]
            ],
        }
        for (step, reason), n in ranked
    ]


SIDE_BY_SIDE = {  # step -> (what was dropped, what it matched): drop-log keys shown next to each other
    "decontaminate": ("excerpt", "matched_id", "matched_excerpt", "score"),
    "near_dedup": ("excerpt", "kept_id", "kept_excerpt", "similarity"),
}


def drop_examples(log: DropLog) -> dict[str, list[dict[str, Any]]]:
    """The first examples of each reason of the decontaminate / near-dedup steps, with what they matched."""
    out: dict[str, list[dict[str, Any]]] = {}
    for (step, _reason), examples in sorted(log.examples().items()):
        if step in SIDE_BY_SIDE:
            keys = ("source", "index", "id", "reason", "rule", *SIDE_BY_SIDE[step])
            out.setdefault(step, []).extend({k: e.get(k) for k in keys} for e in examples)
    return out


def side_by_side(examples: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Markdown tables: each dropped conversation next to the benchmark prompt / kept conversation it matched."""
    lines: list[str] = []
    for step, title, other in (
        ("decontaminate", "Decontamination examples", "matched benchmark prompt"),
        ("near_dedup", "Near-duplicate examples", "kept representative"),
    ):
        if not examples.get(step):
            continue
        _, other_id, other_excerpt, score = SIDE_BY_SIDE[step]
        lines += [
            "",
            f"## {title}",
            "",
            f"| rule | dropped conversation | {other} | {score} |",
            "| --- | --- | --- | ---: |",
        ]
        for e in examples[step]:
            where = e["id"] or f"{e['source']}#{e['index']}"
            lines.append(
                f"| {_cell(e['rule'])} | `{_cell(where)}`: {_cell(e['excerpt'])} | `{_cell(e[other_id])}`: "
                f"{_cell(e[other_excerpt])} | {e[score]} |"
            )
    return lines


def dropped_total(report: dict[str, Any]) -> int:
    return sum(n for step in report["steps"].values() for n in step.values())


def check_report(report: dict[str, Any]) -> None:
    """Raise when the counts don't add up (a record would have been lost)."""
    total = dropped_total(report) + report["kept"]
    if total != report["inputs"]:
        raise DataPipelineError(f"Report does not add up: {report['inputs']} inputs but {total} kept + dropped.")
    for name, mt in report["model_types"].items():
        mt_total = mt["train"] + mt["eval"] + sum(mt["dropped"].values())
        if mt_total != mt["input"] or mt["input"] != report["kept"]:
            raise DataPipelineError(f"Report for {name} does not add up: {mt['input']} in, {mt_total} out.")


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: dict[str, Any]) -> str:
    """A readable table of the report, the top drop reasons with examples, and its messages."""
    inputs = report["inputs"] or 1
    lines = [
        f"# Data pipeline report: {report['input']}",
        "",
        f"{report['inputs']} input records from {report['files']} files; {report['kept']} kept "
        f"({100 * report['kept'] / inputs:.1f} %).",
        "",
    ]
    for message in report.get("messages", []):
        lines += [f"**{message}**", ""]
    lines += [
        "| step | reason | records | % of inputs |",
        "| --- | --- | ---: | ---: |",
        f"| input | | {report['inputs']} | 100.0 |",
    ]
    for step, reasons in report["steps"].items():
        for reason, n in reasons.items():
            lines.append(f"| {step} | {reason} | -{n} | {100 * n / inputs:.1f} |")
    lines.append(f"| **kept** | | **{report['kept']}** | {100 * report['kept'] / inputs:.1f} |")
    if report["model_types"]:
        lines += [
            "",
            "| model type | max length | train | eval | dropped | truncated | neutralized specials | train tokens |",
            "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        ]
        for name, mt in report["model_types"].items():
            dropped = ", ".join(f"{r}: {n}" for r, n in mt["dropped"].items() if n) or "0"
            lines.append(
                f"| {name} | {mt['max_length']} | {mt['train']} | {mt['eval']} | {dropped} | {mt['truncated']} | "
                f"{mt['neutralized_special_tokens']} | {mt['tokens']['train']} |"
            )
    elif report.get("note"):
        lines += ["", report["note"]]
    if report.get("top_drops"):
        lines += ["", "## Top drop reasons", "", "Every dropped record is a line of `dropped.jsonl`.", ""]
        for drop in report["top_drops"]:
            n = drop["records"]
            lines.append(f"- **{drop['step']} / {drop['reason']}**: {n} record{'s' * (n != 1)}, e.g.")
            for e in drop["examples"]:
                where = f"{e['source']}#{e['index']}" + (f" (id {e['id']})" if e["id"] else "")
                lines.append(f"  - `{_cell(where)}`: {_cell(e['excerpt'])}")
    lines += side_by_side(report.get("drop_examples", {}))
    dup = report.get("duplicate_ids") or {}
    if dup.get("ids"):
        lines += ["", "## Duplicate ids", ""]
        lines.append(
            f"{dup['ids']} id{'s are' if dup['ids'] != 1 else ' is'} carried by {dup['records']} kept "
            "conversations of different content (all kept; every one is listed in `duplicate_ids.jsonl`), e.g.:"
        )
        for e in dup["examples"]:
            where = ", ".join(f"{r['source']}#{r['index']}" for r in e["records"])
            lines.append(f"- `{_cell(e['id'])}`: {_cell(where)}")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], output_dir: str | Path) -> None:
    output_dir = Path(output_dir)
    (output_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (output_dir / "report.md").write_text(to_markdown(report), encoding="utf-8")
