"""The embedded backend in its own process (``serve --engine-process``), as vLLM runs its engine core.

In one process the generation thread and the event loop (HTTP, SSE) share one GIL, so on a machine with cores to
spare the server's two halves still take turns. Here a child process (``spawn``) loads the checkpoint into a
:class:`~openchat_hf.serving.backends.transformers.TransformersBackend` and runs its scheduler unchanged; this
process keeps the tokenizer and the HTTP side. Requests and cancellations go down a pipe; each decoding step's
events come back in one message (with the scheduler's counters and batch sizes, for ``/metrics``). Answers are the
ones of the in-process backend: the same scheduler computes them.

The child ignores Ctrl-C and SIGTERM (the server drains, then stops it) and ends when told or when the pipe closes. If it dies,
running requests end with a 500 and later ones get a 503.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from openchat_hf.serving.backends.base import Backend, GenerationEvent, GenerationRequest
from openchat_hf.serving.errors import ServingError

logger = logging.getLogger(__name__)

_DONE = None  # what the child sends when a sequence has ended


class EngineProcessBackend(Backend):
    """:class:`TransformersBackend` run in a child process; the same parameters as its ``from_pretrained``."""

    name = "transformers"  # the embedded backend (same scheduler, same answers), in another process

    def __init__(
        self,
        path: str | Path,
        *,
        device: str | None = None,
        dtype: str | None = None,
        max_batch_size: int = 32,
        threads: int | None = None,
        cpu_kernels: str = "compiled",
    ) -> None:
        from transformers import AutoConfig

        from openchat_hf.serving.backends.transformers import check_settings
        from openchat_hf.tokenizer_loading import load_tokenizer

        path = Path(path)
        check_settings(cpu_kernels, max_batch_size, path)
        super().__init__(load_tokenizer(path), AutoConfig.from_pretrained(path))
        self.max_batch_size = max_batch_size
        self.on_step: Any = None  # called with the batch size of every decoding step (the /metrics histogram)
        self._options = {
            "device": device,
            "dtype": dtype,
            "max_batch_size": max_batch_size,
            "threads": threads,
            "cpu_kernels": cpu_kernels,
        }
        self._path = str(path)
        self._streams: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = {}
        self._ids = itertools.count()
        self._send_lock = threading.Lock()
        self._stats: dict[str, Any] = {}
        self._process: Any = None
        self._conn: Any = None
        self._spawn()  # the weights load now, as in TransformersBackend.from_pretrained
        from openchat_hf.serving import structured

        self.structured = structured.structured_output(self.tokenizer, self._info["vocab"], self.eos_token_ids)
        self.response_formats = structured.RESPONSE_FORMATS if self.structured else ("text",)

    # ------------------------------------------------------------------------------------------- the child
    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_engine_main, args=(child, self._path, self._options), name="openchat-hf-engine", daemon=True
        )
        self._process.start()
        child.close()
        try:
            message = self._conn.recv()
        except EOFError:
            message = ("failed", "The engine process exited while loading the model (see its log above).")
        if message[0] != "ready":
            self._process.join(5)
            raise ServingError(message[1], status=500, type="server_error", code="engine_failed")
        self._info = message[1]
        self.eos_token_ids = set(self._info["eos_token_ids"])
        self.compiled_layers, self.prepacked_layers = self._info["compiled_layers"], self._info["prepacked_layers"]
        self._stats = {"running": 0, "waiting": 0}
        threading.Thread(target=self._read, args=(self._conn,), name="openchat-hf-engine-reader", daemon=True).start()

    def _read(self, conn) -> None:
        """Hand the child's messages to the event loops of their streams (one wake-up per loop per message)."""
        while True:
            try:
                events, stats, steps = conn.recv()
            except (EOFError, OSError):
                break
            self._stats = stats
            if self.on_step is not None:
                for size in steps:
                    self.on_step(size)
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue, Any]]] = {}
            for rid, item in events:
                entry = self._streams.get(rid)
                if entry is not None:
                    by_loop.setdefault(entry[0], []).append((entry[1], item))
            _hand_over(by_loop)
        if self._conn is conn:  # the child died (not closed by us): running streams end with a 500
            logger.error("The engine process stopped (exit code %s)", self._process.exitcode)
            lost = ServingError("The engine process stopped.", status=500, type="server_error", code="engine_failed")
            by_loop = {}
            for loop, out in list(self._streams.values()):
                by_loop.setdefault(loop, []).extend([(out, lost), (out, _DONE)])
            _hand_over(by_loop)

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            self._conn.send(message)

    # ------------------------------------------------------------------------------------------- async side
    async def start(self) -> None:
        if self._process is None:
            await asyncio.to_thread(self._spawn)

    async def close(self) -> None:
        if self._process is not None:
            process, conn = self._process, self._conn
            self._process = self._conn = None  # the reader now takes the pipe's end as expected
            try:
                with self._send_lock:
                    conn.send(("stop",))
            except OSError:  # the child is gone already
                pass
            await asyncio.to_thread(process.join, 30)
            if process.is_alive():
                process.kill()
            conn.close()

    def stats(self) -> dict[str, Any]:
        stats = dict(self._stats)  # the child's counters as of its last message
        if not self._streams:  # its last message came before the worker counted the batch out
            stats["running"] = stats["waiting"] = 0
        return stats

    def prepare(self, params) -> None:
        super().prepare(params)
        if params.json_schema is not None:
            self.structured.grammar(params.json_schema)  # a 400 now, before any response is sent

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        from openchat_hf.serving.backends.transformers import read_events

        if self._process is None or not self._process.is_alive():
            raise _not_running()
        rid, out = next(self._ids), asyncio.Queue()
        self._streams[rid] = (asyncio.get_running_loop(), out)
        ended = False
        try:
            try:
                self._send(("generate", rid, request))
            except (OSError, AttributeError) as err:  # the pipe broke, or close() ran meanwhile
                raise _not_running() from err
            async for event in read_events(out, _DONE):
                yield event
            ended = True
        finally:
            self._streams.pop(rid, None)
            if not ended and self._conn is not None:  # closed early (client gone, stop string): cancel it
                try:
                    self._send(("cancel", rid))
                except OSError:
                    pass


