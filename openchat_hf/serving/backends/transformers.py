"""The embedded backend: a local checkpoint generating on a worker thread with continuous batching and a KV cache.

transformers' own ``generate_batch`` / ``ContinuousBatchingManager`` was measured first (docs/serving.md): on
this CPU it gave no speed-up over one-at-a-time ``generate`` for the tiny model, and it has no per-request seed, so
this module has a small scheduler of its own: one worker thread owns the model; every step it prefills newly
arrived requests together (left-padded), copies their KV cache into free rows of the running batch's cache (one
growable buffer per layer, written in place: see :func:`_buffer_layer_class`), decodes one token for every running
sequence with per-row sampling (own ``torch.Generator`` per request, so a seed gives the same output), and drops
finished or cancelled rows. At most ``max_batch_size`` sequences run together; the others wait in arrival order.
The event loop only exchanges messages with the worker, so it is never blocked: each step hands the new text of all
sequences over in one wake-up per event loop, and a request that needs only its final text
(``GenerationRequest.incremental=False``) is decoded once and sent one event when it finishes.

A request can only ever fail itself: a row whose sampling breaks (non-finite probabilities, a grammar with no next
token) is failed and dropped alone; a failed prefill fails only the sequences it was admitting.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import random
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openchat_hf.serving.backends.base import Backend, GenerationEvent, GenerationRequest
from openchat_hf.serving.errors import ServingError

logger = logging.getLogger(__name__)

_DONE = object()
# fp32 CPU linear layers: "compiled" = cpu_linear's few-row kernel and prepacked oneDNN weights for more rows (when
# memory allows the copy), "few-row" = the kernel only (no copy), "torch" = torch's own (MKL).
CPU_KERNELS = ("compiled", "few-row", "torch")


@dataclass
class _Sequence:
    """A request's state on the worker thread."""

    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue
    generator: Any = None
    generated: list[int] = field(default_factory=list)
    prefix_offset: int = 0  # incremental detokenization: the text of generated[prefix_offset:read_offset] is sent
    read_offset: int = 0
    reported: int = 0  # tokens already sent in events
    constraint: Any = None  # a structured.JsonConstraint for response_format
    cancelled: bool = False
    finished: bool = False

    def send(self, item: Any) -> None:
        _deliver({self.loop: [(self, item)]})


def _put_all(items: list[tuple[_Sequence, Any]]) -> None:
    for seq, item in items:
        seq.out.put_nowait(item)


def _deliver(outbox: dict[asyncio.AbstractEventLoop, list[tuple[_Sequence, Any]]]) -> None:
    """Hand items to their event loops: one wake-up per loop per step, however many sequences it serves."""
    for loop, items in outbox.items():
        try:
            loop.call_soon_threadsafe(_put_all, items)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            for seq, _ in items:
                seq.cancelled = True


