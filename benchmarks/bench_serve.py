"""Serving throughput and latency: the embedded backend's continuous batching vs one request at a time.

The servers are the same FastAPI app on 127.0.0.1 in this process; only the backend differs:

* ``sequential`` (baseline, OpenChat v1's serving loop): one request at a time, ``model.generate`` under a lock, the
  text streamed every 6 tokens as v1 did (``--baseline-stream-tokens``; 0 sends each answer as one chunk);
* ``batched``: :class:`openchat_hf.serving.backends.transformers.TransformersBackend` (continuous batching, KV cache);
* ``engine`` (``--engine-process``): the same backend with its model and scheduler in a child process
  (:class:`openchat_hf.serving.backends.engine_process.EngineProcessBackend`);
* ``no_model`` (the harness ceiling, ``--skip-ceiling`` to leave it out): tokens that cost nothing, chunked as the
  batched server chunks them, through the same app and clients: what this machine's HTTP path and load generator
  allow at best. A ratio near the ceiling's is bound by the harness, not by the model's serving.

Clients are real ``openai.AsyncOpenAI`` clients in a separate process, each sending requests back to back (varied
``max_tokens``, greedy), streaming by default (``--plain`` for non-streaming). Prints output tokens/s, p50/p95
latency and time to first token (TTFT) at 1, 8, 32 and 64 clients with the batch cap in force
(``--max-batch-size``, default 32: at 64 clients half of them queue), and the ratio to the baseline measured in the
same run; then the proxy overhead (``--backend openai`` in front of the embedded server vs calling it directly) and
engines without HTTP. ``--gpu --model DIR`` runs the same on a CUDA GPU with a real checkpoint.

    python benchmarks/bench_serve.py                     # CPU, tiny random-init model, streaming
    python benchmarks/bench_serve.py --plain --skip-proxy --skip-offline
    python benchmarks/bench_serve.py --gpu --model DIR   # GPU (bf16)
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import dataclasses
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import openai

from openchat_hf.serving import ServerConfig, create_app
from openchat_hf.serving.backends.base import Backend, GenerationEvent, GenerationRequest
from openchat_hf.serving.backends.engine_process import EngineProcessBackend
from openchat_hf.serving.backends.openai import OpenAIBackend
from openchat_hf.serving.backends.transformers import TransformersBackend
from openchat_hf.serving.health import wait_healthy

MODEL = "bench"


class SequentialBackend(Backend):
    """The baseline, OpenChat v1's serving loop: one request at a time (here ``model.generate`` under a lock), the
    text streamed every ``stream_tokens`` tokens as v1 did (its ``--stream_tokens``, default 6); ``stream_tokens=0``
    sends each answer as one chunk (this script's baseline until 3 Dec 2026)."""

    name = "sequential"

    def __init__(self, model, tokenizer, eos_token_ids, stream_tokens: int = 6) -> None:
        import torch

        super().__init__(tokenizer, model.config)
        self.model, self.eos, self.stream_tokens = model, eos_token_ids, stream_tokens
        self.lock = threading.Lock()
        self.threads = torch.get_num_threads()  # OpenMP settings are per thread: applied in the worker threads

    def _generate(self, request: GenerationRequest, emit, every: int) -> None:
        """Generate ``request``, handing ``emit`` the new token ids every ``every`` tokens (0: all at the end)."""
        import torch
        from transformers.generation.streamers import BaseStreamer

        class Chunks(BaseStreamer):
            def __init__(self) -> None:
                self.prompt_seen, self.pending = False, []

            def put(self, value) -> None:
                if not self.prompt_seen:  # generate hands the streamer the prompt first
                    self.prompt_seen = True
                    return
                self.pending += value.flatten().tolist()
                if every and len(self.pending) >= every:
                    self.end()

            def end(self) -> None:
                if self.pending:
                    emit(self.pending)
                    self.pending = []

        torch.set_num_threads(self.threads)
        p = request.params
        ids = torch.tensor([request.prompt_ids], device=self.model.device)
        kwargs = {"do_sample": True, "temperature": p.temperature, "top_p": p.top_p} if p.temperature else {}
        with self.lock, torch.inference_mode():
            self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=p.max_tokens,
                eos_token_id=self.eos,
                pad_token_id=self.tokenizer.pad_token_id,
                do_sample=bool(p.temperature),
                streamer=Chunks(),
                **kwargs,
            )

    async def stream(self, request: GenerationRequest):
        loop, chunks = asyncio.get_running_loop(), asyncio.Queue()
        every = self.stream_tokens if request.incremental else 0

        def emit(new: list[int]) -> None:
            loop.call_soon_threadsafe(chunks.put_nowait, new)

        done = asyncio.ensure_future(asyncio.to_thread(self._generate, request, emit, every))
        done.add_done_callback(lambda _: loop.call_soon(chunks.put_nowait, None))
        tokens, unsent, sent = [], [], ""
        while (new := await chunks.get()) is not None:
            tokens, unsent = tokens + new, unsent + new
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            final = len(tokens) >= request.params.max_tokens or tokens[-1] in self.eos
            if final or not text.endswith("\ufffd"):  # whole characters only, as v1
                finish = ("stop" if tokens[-1] in self.eos else "length") if final else None
                yield GenerationEvent(text[len(sent) :], unsent, len(tokens), finish)
                unsent, sent = [], text
        await done  # raises what generate raised


