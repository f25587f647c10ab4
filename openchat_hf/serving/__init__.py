"""openchat-hf serving: an OpenAI-compatible server with an embedded ``transformers`` backend and TGI / OpenAI
proxies.

    from openchat_hf.serving import create_app, load_backend
    app = create_app(load_backend("path/to/checkpoint"), model_name="openchat")

Names are imported lazily so that ``openchat-hf --help`` does not load FastAPI.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ServerConfig": "openchat_hf.serving.app",
    "create_app": "openchat_hf.serving.app",
    "BACKENDS": "openchat_hf.serving.backends",
    "Backend": "openchat_hf.serving.backends",
    "load_backend": "openchat_hf.serving.backends",
    "ServingError": "openchat_hf.serving.errors",
    "PARAMETERS": "openchat_hf.serving.protocol",
    "parameter_table": "openchat_hf.serving.protocol",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'openchat_hf.serving' has no attribute {name!r}")