class TransformersBackend(Backend):
    """Serve a ``transformers`` causal LM in-process (CPU or GPU), batching concurrent requests."""

    name = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        eos_token_ids: list[int] | None = None,
        max_batch_size: int = 32,
        threads: int | None = None,
        cpu_kernels: str = "torch",
    ) -> None:
        super().__init__(tokenizer, model.config)
        import torch

        # OpenMP thread settings are per thread: the worker applies the creating thread's count (or ``threads``)
        # itself, else its matrix products ran on torch's default of every core, spinning against other work.
        self.threads = threads or torch.get_num_threads()
        # cpu_linear's kernels for fp32 CPU layers (CPU_KERNELS), set up by the worker when it starts.
        check_settings(cpu_kernels, max_batch_size)
        self.cpu_kernels = cpu_kernels
        self.compiled_layers = self.prepacked_layers = 0

        self.model = model.eval()
        self.device = next(model.parameters()).device
        if eos_token_ids is None:
            eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
            eos = model.config.eos_token_id if eos is None else eos
            eos_token_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        self.eos_token_ids = set(eos_token_ids)
        self.max_batch_size = max_batch_size
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        from openchat_hf.modeling.context import context_length

        self.max_context = context_length(model.config) or 2048
        from openchat_hf.serving import structured

        vocab = int(model.get_output_embeddings().weight.shape[0]) if model.get_output_embeddings() is not None else 0
        self.structured = structured.structured_output(tokenizer, vocab, self.eos_token_ids)
        self.response_formats = structured.RESPONSE_FORMATS if self.structured else ("text",)
        self.on_step: Any = None  # called with the batch size of every decoding step (the /metrics histogram)
        # Prefill computes logits for the last position only where the model supports it.
        self._prefill_kwargs = (
            {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
        )
        self._decode_mask_4d = _padding_mask_is_enough(model.config)
        self._torch = torch
        self._inbox: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._stats = {
            "requests": 0,
            "finished": 0,
            "cancelled": 0,
            "generated_tokens": 0,
            "steps": 0,
            "max_batch": 0,
            "events": 0,
            "failed": 0,
            "running": 0,
        }

    # ------------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str | None = None,
        dtype: str | None = None,
        max_batch_size: int = 32,
        threads: int | None = None,
        cpu_kernels: str = "compiled",
    ) -> TransformersBackend:
        """Load a local checkpoint: bf16 on GPU, fp32 on CPU, unless ``dtype`` says otherwise (``cpu_kernels``: the
        kernels for fp32 CPU layers, one of ``CPU_KERNELS``, see :mod:`~openchat_hf.serving.backends.cpu_linear`)."""
        import torch
        from transformers import AutoModelForCausalLM

        from openchat_hf.tokenizer_loading import load_tokenizer

        path = Path(path)
        check_settings(cpu_kernels, max_batch_size, path)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = (
            getattr(torch, dtype) if dtype else (torch.bfloat16 if device.startswith("cuda") else torch.float32)
        )
        tokenizer = load_tokenizer(path)  # checked before the weights load
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(device)
        logger.info("Loaded %s on %s (%s)", path, device, torch_dtype)
        return cls(model, tokenizer, max_batch_size=max_batch_size, threads=threads, cpu_kernels=cpu_kernels)

    # ------------------------------------------------------------------------------------------- async side
    async def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._ready.clear()
            self._thread = threading.Thread(target=self._worker, name="openchat-hf-generate", daemon=True)
            self._thread.start()
            await asyncio.to_thread(self._ready.wait)  # the kernels are compiled before the first request

    async def close(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._inbox.put(None)
            await asyncio.to_thread(self._thread.join, 30)
            self._thread = None

    def stats(self) -> dict[str, Any]:
        return {**self._stats, "waiting": self._inbox.qsize()}

    def prepare(self, params) -> None:
        super().prepare(params)
        if params.json_schema is not None:
            self.structured.grammar(params.json_schema)  # a 400 now, before any response is sent

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        if self._thread is None:
            await self.start()
        seq = _Sequence(request, asyncio.get_running_loop(), asyncio.Queue())
        self._stats["requests"] += 1
        self._inbox.put(seq)
        try:
            async for event in read_events(seq.out, _DONE):
                yield event
        finally:
            # Closing the iterator early (client gone, stop string found) cancels the generation.
            seq.cancelled = True

    # ----------------------------------------------------------------------------------------- worker side
    def _worker(self) -> None:
        torch = self._torch
        torch.set_num_threads(self.threads)
        try:
            if self.cpu_kernels != "torch" and self.device.type == "cpu":
                from openchat_hf.serving.backends.cpu_linear import fast_cpu_linears

                kernels = fast_cpu_linears(self.model, prepack=None if self.cpu_kernels == "compiled" else False)
                self.compiled_layers, self.prepacked_layers = kernels.compiled, kernels.prepacked
                logger.info(
                    "CPU kernels: %d linear layers compiled for few rows, %d prepacked for more",
                    kernels.compiled,
                    kernels.prepacked,
                )
        finally:
            self._ready.set()
        batch: _Batch | None = None
        with torch.inference_mode():
            while not self._stopping.is_set():
                running = 0 if batch is None else len(batch.seqs)
                new = self._take(self.max_batch_size - running, block=running == 0)
                if new:
                    try:
                        incoming = self._prefill(new)
                    except Exception:  # only the sequences being admitted fail
                        logger.exception("Prefill failed")
                        self._fail(new, "Generation failed inside the model.")
                        incoming = None
                    if incoming is not None:
                        if batch is None or not batch.seqs:
                            batch = _Batch.start(incoming, self.model.config)
                        else:
                            batch.merge(incoming)
                        self._stats["max_batch"] = max(self._stats["max_batch"], len(batch.seqs))
                self._stats["running"] = 0 if batch is None else len(batch.seqs)
                if batch is None or not batch.seqs:
                    batch = None
                    continue
                try:
                    batch = self._step(batch)
                except Exception:  # a model failure must not kill the worker: fail the batch it was running
                    logger.exception("Generation failed")
                    self._fail(batch.seqs, "Generation failed inside the model.")
                    batch = None
                self._stats["running"] = 0 if batch is None else len(batch.seqs)
        if batch is not None:
            for seq in batch.seqs:
                seq.send(_DONE)

    def _take(self, room: int, *, block: bool) -> list[_Sequence]:
        """Up to ``room`` waiting sequences, in arrival order (blocking briefly when nothing runs)."""
        new: list[_Sequence] = []
        while len(new) < room:
            try:
                item = self._inbox.get(timeout=0.5) if block and not new else self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is None:
                break
            if item.cancelled:  # its client went away while it waited: never started, counted as cancelled
                self._stats["cancelled"] += 1
            else:
                new.append(item)
        return new

    def _fail(self, seqs: list[_Sequence], message: str) -> None:
        for seq in seqs:
            self._stats["failed"] += 1
            seq.finished = True
            seq.send(ServingError(message, status=500, type="server_error", code="generation_failed"))
            seq.send(_DONE)

    def _prefill(self, new: list[_Sequence]) -> _Batch:
        """Prefill ``new`` sequences (left-padded) into a batch of their own (merged into the running one after)."""
        torch = self._torch
        from transformers import DynamicCache

        for seq in new:
            seed = seq.request.params.seed
            seq.generator = torch.Generator(device=self.device)
            seq.generator.manual_seed(seed % 2**64 if seed is not None else random.getrandbits(63))
            schema = seq.request.params.json_schema
            if schema is not None:
                seq.constraint = self.structured.constraint(self.structured.grammar(schema))
        width = max(len(s.request.prompt_ids) for s in new)
        ids = torch.full((len(new), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(new), width), dtype=torch.long)
        for i, seq in enumerate(new):
            prompt = seq.request.prompt_ids
            ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        logits = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            **self._prefill_kwargs,
        ).logits[:, -1, :]
        return _Batch(new, cache, mask, mask.sum(-1), logits.float(), torch.zeros_like(logits, dtype=torch.float))

    def _step(self, batch: _Batch) -> _Batch | None:
        """Sample one token per running sequence, emit text, drop finished rows, then run the next forward."""
        torch = self._torch
        if self.on_step is not None:
            self.on_step(len(batch.seqs))
        tokens, broken = self._sample(batch)
        lengths = batch.lengths.tolist()
        keep: list[int] = []
        outbox: dict[asyncio.AbstractEventLoop, list[tuple[_Sequence, Any]]] = {}
        failed: list[_Sequence] = []
        for i, seq in enumerate(batch.seqs):
            if seq.cancelled:
                self._stats["cancelled"] += 1
                continue
            token = tokens[i]
            if i in broken or not self._advance(seq, token):
                failed.append(seq)
                continue
            seq.generated.append(token)
            self._stats["generated_tokens"] += 1
            count = len(seq.generated)
            finish = None
            if token in self.eos_token_ids:
                finish = "stop"
            elif count >= seq.request.params.max_tokens or lengths[i] + 1 >= self.max_context:
                finish = "length"
            if finish is None:
                keep.append(i)
                # No event (no decoding, no wake-up) when the caller waits for the final text only, or until
                # ``stream_interval`` tokens have come since the last event (the first token goes out at once).
                if not seq.request.incremental or (
                    seq.reported and count - seq.reported < seq.request.stream_interval
                ):
                    continue
                event = GenerationEvent(self._delta(seq, final=False), seq.generated[seq.reported :], count)
                seq.reported = count
                outbox.setdefault(seq.loop, []).append((seq, event))
                continue
            event = GenerationEvent(self._delta(seq, final=True), seq.generated[seq.reported :], count, finish)
            outbox.setdefault(seq.loop, []).extend(((seq, event), (seq, _DONE)))
            seq.finished = True
            self._stats["finished"] += 1
        self._stats["events"] += sum(len(items) for items in outbox.values())
        _deliver(outbox)
        if failed:
            self._fail(failed, "Sampling failed for this request (non-finite probabilities or no allowed token).")
        self._stats["steps"] += 1
        if not keep:
            return None
        if len(keep) < len(batch.seqs):
            tokens = [tokens[i] for i in batch.select(keep)]
        next_ids = torch.tensor(tokens, dtype=torch.long, device=self.device)[:, None]
        batch.counts[torch.arange(len(tokens)), next_ids[:, 0]] += 1
        batch.mask = torch.cat([batch.mask, torch.ones_like(batch.mask[:, :1])], dim=-1)
        positions = batch.lengths[:, None].clone()
        batch.lengths = batch.lengths + 1
        # One new position per row attends to every cached one except padding: with SDPA and full attention only,
        # that padding mask is the 4D mask itself (transformers then skips building one: ~12 % of a small model's step).
        mask = batch.mask[:, None, None, :].bool() if self._decode_mask_4d else batch.mask
        out = self.model(
            input_ids=next_ids,
            attention_mask=mask,
            position_ids=positions,
            cache=batch.cache,
            use_cache=True,
        )
        batch.logits = out.logits[:, -1, :].float()
        return batch

    def _advance(self, seq: _Sequence, token: int) -> bool:
        """Move the sequence's grammar (if any) past ``token``; ``False`` when that fails."""
        if seq.constraint is None or token in self.eos_token_ids:
            return True
        try:
            seq.constraint.advance(token)
        except Exception:
            logger.exception("Grammar failed for one request")
            return False
        return True

    def _sample(self, batch: _Batch) -> tuple[list[int], set[int]]:
        """Grammar masks, penalties, temperature, top-p, then one draw per row from that row's own generator.

        Returns the tokens and the rows whose sampling broke (non-finite probabilities, a grammar with no next
        token): those rows fail alone, every other row's token is unaffected by them.
        """
        torch = self._torch
        logits = batch.logits
        seqs = batch.seqs
        params = [s.request.params for s in seqs]
        broken: set[int] = set()
        constrained = [i for i, s in enumerate(seqs) if s.constraint is not None and not s.cancelled]
        if constrained:
            logits = logits.clone()
            for i in constrained:
                try:
                    logits[i].masked_fill_(~seqs[i].constraint.allowed().to(logits.device), float("-inf"))
                except Exception:
                    logger.exception("Grammar failed for one request")
                    broken.add(i)
        if any(p.presence_penalty or p.frequency_penalty for p in params):
            presence = torch.tensor([p.presence_penalty for p in params], device=logits.device)[:, None]
            frequency = torch.tensor([p.frequency_penalty for p in params], device=logits.device)[:, None]
            logits = logits - presence * (batch.counts > 0).float() - frequency * batch.counts
        tokens = _greedy(logits)
        rows = [i for i, p in enumerate(params) if p.temperature != 0 and i not in broken]
        if rows:
            index = torch.tensor(rows, device=logits.device)
            temperature = torch.tensor([params[i].temperature for i in rows], device=logits.device)[:, None]
            probs = torch.softmax(logits[index] / temperature, -1)
            top_p = torch.tensor([params[i].top_p for i in rows], device=logits.device)[:, None]
            if bool((top_p < 1).any()):
                sorted_probs, order = probs.sort(-1, descending=True)
                drop = sorted_probs.cumsum(-1) - sorted_probs > top_p  # keep the smallest set reaching top_p
                probs = probs.scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))
            cdf = probs.cumsum(-1)
            total = cdf[:, -1]
            ok = (torch.isfinite(probs).all(-1) & (total > 0)).tolist()
            draws = torch.stack([torch.rand((), generator=seqs[i].generator, device=logits.device) for i in rows])
            picked = torch.searchsorted(cdf, (draws * total)[:, None], right=True)[:, 0]
            picked = picked.clamp(max=probs.shape[-1] - 1).tolist()
            for j, i in enumerate(rows):
                if ok[j]:
                    tokens[i] = picked[j]
                else:
                    broken.add(i)
        return tokens, broken

    def _delta(self, seq: _Sequence, *, final: bool) -> str:
        """New whole characters since the last event (an incomplete UTF-8 sequence waits for its next token).

        Incremental detokenization as in TGI / vLLM: only the tokens since ``prefix_offset`` are decoded, and the
        text of ``generated[prefix_offset:read_offset]`` (already sent) is cut off the front, so a step costs the same
        however long the answer is, and a word-leading space is decoded as in the full text.
        """
        ids = seq.generated
        decode = self.tokenizer.decode
        sent = decode(ids[seq.prefix_offset : seq.read_offset], skip_special_tokens=True)
        text = decode(ids[seq.prefix_offset :], skip_special_tokens=True)
        if (not final and text.endswith("\ufffd")) or len(text) <= len(sent):
            return ""
        seq.prefix_offset, seq.read_offset = seq.read_offset, len(ids)
        return text[len(sent) :]