class NoModelBackend(Backend):
    """The harness ceiling: tokens that cost nothing (no model), through the same app, SSE path and clients.

    It stands in for the embedded backend (its name, so ``--stream-interval`` applies): each request gets
    ``max_tokens`` tokens of one word, one per event loop turn, chunked as the embedded backend chunks them (the
    first at once, then one event per ``stream_interval`` tokens, and the last). What the batched server reaches
    against this figure is what the machine leaves it beside the clients."""

    name = "transformers"

    async def stream(self, request: GenerationRequest):
        total = request.params.max_tokens
        every, reported = (request.stream_interval if request.incremental else total), 0
        for count in range(1, total + 1):
            await asyncio.sleep(0)
            if (count == 1 and request.incremental) or count - reported >= every or count == total:
                new, reported = count - reported, count
                yield GenerationEvent(" word" * new, [0] * new, count, "length" if count == total else None)


class Server:
    def __init__(self, app) -> None:
        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        wait_healthy(self.url, 60, interval=0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)


def build_tiny_checkpoint(out: Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from openchat_hf.modeling import add_eot_token
    from openchat_hf.tiny import save_tiny_base

    base = save_tiny_base(out / "base", "llama")
    tokenizer, model = AutoTokenizer.from_pretrained(base), AutoModelForCausalLM.from_pretrained(base)
    add_eot_token(model, tokenizer, "openchat")
    model.config.openchat_model_type = "openchat"
    model.save_pretrained(out / MODEL)
    tokenizer.save_pretrained(out / MODEL)
    return out / MODEL


ASSIGNMENTS = ("pool", "per-client")


async def run_clients(
    url: str,
    clients: int,
    requests_per_client: int,
    seed: int,
    stream: bool = True,
    *,
    model: str = MODEL,
    max_tokens: int | None = None,
    prompts: list[str] | None = None,
    client: str = "openai",
    assignment: str = "pool",
) -> dict:
    """``clients`` concurrent ``openai`` clients sending ``clients x requests_per_client`` greedy requests, each
    client one at a time.

    By default each request is a random question with ``max_tokens`` drawn from 16-96 (``seed``); ``prompts``
    (user messages, taken in turn) and a fixed ``max_tokens`` replace them. ``assignment="pool"``: a client that is
    free takes the next request of one shared list (as ``vllm bench serve --max-concurrency`` does), so ``clients``
    requests are in flight until the list runs out; ``"per-client"``: each client sends its own
    ``requests_per_client`` (the clients with short requests finish early, and the batch then runs part-empty: with
    16-96 tokens, 3 each at 32 clients, the longest client's total is 1.5x the mean). ``client="raw"`` streams with
    plain ``httpx`` and ``json.loads`` per event instead of the ``openai`` SDK (about a third of its CPU per chunk,
    which matters when the clients share 2 cores with the server).
    """
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment must be one of {ASSIGNMENTS}, not {assignment!r}")
    rng = random.Random(seed)
    plans = [
        [
            (
                max_tokens or rng.randint(16, 96),
                prompts[(c * requests_per_client + i) % len(prompts)]
                if prompts
                else f"Question {c}-{i}: " + " ".join(rng.choices(WORDS, k=rng.randint(5, 40))),
            )
            for i in range(requests_per_client)
        ]
        for c in range(clients)
    ]
    latencies, first_tokens, tokens, chunks = [], [], 0, 0
    sdk = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)
    raw = httpx.AsyncClient(base_url=url, timeout=600, limits=httpx.Limits(max_connections=None))

    async def raw_stream(start: float, max_tokens: int, kwargs: dict) -> tuple[float | None, int]:
        nonlocal chunks
        body = {**kwargs, "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True}}
        first, used = None, 0
        async with raw.stream("POST", "/v1/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise RuntimeError(chunk["error"])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    chunks += 1
                    first = time.perf_counter() - start if first is None else first
                if chunk.get("usage"):
                    used = chunk["usage"]["completion_tokens"]
        return first, used

    async def one(plan):
        nonlocal tokens, chunks
        for max_tokens, question in plan:
            start = time.perf_counter()
            kwargs = {"model": model, "messages": [{"role": "user", "content": question}], "temperature": 0}
            if stream and client == "raw":
                first, used = await raw_stream(start, max_tokens, kwargs)
                tokens += used
                latencies.append(time.perf_counter() - start)
                first_tokens.append(first if first is not None else latencies[-1])
                continue
            if not stream:
                reply = await sdk.chat.completions.create(max_tokens=max_tokens, **kwargs)
                latencies.append(time.perf_counter() - start)
                first_tokens.append(latencies[-1])
                tokens += reply.usage.completion_tokens
                continue
            events = await sdk.chat.completions.create(
                max_tokens=max_tokens, stream=True, stream_options={"include_usage": True}, **kwargs
            )
            first = None
            async for chunk in events:
                if chunk.choices and chunk.choices[0].delta.content:
                    chunks += 1
                    first = time.perf_counter() - start if first is None else first
                if chunk.usage is not None:
                    tokens += chunk.usage.completion_tokens
            latencies.append(time.perf_counter() - start)
            first_tokens.append(first if first is not None else latencies[-1])

    if assignment == "pool":  # one list, in the order the clients would have started them
        shared = iter([plan[i] for i in range(requests_per_client) for plan in plans])
        plans = [shared] * clients  # each client's loop takes the next request left
    start = time.perf_counter()
    async with sdk, raw:
        await asyncio.gather(*[one(plan) for plan in plans])
    wall = time.perf_counter() - start
    latencies.sort()
    first_tokens.sort()
    return {
        "ttft_p50_s": statistics.median(first_tokens),
        "ttft_p95_s": first_tokens[min(len(first_tokens) - 1, int(0.95 * len(first_tokens)))],
        "clients": clients,
        "requests": len(latencies),
        "tokens": tokens,
        "content_chunks": chunks,
        "tokens_per_s": tokens / wall,
        "p50_s": statistics.median(latencies),
        "p95_s": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
    }


# Real-model prompts: stories, so that most answers use the whole 128-token budget.
REAL_PROMPTS = [
    f"Write a long story about a {who} who {what}."
    for who in ("cat", "dog", "llama", "fox", "owl", "bear", "wolf", "frog")
    for what in ("learns to swim", "finds a treasure map", "builds a house", "travels to the moon")
]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A Markdown table of already formatted cells (every column right-aligned)."""
    print("| " + " | ".join(header) + " |")
    print("|" + " ---: |" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def threads() -> int:
    import torch

    return torch.get_num_threads()


def patched_real_model(name_or_dir: str, out: Path) -> Path:
    """A real checkpoint with the OpenChat template and EOT: an asset name is fetched; a folder not patched for
    ``openchat`` yet is patched into ``out`` (``openchat-hf patch``, as the demo does)."""
    from openchat_hf.folder_info import read_folder_info

    folder = Path(name_or_dir)
    if not folder.is_dir():
        from openchat_hf.assets import fetch_asset

        folder = fetch_asset(name_or_dir, progress=False)
    if read_folder_info(folder).get("model_type") == "openchat":
        return folder
    cmd = ["openchat-hf", "patch", str(folder), str(out / "patched"), "--model-type", "openchat", "--eot-init", "copy"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out / "patched"


def batched_generate(model, tokenizer, prompts: list[list[int]], batch: int, max_new_tokens: int, eos) -> dict:
    """The no-server baseline: ``model.generate`` on ``batch`` left-padded prompts at a time, greedy; the tokens of
    each answer are counted up to and including its first EOS (as the server's usage does)."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def run() -> int:
        total = 0
        with torch.inference_mode():
            for start in range(0, len(prompts), batch):
                chunk = prompts[start : start + batch]
                width = max(map(len, chunk))
                ids = torch.tensor([[pad] * (width - len(x)) + x for x in chunk])
                mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in chunk])
                out = model.generate(
                    ids,
                    attention_mask=mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=eos,
                    pad_token_id=pad,
                )
                for row in out[:, width:].tolist():
                    ends = [i for i, t in enumerate(row) if t in eos]
                    total += ends[0] + 1 if ends else len(row)
        return total

    with concurrent.futures.ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(threads(),)) as pool:
        started = time.perf_counter()
        tokens = pool.submit(run).result()
        wall = time.perf_counter() - started
    return {"tokens": tokens, "tokens_per_s": tokens / wall, "wall_s": wall}


