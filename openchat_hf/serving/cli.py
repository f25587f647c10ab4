"""``openchat-hf serve MODEL``: the OpenAI-compatible server (also ``python -m openchat_hf.serving``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_PORT = 18888


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", help="local checkpoint folder (config.json + tokenizer; weights for --backend transformers)"
    )
    parser.add_argument("--backend", choices=("transformers", "tgi", "openai"), default="transformers")
    parser.add_argument("--backend-url", help="upstream URL for --backend tgi / openai (e.g. http://127.0.0.1:8080)")
    parser.add_argument("--backend-model", help="upstream model name for --backend openai (default: its first)")
    parser.add_argument(
        "--backend-api-key", default=os.environ.get("OPENCHAT_BACKEND_API_KEY"), help=argparse.SUPPRESS
    )
    parser.add_argument("--model-type", help="OpenChat model type (default: the one MODEL records; must agree)")
    parser.add_argument("--model-name", help="name clients pass as `model` (default: the folder's name)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--api-keys",
        default=os.environ.get("OPENCHAT_API_KEYS", ""),
        help="comma-separated accepted keys (default: env OPENCHAT_API_KEYS; none = no authentication)",
    )
    parser.add_argument("--max-batch-size", type=int, default=32, help="most sequences generated together")
    parser.add_argument("--max-context", type=int, help="context length (default: model type / model config)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--dtype", help="torch dtype (default: bfloat16 on GPU, float32 on CPU)")
    parser.add_argument("--log-conversations", action="store_true", help="log requests and answers (off by default)")
    parser.add_argument("--cors-origins", default="", help="comma-separated origins allowed by CORS")
    parser.add_argument("--max-request-bytes", type=int, default=1_000_000, help="largest accepted request body")


def serve(args: argparse.Namespace) -> int:
    from openchat_hf.serving.app import ServerConfig, create_app
    from openchat_hf.serving.backends import load_backend
    from openchat_hf.serving.errors import ServingError

    if args.max_batch_size < 1:
        raise ServingError("--max-batch-size must be at least 1.")
    if (Path(args.model) / "config.json").is_file():  # refuse a wrong --model-type before loading anything
        from openchat_hf.folder_info import model_type_of

        args.model_type = model_type_of(args.model, args.model_type).name
    backend = load_backend(
        args.model,
        args.backend,
        backend_url=args.backend_url,
        backend_model=args.backend_model,
        backend_api_key=args.backend_api_key,
        model_type=args.model_type,
        max_batch_size=args.max_batch_size,
        device=args.device,
        dtype=args.dtype,
    )
    config = ServerConfig(
        model_name=args.model_name or Path(args.model).resolve().name,
        model_type=args.model_type,
        api_keys=tuple(k.strip() for k in args.api_keys.split(",") if k.strip()),
        log_conversations=args.log_conversations,
        cors_origins=tuple(o.strip() for o in args.cors_origins.split(",") if o.strip()),
        max_request_bytes=args.max_request_bytes,
        max_context=args.max_context,
    )
    app = create_app(backend, config)
    print(f"Serving {config.model_name!r} ({args.backend}) at http://{args.host}:{args.port}/v1", flush=True)
    server = _graceful_server(app, host=args.host, port=args.port)
    server.run()
    if server.should_exit:
        print("openchat-hf serve: stopped", flush=True)
    return 0


def _graceful_server(app, *, host: str, port: int):
    """A uvicorn server that shuts down on Ctrl-C / SIGTERM and returns, instead of re-raising the signal afterwards
    (uvicorn does, and the re-raised SIGINT interrupts the app's lifespan task: a traceback on every clean stop)."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            super().handle_exit(sig, frame)  # a second Ctrl-C still forces the exit
            self._captured_signals.clear()

    return GracefulServer(uvicorn.Config(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5))


def add_subcommands(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="OpenAI-compatible server (port 18888)",
        description="Serve a checkpoint with the OpenAI API at http://HOST:PORT/v1 (GET /health when ready).",
    )
    add_arguments(parser)
    parser.set_defaults(func=serve)
