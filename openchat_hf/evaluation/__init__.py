"""openchat-hf evaluation: answers from any OpenAI-compatible endpoint, pairwise judging (evidence calibration +
balanced position calibration + k samples), MT-bench grading, the published judge protocols as presets, reports with
length-controlled win rates, judge-human agreement, AlpacaEval export.

Talks to endpoints over HTTP only; it imports neither ``openchat_hf.serving`` nor ``openchat_hf.training``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "EvaluationError": "errors",
    "EndpointConfig": "client",
    "EndpointError": "client",
    "AnswerConfig": "answers",
    "generate_answers": "answers",
    "JudgeConfig": "judge",
    "run_judge": "judge",
    "GradeConfig": "grade",
    "run_grade": "grade",
    "build_report": "report",
    "write_report": "report",
    "export_alpaca": "alpaca",
    "download_alpaca_questions": "alpaca",
    "parse_pair_scores": "parsing",
    "parse_rating": "parsing",
    "PROMPTS_VERSION": "prompts",
    "PROTOCOLS": "protocols",
    "get_protocol": "protocols",
    "compute_agreement": "agreement",
    "length_controlled_win_rate": "metrics",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    # Lazy, so `python -m openchat_hf.evaluation.<step>` does not import the step module twice.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"openchat_hf.evaluation.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
