"""``openchat-hf serve MODEL``: the OpenAI-compatible server (also ``python -m openchat_hf.serving``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from openchat_hf.serving.backends.transformers import CPU_KERNELS

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
        help="comma-separated accepted keys (default: env OPENCHAT_API_KEYS; none = no authentication); "
        "prefer the variable or --api-key-file: arguments are visible in `ps`",
    )
    parser.add_argument("--api-key-file", help="file with accepted keys, one per line")
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="allow a non-loopback --host without API keys (refused otherwise)",
    )
    parser.add_argument("--allowed-hosts", default="", help="comma-separated Host header names accepted (any)")
    parser.add_argument("--max-batch-size", type=int, default=32, help="most sequences generated together")
    parser.add_argument(
        "--max-queue", type=int, default=128, help="sequences that may wait for the batch; more get 429"
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=30.0,
        help="seconds running requests get after SIGTERM before they end with a 503 error",
    )
    parser.add_argument(
        "--stream-interval",
        type=int,
        default=1,
        help="tokens per streamed chunk (embedded backend; default 1: every token); more = less CPU per token",
    )
    parser.add_argument("--max-context", type=int, help="context length (default: model type / model config)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--dtype", help="torch dtype (default: bfloat16 on GPU, float32 on CPU)")
    parser.add_argument(
        "--torch-threads", type=int, help="torch intra-op CPU threads (default: torch's; 1 helps on a busy machine)"
    )
    parser.add_argument(
        "--cpu-kernels",
        choices=CPU_KERNELS,
        default="compiled",
        help="fp32 CPU linear layers: compiled = a fused kernel for 1-3 sequences (AOTInductor, compiled once and "
        "cached) and oneDNN on prepacked weights for more (a copy of the weights, made when memory allows); "
        "few-row = the kernel alone, for 1-16 sequences (no copy); torch = torch's own (MKL)",
    )
    parser.add_argument(
        "--engine-process",
        action="store_true",
        help="run the embedded backend's model and scheduler in a child process, so that generation and the HTTP "
        "side do not share one Python interpreter lock (for machines with cores to spare)",
    )
    parser.add_argument("--log-conversations", action="store_true", help="log requests and answers (off by default)")
    parser.add_argument("--cors-origins", default="", help="comma-separated origins allowed by CORS")
    parser.add_argument("--max-request-bytes", type=int, default=1_000_000, help="largest accepted request body")


def serve(args: argparse.Namespace) -> int:
    from openchat_hf.serving.app import ServerConfig, create_app
    from openchat_hf.serving.backends import load_backend
    from openchat_hf.serving.config import check_stream_interval
    from openchat_hf.serving.errors import ServingError
    from openchat_hf.serving.security import is_loopback, read_key_file

    if args.max_batch_size < 1:
        raise ServingError("--max-batch-size must be at least 1.")
    if (Path(args.model) / "config.json").is_file():  # refuse a wrong --model-type before loading anything
        from openchat_hf.folder_info import model_type_of

        args.model_type = model_type_of(args.model, args.model_type).name
    if args.max_queue < 0 or args.shutdown_grace < 0:
        raise ServingError("--max-queue and --shutdown-grace must not be negative.")
    check_stream_interval(args.stream_interval, args.backend)  # before any weights load
    keys = [k.strip() for k in args.api_keys.split(",") if k.strip()]
    if args.api_key_file:
        keys += read_key_file(args.api_key_file)
    if not keys and not is_loopback(args.host):
        if not args.allow_unauthenticated:
            raise ServingError(
                f"Refusing to serve on {args.host} without an API key: anyone who can reach it could use the model. "
                "Set OPENCHAT_API_KEYS or --api-key-file, or pass --allow-unauthenticated."
            )
        print(f"Warning: serving on {args.host} without an API key (--allow-unauthenticated).", flush=True)
    threads = claim_cpu_threads(args.torch_threads) if args.backend == "transformers" else None
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
        threads=threads,
        cpu_kernels=args.cpu_kernels,
        engine_process=args.engine_process,
    )
    config = ServerConfig(
        model_name=args.model_name or Path(args.model).resolve().name,
        model_type=args.model_type,
        api_keys=tuple(keys),
        log_conversations=args.log_conversations,
        cors_origins=tuple(o.strip() for o in args.cors_origins.split(",") if o.strip()),
        allowed_hosts=tuple(h.strip() for h in args.allowed_hosts.split(",") if h.strip()),
        max_request_bytes=args.max_request_bytes,
        max_context=args.max_context,
        max_batch_size=args.max_batch_size,
        max_queue=args.max_queue,
        shutdown_grace=args.shutdown_grace,
        stream_interval=args.stream_interval,
    )
    app = create_app(backend, config)
    print(f"Serving {config.model_name!r} ({args.backend}) at http://{args.host}:{args.port}/v1", flush=True)
    server = _graceful_server(app, host=args.host, port=args.port, grace=args.shutdown_grace)
    server.run()
    if server.should_exit:
        print("openchat-hf serve: stopped", flush=True)
    return 0


def claim_cpu_threads(requested: int | None) -> int:
    """The generation thread's CPU thread count (``requested``, else torch's); the calling thread keeps one.

    OpenMP (libgomp) keeps the helper threads of every thread that ran a parallel kernel; with more of them than
    cores it stops spinning between kernels, so each parallel kernel of the generation thread waited for sleeping
    helpers (a 1-row SmolLM2 step ~1.6x slower on 2 cores, benchmarks/RESULTS.md). Call it before the model loads.
    """
    import torch

    threads = requested or torch.get_num_threads()
    torch.set_num_threads(1)
    return threads


def _graceful_server(app, *, host: str, port: int, grace: float):
    """A uvicorn server that drains on Ctrl-C / SIGTERM and returns.

    The first signal stops accepting connections and starts the app's drain: new requests get 503, running ones
    have ``grace`` seconds to finish, then each ends with a 503 error (streams: an error event and ``[DONE]``).
    uvicorn's own cut-off comes a few seconds later, only as a backstop. The signal is not re-raised afterwards
    (uvicorn does, and the re-raised SIGINT interrupts the app's lifespan task: a traceback on every clean stop).
    """
    import uvicorn

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            app.state.service.admission.begin_drain(grace)
            super().handle_exit(sig, frame)  # a second Ctrl-C still forces the exit
            self._captured_signals.clear()

    config = uvicorn.Config(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=grace + 5)
    return GracefulServer(config)


def add_subcommands(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="OpenAI-compatible server (port 18888)",
        description="Serve a checkpoint with the OpenAI API at http://HOST:PORT/v1 (GET /health when ready).",
    )
    add_arguments(parser)
    parser.set_defaults(func=serve)