async def read_events(out: asyncio.Queue, done: Any) -> AsyncIterator[GenerationEvent]:
    """A sequence's events from its queue until ``done``; an exception in the queue is raised.

    Steps the reader fell behind on go out as one event (one SSE chunk, not one per step): under load the event loop
    and the client do per-chunk work once per wake-up, not once per token.
    """
    pending = None
    while True:
        item, pending = (await out.get() if pending is None else pending), None
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        while item.finish_reason is None and not out.empty():
            later = out.get_nowait()
            if not isinstance(later, GenerationEvent):
                pending = later
                break
            item = item.then(later)
        yield item


def _greedy(logits) -> list[int]:
    """Each row's first highest logit. On CPU through NumPy: torch's row-wise ``argmax`` there is not vectorised
    (~2.7 ms for 32 rows of a 49K vocabulary against ~0.13 ms; ~3 % of a tiny model's decoding step). Both take the
    first of equal maxima and treat NaN as the maximum. ``logits`` are float32 (the batch keeps them so)."""
    if logits.device.type == "cpu":
        import numpy

        return numpy.argmax(logits.contiguous().numpy(), axis=-1).tolist()
    return logits.argmax(-1).tolist()


def check_settings(cpu_kernels: str, max_batch_size: int, path: Path | None = None) -> None:
    """The embedded backend's settings (and checkpoint folder), checked before anything loads."""
    if path is not None and not (path / "config.json").exists():
        raise ServingError(f"{path} is not a model folder (no config.json); pass a local checkpoint directory.")
    if cpu_kernels not in CPU_KERNELS:
        raise ServingError(f"cpu_kernels must be one of {', '.join(CPU_KERNELS)}, not {cpu_kernels!r}.")
    if max_batch_size < 1:
        raise ServingError("max_batch_size must be at least 1.")


