"""ShareGPT data pipeline: read -> clean -> dedup -> filter -> convert, with a report that always adds up.

Python API::

    from openchat_hf.data import PipelineConfig, run_pipeline

    report = run_pipeline("INPUT", "OUT", PipelineConfig(model_types="openchat", tokenizer="path/to/tokenizer"))

Names are imported lazily so that ``openchat-hf --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataPipelineError": "openchat_hf.data.errors",
    "PipelineConfig": "openchat_hf.data.pipeline",
    "run_pipeline": "openchat_hf.data.pipeline",
    "push_dataset": "openchat_hf.data.hub",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
