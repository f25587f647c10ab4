"""The pipeline report: counts per step and drop reason that always add up to the number of input records."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from openchat_hf.data.errors import DataPipelineError

STEPS = ("read", "clean", "dedup", "filter")


def new_report(input_path: str, output_dir: str, num_files: int, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "input": str(input_path),
        "output": str(output_dir),
        "files": num_files,
        "inputs": 0,
        "steps": {step: {} for step in STEPS},
        "kept": 0,
        "model_types": {},
        "config": config,
    }


def add_drops(report: dict[str, Any], step: str, reasons: Counter) -> None:
    for reason, n in sorted(reasons.items()):
        if reason and n:
            report["steps"][step][reason] = report["steps"][step].get(reason, 0) + n


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


def to_markdown(report: dict[str, Any]) -> str:
    """A readable table of the report."""
    inputs = report["inputs"] or 1
    lines = [
        f"# Data pipeline report: {report['input']}",
        "",
        f"{report['inputs']} input records from {report['files']} files; {report['kept']} kept "
        f"({100 * report['kept'] / inputs:.1f} %).",
        "",
        "| step | reason | records | % of inputs |",
        "| --- | --- | ---: | ---: |",
        f"| input | | {report['inputs']} | 100.0 |",
    ]
    for step in STEPS:
        for reason, n in report["steps"][step].items():
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
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], output_dir: str | Path) -> None:
    output_dir = Path(output_dir)
    (output_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (output_dir / "report.md").write_text(to_markdown(report), encoding="utf-8")