def _padding_mask_is_enough(config: Any) -> bool:
    """Whether a decoding step may pass its padding mask as the 4D boolean mask: SDPA (which takes boolean masks)
    and no sliding-window layer (a 4D mask is used as given, so a window would not be applied)."""
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    return (
        getattr(config, "_attn_implementation", None) == "sdpa"
        and getattr(config, "sliding_window", None) is None
        and all(kind == "full_attention" for kind in layer_types)
    )


def _buffer_layer_class():
    """:class:`_BufferLayer`, defined on first use (transformers is imported lazily)."""
    global _BufferLayer
    if _BufferLayer is not None:
        return _BufferLayer
    import torch
    from transformers.cache_utils import DynamicLayer

    class BufferLayer(DynamicLayer):
        """One layer's keys and values in a buffer with room to grow (rows = sequences, columns = positions).

        A decoding step writes its column in place: ``DynamicLayer`` concatenates, copying the whole cache of every
        layer at every step. Admitted sequences are copied into free rows, a finished row is replaced by the last
        one, so the cache of the sequences that keep running is never copied as a whole (except when the buffer
        grows, doubling, or when long-dead leading padding columns are dropped).
        """

        def __init__(self) -> None:
            super().__init__()
            self.k_buf = self.v_buf = None
            self.rows = self.width = 0

        def lazy_initialization(self, key_states, value_states) -> None:
            self.device, self.is_initialized = key_states.device, True

        def _room(self, rows: int, width: int, like) -> None:
            buf = self.k_buf
            if buf is not None and rows <= buf.shape[0] and width <= buf.shape[2]:
                return
            old_rows, old_width = (0, 0) if buf is None else (buf.shape[0], buf.shape[2])
            new_rows = old_rows if rows <= old_rows else max(rows, 2 * old_rows)
            new_width = old_width if width <= old_width else max(width, 2 * old_width, 64)
            shape = (new_rows, like.shape[1], new_width, like.shape[3])
            k = torch.zeros(shape, dtype=like.dtype, device=like.device)
            v = torch.zeros(shape, dtype=like.dtype, device=like.device)
            if buf is not None:
                k[: self.rows, :, : self.width] = self.k_buf[: self.rows, :, : self.width]
                v[: self.rows, :, : self.width] = self.v_buf[: self.rows, :, : self.width]
            self.k_buf, self.v_buf = k, v

        def _views(self) -> None:
            self.keys = self.k_buf[: self.rows, :, : self.width]
            self.values = self.v_buf[: self.rows, :, : self.width]

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            rows, new = key_states.shape[0], key_states.shape[-2]
            if self.k_buf is None:
                self.rows = rows
            self._room(rows, self.width + new, key_states)
            self.k_buf[:rows, :, self.width : self.width + new] = key_states
            self.v_buf[:rows, :, self.width : self.width + new] = value_states
            self.rows, self.width = rows, self.width + new
            self._views()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.width

        def append_rows(self, keys, values) -> None:
            """Add sequences (``keys``/``values`` of a prefill), right-aligned with the running ones."""
            n, length = keys.shape[0], keys.shape[-2]
            if length > self.width:  # a longer prompt: shift the running rows right (left padding grows)
                shift = length - self.width
                self._room(self.rows, length, keys)
                for buf in (self.k_buf, self.v_buf):
                    buf[: self.rows, :, shift:length] = buf[: self.rows, :, : self.width].clone()
                    buf[: self.rows, :, :shift] = 0
                self.width = length
            self._room(self.rows + n, self.width, keys)
            pad = self.width - length
            for buf, new in ((self.k_buf, keys), (self.v_buf, values)):
                buf[self.rows : self.rows + n, :, :pad] = 0
                buf[self.rows : self.rows + n, :, pad : self.width] = new
            self.rows += n
            self._views()

        def move_rows(self, dst, src, rows: int) -> None:
            """Copy rows ``src`` into rows ``dst`` (index tensors) and keep the first ``rows``."""
            if len(dst):
                self.k_buf[dst, :, : self.width] = self.k_buf[src, :, : self.width]
                self.v_buf[dst, :, : self.width] = self.v_buf[src, :, : self.width]
            self.rows = rows
            self._views()

        def drop_columns(self, first: int) -> None:
            """Drop the first ``first`` columns (padding for every row)."""
            for buf in (self.k_buf, self.v_buf):
                buf[: self.rows, :, : self.width - first] = buf[: self.rows, :, first : self.width].clone()
            self.width -= first
            self._views()

    _BufferLayer = BufferLayer
    return BufferLayer


