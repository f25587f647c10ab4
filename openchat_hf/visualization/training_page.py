"""The training page: loss, tokens/s and supervised share per logged step, beside the data report as pictures.

It reads what a training run leaves behind: ``trainer_state.json`` (transformers' ``log_history``; the checkpoint
folder's own, else its newest ``checkpoint-N``), with the keys :class:`~openchat_hf.training.OpenChatSFTTrainer`
adds to every logged step: ``train_tokens_per_second``, ``tokens_per_step`` and ``supervised_tokens_per_step``
(the supervised share is their ratio). Optionally the data pipeline's ``report.json`` (kept, dropped by step and
reason) and, beside it, ``dropped.jsonl`` for a few examples of each drop reason. Missing keys are shown as "not
logged", never as zeros.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from openchat_hf.visualization.errors import VisualizationError
from openchat_hf.visualization.html import asset, plotly_js, render_page, write_page

logger = logging.getLogger(__name__)

STEP_KEYS = {  # page name -> log_history key
    "loss": "loss",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
    "tokens_per_second": "train_tokens_per_second",
    "tokens_per_step": "tokens_per_step",
    "supervised_tokens_per_step": "supervised_tokens_per_step",
    "mean_token_accuracy": "mean_token_accuracy",
    "entropy": "entropy",
}
EXAMPLES_PER_REASON = 3
EXCERPT_CHARS = 300


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise VisualizationError(f"{path} is not a readable {what} ({err}).") from err


def find_trainer_state(checkpoint_dir: str | Path) -> Path:
    """``DIR/trainer_state.json`` (written at the end of a run), else the newest ``DIR/checkpoint-N``'s."""
    path = Path(checkpoint_dir)
    if path.is_file() and path.name == "trainer_state.json":
        return path
    if not path.is_dir():
        raise VisualizationError(f"{path} is not a folder: pass the --output_dir of a training run.")
    if (path / "trainer_state.json").is_file():
        return path / "trainer_state.json"
    checkpoints = sorted(
        (int(m.group(1)), p)
        for p in path.glob("checkpoint-*")
        if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and (p / "trainer_state.json").is_file()
    )
    if not checkpoints:
        raise VisualizationError(
            f"No trainer_state.json in {path} or its checkpoint-* folders: pass the --output_dir of a training run "
            "(the trainer writes it at the end of training and into every checkpoint)."
        )
    return checkpoints[-1][1] / "trainer_state.json"


def training_data(state: dict[str, Any]) -> dict[str, Any]:
    """Per-step series from a ``trainer_state.json`` (train logs, eval logs, the run's summary)."""
    history = state.get("log_history")
    if not isinstance(history, list):
        raise VisualizationError("trainer_state.json has no 'log_history' list: is this a transformers checkpoint?")
    steps: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for entry in history:
        if not isinstance(entry, dict):
            continue
        step = _num(entry.get("step"))
        if "loss" in entry:
            row = {"step": step, "epoch": _num(entry.get("epoch"))}
            row.update({name: _num(entry.get(key)) for name, key in STEP_KEYS.items()})
            tokens, supervised = row["tokens_per_step"], row["supervised_tokens_per_step"]
            row["supervised_share"] = supervised / tokens if tokens and supervised is not None else None
            steps.append(row)
        elif "eval_loss" in entry:
            evals.append({"step": step, "epoch": _num(entry.get("epoch")), "loss": _num(entry.get("eval_loss"))})
        elif "train_runtime" in entry:
            summary = {k: _num(v) for k, v in entry.items() if _num(v) is not None}
    logged = {name: any(r[name] is not None for r in steps) for name in [*STEP_KEYS, "supervised_share"]}
    tps = [r["tokens_per_second"] for r in steps if r["tokens_per_second"] is not None]
    shares = [r["supervised_share"] for r in steps if r["supervised_share"] is not None]
    return {
        "steps": steps,
        "evals": evals,
        "summary": summary,
        "logged": logged,
        "global_step": _num(state.get("global_step")),
        "max_steps": _num(state.get("max_steps")),
        "epochs": _num(state.get("num_train_epochs")),
        "logging_steps": _num(state.get("logging_steps")),
        "mean_tokens_per_second": sum(tps) / len(tps) if tps else None,
        "mean_supervised_share": sum(shares) / len(shares) if shares else None,
    }