def _not_running() -> ServingError:
    return ServingError(
        "The model is not running (the engine process stopped).", status=503, type="server_error", code="engine_failed"
    )


def _hand_over(by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue, Any]]]) -> None:
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_put_all, items)
        except RuntimeError:  # that event loop is closed: nobody is listening any more
            pass


def _put_all(items: list[tuple[asyncio.Queue, Any]]) -> None:
    for out, item in items:
        out.put_nowait(item)


def _engine_main(conn, path: str, options: dict) -> None:
    """The child: a TransformersBackend's worker thread, fed from the pipe, its events sent back per step."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server drains on these, then closes the pipe
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from tqdm import tqdm

    # tqdm's default lock holds a multiprocessing semaphore the child would leave behind (a "leaked semaphore"
    # warning at every stop); the child's progress bars are written from one process only.
    tqdm.set_lock(threading.RLock())
    try:
        from openchat_hf.serving.backends import transformers as embedded

        backend = embedded.TransformersBackend.from_pretrained(path, **options)
    except Exception as err:  # reported to the parent, which raises it
        conn.send(("failed", f"The engine process could not load {path}: {err}"))
        return
    steps: list[int] = []
    backend.on_step = steps.append
    sequences: dict[int, Any] = {}

    class Outbox:
        """Stands in for the event loop the worker delivers to: a step's items go down the pipe in one message."""

        def call_soon_threadsafe(self, _callback, items) -> None:
            events = []
            for seq, item in items:
                if item is embedded._DONE:
                    sequences.pop(seq.rid, None)
                    item = _DONE
                events.append((seq.rid, item))
            sizes, steps[:] = steps[:], []
            try:
                conn.send((events, backend.stats(), sizes))
            except (BrokenPipeError, OSError):  # the parent is gone
                for seq in list(sequences.values()):
                    seq.cancelled = True

    outbox = Outbox()
    worker = threading.Thread(target=backend._worker, name="openchat-hf-generate", daemon=True)
    backend._thread = worker
    worker.start()
    backend._ready.wait()
    vocab = backend.structured.vocab_size if backend.structured is not None else 0
    conn.send(
        (
            "ready",
            {
                "eos_token_ids": sorted(backend.eos_token_ids),
                "vocab": vocab,
                "compiled_layers": backend.compiled_layers,
                "prepacked_layers": backend.prepacked_layers,
            },
        )
    )
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message[0] == "generate":
            _, rid, request = message
            seq = embedded._Sequence(request, outbox, None)
            seq.rid = rid
            sequences[rid] = seq
            backend._stats["requests"] += 1
            backend._inbox.put(seq)
        elif message[0] == "cancel":
            seq = sequences.pop(message[1], None)
            if seq is not None:
                seq.cancelled = True
        else:  # "stop"
            break
    backend._stopping.set()
    backend._inbox.put(None)
    worker.join(30)