_BufferLayer: Any = None


class _Batch:
    """The running batch: sequences, their shared KV cache, attention mask, lengths, next-token logits, counts."""

    def __init__(self, seqs, cache, mask, lengths, logits, counts) -> None:
        self.seqs: list[_Sequence] = seqs
        self.cache = cache
        self.mask = mask
        self.lengths = lengths
        self.logits = logits
        self.counts = counts

    @classmethod
    def start(cls, incoming: _Batch, config: Any) -> _Batch:
        """A running batch with a buffer cache (one :class:`_BufferLayer` per layer), holding ``incoming``."""
        from transformers import DynamicCache

        cache = DynamicCache(config=config)
        layer = _buffer_layer_class()
        cache.layers = [layer() for _ in incoming.cache.layers]
        empty = incoming.mask[:0, :0]
        batch = cls([], cache, empty, incoming.lengths[:0], incoming.logits[:0], incoming.counts[:0])
        return batch.merge(incoming)

    def select(self, keep: list[int]) -> list[int]:
        """Keep the rows ``keep``; returns the new order (old row of each new row): the rows that stay below the new
        size keep their place, the last rows move into the holes, so the cache copies only the moved rows."""
        import torch

        size, kept = len(keep), set(keep)
        movers = iter([i for i in keep if i >= size])
        order = [i if i in kept else next(movers) for i in range(size)]
        holes = [i for i in range(size) if order[i] != i]
        device = self.mask.device
        dst = torch.tensor(holes, dtype=torch.long, device=device)
        src = torch.tensor([order[i] for i in holes], dtype=torch.long, device=device)
        for layer in self.cache.layers:
            layer.move_rows(dst, src, size)
        index = torch.tensor(order, dtype=torch.long, device=device)
        self.seqs = [self.seqs[i] for i in order]
        self.mask, self.lengths = self.mask[index], self.lengths[index]
        self.logits, self.counts = self.logits[index], self.counts[index]
        # Drop leading columns that are padding for every remaining row, once they are a good part of the width.
        first = int(self.mask.any(0).int().argmax())
        if first >= max(16, self.mask.shape[1] // 4):
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.drop_columns(first)
        return order

    def merge(self, other: _Batch) -> _Batch:
        """Add the prefilled batch ``other``: its cache goes into free rows, right-aligned (left padding)."""
        import torch

        width = max(self.mask.shape[1], other.mask.shape[1])

        def pad(tensor):
            missing = width - tensor.shape[1]
            return tensor if missing == 0 else torch.cat([tensor.new_zeros((tensor.shape[0], missing)), tensor], 1)

        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.append_rows(theirs.keys, theirs.values)
        self.mask = torch.cat([pad(self.mask), pad(other.mask)], dim=0)
        self.seqs = self.seqs + other.seqs
        self.lengths = torch.cat([self.lengths, other.lengths])
        self.logits = torch.cat([self.logits, other.logits])
        self.counts = torch.cat([self.counts, other.counts])
        return self