def _count(value: Any) -> int:
    n = _num(value)
    return int(n) if n is not None else 0


def data_report_data(report_path: str | Path) -> dict[str, Any]:
    """The data pipeline's report (inputs, drops by step and reason, kept, per model type) and drop examples."""
    path = Path(report_path)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise VisualizationError(f"{path} not found: pass the data pipeline's output folder or its report.json.")
    report = _read_json(path, "data report")
    if not isinstance(report, dict) or not isinstance(report.get("steps"), dict):
        raise VisualizationError(f"{path} is not a data pipeline report: expected an object with 'steps'.")
    drops = [
        {"step": str(step), "reason": str(reason), "count": _count(n)}
        for step, reasons in report["steps"].items()
        if isinstance(reasons, dict)
        for reason, n in reasons.items()
        if _count(n)
    ]
    model_types = {}
    for name, mt in (report.get("model_types") or {}).items():
        if not isinstance(mt, dict):
            continue
        dropped = mt.get("dropped") if isinstance(mt.get("dropped"), dict) else {}
        tokens = mt.get("tokens") if isinstance(mt.get("tokens"), dict) else {}
        model_types[str(name)] = {
            "input": _count(mt.get("input")),
            "train": _count(mt.get("train")),
            "eval": _count(mt.get("eval")),
            "dropped": {str(r): _count(n) for r, n in dropped.items() if _count(n)},
            "truncated": _count(mt.get("truncated")),
            "max_length": _num(mt.get("max_length")),
            "train_tokens": _num(tokens.get("train")),
        }
    return {
        "name": path.parent.name,
        "inputs": _count(report.get("inputs")),
        "kept": _count(report.get("kept")),
        "files": _count(report.get("files")),
        "drops": drops,
        "model_types": model_types,
        "examples": drop_examples(path.parent / "dropped.jsonl"),
    }


def drop_examples(path: Path, per_reason: int = EXAMPLES_PER_REASON) -> dict[str, list[dict[str, Any]]]:
    """A few entries of the drop log per ``step/reason`` (short excerpts only)."""
    examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(entry, dict):
                continue
            key = f"{entry.get('step')}/{entry.get('reason')}"
            if len(examples[key]) < per_reason:
                excerpt = str(entry.get("excerpt") or "")
                examples[key].append({
                    "id": None if entry.get("id") is None else str(entry["id"]),
                    "source": Path(str(entry.get("source") or "")).name,  # a file name, never a machine path
                    "excerpt": excerpt[:EXCERPT_CHARS] + ("…" if len(excerpt) > EXCERPT_CHARS else ""),
                })  # fmt: skip
    return dict(examples)


def build_training_page(
    checkpoint_dir: str | Path, out: str | Path, *, data_report: str | Path | None = None, csp: bool = True
) -> Path:
    """Write the training page. ``out`` is an ``.html`` file or a folder (then ``OUT/training.html``)."""
    state_path = find_trainer_state(checkpoint_dir)
    state = _read_json(state_path, "trainer_state.json")
    if not isinstance(state, dict):
        raise VisualizationError(f"{state_path} is not a trainer state (expected a JSON object).")
    run = Path(checkpoint_dir)
    name = (run.parent if run.is_file() else run).name
    data = {
        "title": f"Training run: {name}",
        "run": name,
        "state_file": state_path.relative_to(run).as_posix() if run.is_dir() else state_path.name,
        **training_data(state),
        "data_report": data_report_data(data_report) if data_report is not None else None,
    }
    if not data["steps"]:
        logger.warning("%s has no logged training steps (logging_steps larger than the run?).", state_path)
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        out = out / "training.html"
    html = render_page(
        asset("training.html"),
        title=data["title"],
        data=data,
        scripts=[plotly_js(), asset("common.js") + "\n" + asset("training.js")],
        csp=csp,
    )
    logger.info("Wrote %s (%d logged steps).", out, len(data["steps"]))
    return write_page(out, html)
