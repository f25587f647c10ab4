"""Backends behind the server: ``transformers`` (embedded), ``tgi`` and ``openai`` (proxies)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openchat_hf.serving.backends.base import Backend, GenerationEvent, GenerationRequest, SamplingParams
from openchat_hf.serving.errors import ServingError

BACKENDS = ("transformers", "tgi", "openai")

__all__ = ["BACKENDS", "Backend", "GenerationEvent", "GenerationRequest", "SamplingParams", "load_backend"]


def load_backend(
    model_path: str | Path,
    backend: str = "transformers",
    *,
    backend_url: str | None = None,
    backend_model: str | None = None,
    backend_api_key: str | None = None,
    model_type: str | None = None,
    max_batch_size: int = 32,
    device: str | None = None,
    dtype: str | None = None,
    threads: int | None = None,
    cpu_kernels: str = "compiled",
    engine_process: bool = False,
) -> Backend:
    """Build a backend for the checkpoint folder ``model_path`` (its tokenizer and config are always read locally);
    ``engine_process`` runs the embedded backend's model and scheduler in a child process."""
    path = Path(model_path)
    if not (path / "config.json").exists() or not any(
        (path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")
    ):
        raise ServingError(
            f"{path} is not a checkpoint folder with config.json and a tokenizer; pass a local folder "
            "(e.g. the output of `openchat-hf patch` / `openchat-hf export` or of training)."
        )
    if engine_process and backend != "transformers":
        raise ServingError(f"--engine-process applies to the embedded backend only, not to the {backend} proxy.")
    if backend == "transformers":
        options = {"device": device, "dtype": dtype, "max_batch_size": max_batch_size, "threads": threads}
        if engine_process:
            from openchat_hf.serving.backends.engine_process import EngineProcessBackend

            return EngineProcessBackend(path, cpu_kernels=cpu_kernels, **options)
        from openchat_hf.serving.backends.transformers import TransformersBackend

        return TransformersBackend.from_pretrained(path, cpu_kernels=cpu_kernels, **options)
    if backend not in BACKENDS:
        raise ServingError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if not backend_url:
        raise ServingError(f"The {backend} backend needs --backend-url (the upstream server's address).")
    from transformers import AutoConfig

    from openchat_hf.tokenizer_loading import load_tokenizer

    tokenizer = load_tokenizer(path)
    config: Any = AutoConfig.from_pretrained(path)
    if backend == "tgi":
        from openchat_hf.folder_info import model_type_of
        from openchat_hf.serving.backends.tgi import TGIBackend

        eot_token = model_type_of(path, model_type, config=config).eot_token
        return TGIBackend(backend_url, tokenizer, config, eot_token=eot_token)
    from openchat_hf.serving.backends.openai import OpenAIBackend

    return OpenAIBackend(backend_url, tokenizer, config, model=backend_model, api_key=backend_api_key)