def real_model_table(args) -> dict:
    """Streaming clients against the embedded server on a real checkpoint (greedy, ``--max-tokens``), and plain
    batched ``generate`` (no server) on the same prompts at the same batch size, in the same run."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from openchat_hf.templates import ChatTemplate

    tmp = tempfile.TemporaryDirectory()
    path = patched_real_model(args.real, Path(tmp.name))
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos)
    template = ChatTemplate("openchat", tokenizer)
    levels = [int(c) for c in args.clients.split(",") if c.strip().isdigit()]
    results: dict = {"model": args.real, "torch_threads": threads(), "max_tokens": args.max_tokens}
    results.update(client=args.client, assignment=args.assignment, levels=[])
    backend = TransformersBackend(model, tokenizer, eos_token_ids=eos, max_batch_size=args.max_batch_size)
    config = ServerConfig(model_name=MODEL, max_batch_size=args.max_batch_size)
    with Server(create_app(backend, config)) as server:
        load(server.url, 1, 1, seed=0, max_tokens=8, prompts=REAL_PROMPTS)  # warm-up
        for clients in levels:
            per_client = max(1, args.real_requests // clients)
            options = {"max_tokens": args.max_tokens, "prompts": REAL_PROMPTS, "client": args.client}
            options["assignment"] = args.assignment
            ours = load(server.url, clients, per_client, seed=clients, **options)
            questions = [REAL_PROMPTS[i % len(REAL_PROMPTS)] for i in range(clients * per_client)]
            ids = [
                template.tokenize([{"role": "user", "content": q}], add_generation_prompt=True).input_ids
                for q in questions
            ]
            base = batched_generate(model, tokenizer, ids, clients, args.max_tokens, eos)
            row = {"clients": clients, "server": ours, "generate": base}
            row["ratio"] = ours["tokens_per_s"] / base["tokens_per_s"]
            results["levels"].append(row)
            print(
                f"clients={clients:3d}  server {ours['tokens_per_s']:.1f} tok/s ({ours['tokens']} tokens)  "
                f"batched generate {base['tokens_per_s']:.1f} tok/s ({base['tokens']} tokens)  x{row['ratio']:.2f}",
                flush=True,
            )
    tmp.cleanup()
    print(
        f"\n{args.real}, fp32, greedy, {args.max_tokens} new tokens, streaming ({args.client} clients), "
        f"{threads()} torch thread(s)"
    )
    print_table(
        ["clients", "server tok/s", "TTFT p50 / p95 s", "batched `generate` tok/s (no server)", "ratio"],
        [
            [
                f"{row['clients']}",
                f"{row['server']['tokens_per_s']:.1f}",
                f"{row['server']['ttft_p50_s']:.2f} / {row['server']['ttft_p95_s']:.2f}",
                f"{row['generate']['tokens_per_s']:.1f}",
                f"{row['ratio']:.2f}x",
            ]
            for row in results["levels"]
        ],
    )
    return results


WORDS = "the llama sleeps standing up in cold weather because its wool keeps it warm and dry at night".split()


def proxy_overhead(direct_url: str, proxy_url: str, n: int = 60) -> dict:
    """p50 latency of 1-token answers, direct vs through the proxy, measured from a separate client process."""
    cmd = [sys.executable, __file__, "--latency-of", direct_url, proxy_url, str(n)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


async def measure_proxy_overhead(direct_url: str, proxy_url: str, n: int = 60) -> dict:
    async def latencies(url):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        out = []
        async with client:
            for i in range(n):
                start = time.perf_counter()
                await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"hi {i}"}], max_tokens=1, temperature=0
                )
                out.append(time.perf_counter() - start)
        return statistics.median(out[5:])

    await latencies(proxy_url)  # warm up both paths
    direct, proxied = [], []
    for _ in range(3):  # interleave: the machine's load drifts
        direct.append(await latencies(direct_url))
        proxied.append(await latencies(proxy_url))
    direct, proxied = statistics.median(direct), statistics.median(proxied)
    return {"direct_p50_ms": direct * 1e3, "proxy_p50_ms": proxied * 1e3, "overhead_ms": (proxied - direct) * 1e3}


def offline_engines(model, tokenizer, eos: list[int], n: int = 32, max_new_tokens: int = 64) -> dict:
    """Generation engines without HTTP on the same prompts: ``generate`` one at a time, transformers'
    ``generate_batch`` (continuous batching, paged attention) and our scheduler (all greedy)."""
    import torch
    from transformers import GenerationConfig

    from openchat_hf.serving.backends.base import SamplingParams
    from openchat_hf.templates import ChatTemplate

    template = ChatTemplate("openchat", tokenizer)
    rng = random.Random(0)
    conversations = [
        [{"role": "user", "content": " ".join(rng.choices(WORDS, k=rng.randint(5, 40)))}] for _ in range(n)
    ]
    prompts = [template.tokenize(c, add_generation_prompt=True).input_ids for c in conversations]
    out = {}

    def one_at_a_time():
        with torch.inference_mode():
            for ids in prompts[:8]:
                x = torch.tensor([ids], device=model.device)
                model.generate(
                    x,
                    attention_mask=torch.ones_like(x),
                    max_new_tokens=max_new_tokens,
                    min_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )

    def batch():
        config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=-1, pad_token_id=tokenizer.pad_token_id
        )
        results = model.generate_batch(prompts, generation_config=config)
        return sum(len(r.generated_tokens) for r in results.values())

    # Every engine runs off the main thread, as in the servers: on this CPU, torch ops issued from the main thread
    # with 2 intra-op threads ran 30x slower than from a worker thread (OpenMP spinning on an oversubscribed VM).
    with concurrent.futures.ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(threads(),)) as pool:
        start = time.perf_counter()
        pool.submit(one_at_a_time).result()
        out["generate_one_at_a_time"] = 8 * max_new_tokens / (time.perf_counter() - start)
        start = time.perf_counter()
        try:
            tokens = pool.submit(batch).result()
            out["transformers_generate_batch"] = tokens / (time.perf_counter() - start)
        except Exception as err:  # report, don't abort the benchmark
            out["transformers_generate_batch"] = f"failed: {type(err).__name__}: {err}"
    backend = TransformersBackend(model, tokenizer, eos_token_ids=[], max_batch_size=n)

    async def ours():
        async def one(ids):
            count = 0
            async for event in backend.stream(
                GenerationRequest(ids, "", SamplingParams(max_new_tokens, temperature=0))
            ):
                count = event.completion_tokens
            return count

        started = time.perf_counter()
        total = sum(await asyncio.gather(*[one(ids) for ids in prompts]))
        elapsed = time.perf_counter() - started
        await backend.close()
        return total / elapsed

    out["openchat_hf_scheduler"] = asyncio.run(ours())
    return out


def load(url: str, clients: int, requests_per_client: int, seed: int, stream: bool = True, **options) -> dict:
    """Run the clients in a separate process, so their CPU time does not compete with the server's GIL.

    ``options`` are :func:`run_clients`' keyword arguments (``model``, ``max_tokens``, ``prompts``, ``client``).
    Adds ``client_cpu_s``: the CPU time of the client process."""
    import resource

    cmd = [sys.executable, __file__, "--client-of", url, str(clients), str(requests_per_client), str(seed)]
    cmd += [] if stream else ["--plain"]
    cmd += ["--client-options", json.dumps(options)] if options else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "client_cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client-of", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--client-options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--latency-of", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--build-checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--model", help="checkpoint folder (default: a tiny random-init model built here)")
    parser.add_argument("--gpu", action="store_true", help="run on CUDA in bf16")
    parser.add_argument("--clients", default="1,8,32,64")
    parser.add_argument("--clients-real", default="1,8,32", help="client levels of the real-model mode")
    parser.add_argument("--plain", action="store_true", help="non-streaming clients (default: streaming)")
    parser.add_argument(
        "--client",
        choices=("openai", "raw"),
        default="openai",
        help="streaming client: the openai SDK, or plain httpx + json (less client CPU on the same cores)",
    )
    parser.add_argument("--max-batch-size", type=int, default=32, help="the batched server's cap")
    parser.add_argument(
        "--stream-intervals",
        default="1",
        help="comma-separated --stream-interval values of the batched server, each measured in the same run",
    )
    parser.add_argument("--threads", type=int, help="torch intra-op threads for both servers (default: torch's)")
    parser.add_argument(
        "--baseline-stream-tokens",
        type=int,
        default=6,
        help="the one-at-a-time server streams every N tokens (OpenChat v1's default, 6); 0: one chunk per answer",
    )
    parser.add_argument(
        "--skip-ceiling",
        action="store_true",
        help="skip the no-model server (the same app and clients, tokens that cost nothing: the harness ceiling)",
    )
    parser.add_argument(
        "--engine-process",
        action="store_true",
        help="also measure the batched server with its model in a child process (serve --engine-process)",
    )
    parser.add_argument("--skip-proxy", action="store_true", help="skip the proxy-overhead measurement")
    parser.add_argument("--skip-offline", action="store_true", help="skip the engines without HTTP")
    parser.add_argument("--requests-per-client", type=int, default=3)
    parser.add_argument(
        "--assignment",
        choices=ASSIGNMENTS,
        default="pool",
        help="pool: a free client takes the next request of one shared list (clients x requests-per-client); "
        "per-client: each client sends its own requests (the batch runs part-empty once short ones are done)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per server and level (median reported)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--real",
        metavar="NAME_OR_DIR",
        help="real-model mode: an asset name (smollm2-135m-instruct) or a checkpoint folder; streaming clients vs "
        "batched generate, greedy, --max-tokens new tokens, then the tiny-model table unless --real-only",
    )
    parser.add_argument("--real-only", action="store_true", help="with --real: skip the tiny-model table")
    parser.add_argument("--max-tokens", type=int, default=128, help="new tokens per request in real-model mode")
    parser.add_argument(
        "--real-requests", type=int, default=2, help="real-model mode: requests per level (at least one per client)"
    )
    args = parser.parse_args(argv)
    if args.latency_of:
        direct_url, proxy_url, n = args.latency_of
        print(json.dumps(asyncio.run(measure_proxy_overhead(direct_url, proxy_url, int(n)))))
        return 0
    if args.build_checkpoint:
        print(build_tiny_checkpoint(Path(args.build_checkpoint)))
        return 0
    if args.client_of:
        url, clients, per_client, seed = args.client_of
        options = json.loads(args.client_options)
        result = asyncio.run(
            run_clients(url, int(clients), int(per_client), int(seed), stream=not args.plain, **options)
        )
        print(json.dumps(result))
        return 0

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    real = None
    if args.real:
        real = real_model_table(argparse.Namespace(**{**vars(args), "clients": args.clients_real}))
        if args.real_only:
            if args.json:
                Path(args.json).write_text(json.dumps({"real": real}, indent=2))
            return 0
        print()
    if args.gpu and not torch.cuda.is_available():
        print("--gpu: no CUDA device here; nothing measured.", file=sys.stderr)
        return 2
    tmp = tempfile.TemporaryDirectory()
    if args.model:
        path = Path(args.model)
    else:
        # Built in a child process: this process then only loads a checkpoint, as a real server does. Building and
        # resizing the model here first made the batched server ~1.7x slower in this process (not the baseline).
        cmd = [sys.executable, __file__, "--build-checkpoint", tmp.name]
        path = Path(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    device, dtype = ("cuda", torch.bfloat16) if args.gpu else ("cpu", torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos)
    config = ServerConfig(model_name=MODEL, max_batch_size=args.max_batch_size)
    stream = not args.plain
    levels = [int(c) for c in args.clients.split(",") if c.strip().isdigit()]
    results: dict = {
        "device": torch.cuda.get_device_name() if args.gpu else "cpu",
        "stream": stream,
        "max_batch_size": args.max_batch_size,
        "torch_threads": torch.get_num_threads(),
        "client": args.client,
        "assignment": args.assignment,
        "levels": [],
    }

    batched = TransformersBackend(model, tokenizer, eos_token_ids=eos, max_batch_size=args.max_batch_size)
    intervals = [int(v) for v in args.stream_intervals.split(",")]
    results["stream_intervals"] = intervals
    results["baseline_stream_tokens"] = args.baseline_stream_tokens
    backends = {"sequential": (SequentialBackend(model, tokenizer, eos, args.baseline_stream_tokens), config)}
    engine = None
    for interval in intervals:
        suffix = "" if interval == intervals[0] else f"_interval{interval}"
        backends["batched" + suffix] = (batched, dataclasses.replace(config, stream_interval=interval))
        if args.engine_process:
            engine = engine or EngineProcessBackend(
                path, max_batch_size=args.max_batch_size, threads=torch.get_num_threads(), cpu_kernels="torch"
            )
            backends["engine" + suffix] = (engine, dataclasses.replace(config, stream_interval=interval))
        if not args.skip_ceiling:
            no_model = NoModelBackend(tokenizer, model.config)
            backends["no_model" + suffix] = (no_model, dataclasses.replace(config, stream_interval=interval))
    for clients in levels:
        per_client = max(args.requests_per_client, 8 // clients)
        runs: dict[str, list[dict]] = {name: [] for name in backends}
        for _ in range(args.repeats):  # alternate the servers: the machine's load drifts between runs
            for name, (backend, server_config) in backends.items():
                with Server(create_app(backend, dataclasses.replace(server_config))) as server:
                    load(server.url, min(clients, 2), 1, seed=0, stream=stream)  # warm-up
                    runs[name].append(
                        load(
                            server.url,
                            clients,
                            per_client,
                            seed=clients,
                            stream=stream,
                            client=args.client,
                            assignment=args.assignment,
                        )
                    )
        row = {name: sorted(r, key=lambda x: x["tokens_per_s"])[len(r) // 2] for name, r in runs.items()}
        row["all_tokens_per_s"] = {name: [round(x["tokens_per_s"], 1) for x in r] for name, r in runs.items()}
        row["speedup"] = row["batched"]["tokens_per_s"] / row["sequential"]["tokens_per_s"]
        for name in backends:
            if name != "sequential":
                row[f"speedup_{name}"] = row[name]["tokens_per_s"] / row["sequential"]["tokens_per_s"]
        results["levels"].append(row)
        measured = "  ".join(f"{name} {values} tok/s" for name, values in row["all_tokens_per_s"].items())
        print(f"clients={clients:3d}  {measured}  median ratio x{row['speedup']:.2f}", flush=True)

    if not args.skip_proxy:
        results["proxy_openai"] = measure_proxy(path, tokenizer, model, device, args.gpu)
    if not args.skip_offline:
        results["offline"] = offline_engines(model, tokenizer, eos)
        print("\nwithout HTTP, 32 prompts x 64 tokens, greedy:", json.dumps(results["offline"]))

    print()
    kind = "streaming" if stream else "non-streaming"
    print(f"{kind} clients ({args.client}), batch cap {args.max_batch_size}, {threads()} torch thread(s)")
    chunking = f"every {args.baseline_stream_tokens} tokens" if args.baseline_stream_tokens else "one per answer"
    if stream:
        print(f"one-at-a-time chunks: {chunking}; batched: --stream-interval {intervals[0]}")
    header = ["clients", "one-at-a-time tok/s", "p50 / p95 s", "batched tok/s", "p50 / p95 s", "TTFT p50 / p95 s"]
    ceiling = [] if args.skip_ceiling else ["no-model ceiling tok/s, ratio"]
    engine_column = ["--engine-process tok/s, ratio"] if args.engine_process else []
    print_table(
        [*header, "ratio", *engine_column, *ceiling],
        [
            [
                f"{s['clients']}",
                f"{s['tokens_per_s']:.1f}",
                f"{s['p50_s']:.2f} / {s['p95_s']:.2f}",
                f"{b['tokens_per_s']:.1f}",
                f"{b['p50_s']:.2f} / {b['p95_s']:.2f}",
                f"{b['ttft_p50_s']:.2f} / {b['ttft_p95_s']:.2f}",
                f"{row['speedup']:.2f}x",
                *(
                    [f"{row['engine']['tokens_per_s']:.1f}, {row['speedup_engine']:.2f}x"]
                    if args.engine_process
                    else []
                ),
                *(
                    []
                    if args.skip_ceiling
                    else [f"{row['no_model']['tokens_per_s']:.1f}, {row['speedup_no_model']:.2f}x"]
                ),
            ]
            for row in results["levels"]
            for s, b in [(row["sequential"], row["batched"])]
        ],
    )
    if len(intervals) > 1:
        first, others = intervals[0], intervals[1:]
        note = ("; engine ratio" if args.engine_process else "") + ("" if args.skip_ceiling else "; no-model ratio")
        print(f"\nthe batched server at other --stream-interval values (the table above: {first})")
        print_table(
            ["clients", *(f"interval {v}: tok/s, content chunks, ratio{note}" for v in others)],
            [
                [
                    f"{row['sequential']['clients']}",
                    *(
                        f"{row[n]['tokens_per_s']:.1f}, {row[n]['content_chunks']}, {row['speedup_' + n]:.2f}x"
                        + (f"; engine {row['speedup_engine_interval' + str(v)]:.2f}x" if args.engine_process else "")
                        + ("" if args.skip_ceiling else f"; {row['speedup_no_model_interval' + str(v)]:.2f}x")
                        for v, n in ((v, f"batched_interval{v}") for v in others)
                    ),
                ]
                for row in results["levels"]
            ],
        )
    if "proxy_openai" in results:
        p = results["proxy_openai"]
        print(
            f"\nopenai proxy: direct p50 {p['direct_p50_ms']:.1f} ms, through the proxy {p['proxy_p50_ms']:.1f} ms, "
            f"overhead {p['overhead_ms']:.1f} ms"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({**results, "real": real} if real else results, indent=2))
    tmp.cleanup()
    return 0


def measure_proxy(path, tokenizer, model, device: str, gpu: bool) -> dict:
    """Proxy overhead: the upstream runs in its own process (as vLLM / TGI would), the proxy here."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    device_args = ["--device", device, "--dtype", "bfloat16" if gpu else "float32"]
    upstream = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openchat_hf.serving",
            str(path),
            "--port",
            str(port),
            "--model-name",
            MODEL,
            *device_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        upstream_url = f"http://127.0.0.1:{port}"
        wait_healthy(upstream_url, 120, process=upstream)
        proxy = OpenAIBackend(upstream_url + "/v1", tokenizer, model.config)
        with Server(create_app(proxy, ServerConfig(model_name=MODEL, model_type="openchat"))) as front:
            return proxy_overhead(upstream_url, front.url)
    finally:
        upstream.terminate()
        upstream.wait(30)


if __name__ == "__main__":
    sys.exit(main())
