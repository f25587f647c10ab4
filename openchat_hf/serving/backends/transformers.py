"""The embedded backend: a local checkpoint generating on a worker thread with continuous batching and a KV cache.

transformers' own ``generate_batch`` / ``ContinuousBatchingManager`` was measured first (docs/serving.md): on
this CPU it gave no speed-up over one-at-a-time ``generate`` for the tiny model, and it has no per-request seed, so
this module has a small scheduler of its own: one worker thread owns the model; every step it prefills newly
arrived requests (left-padded), merges their KV cache into the running batch, decodes one token for every running
sequence with per-row sampling (own ``torch.Generator`` per request, so a seed gives the same output), and drops
finished or cancelled rows. The event loop only exchanges messages with the worker, so it is never blocked: each step
hands the new text of all sequences over in one wake-up per event loop, and a request that needs only its final text
(``GenerationRequest.incremental=False``) is decoded once and sent one event when it finishes.
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


@dataclass
class _Sequence:
    """A request's state on the worker thread."""

    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue
    generator: Any = None
    generated: list[int] = field(default_factory=list)
    emitted_chars: int = 0
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
    ) -> None:
        super().__init__(tokenizer, model.config)
        import torch

        self.model = model.eval()
        self.device = next(model.parameters()).device
        if eos_token_ids is None:
            eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
            eos = model.config.eos_token_id if eos is None else eos
            eos_token_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        self.eos_token_ids = set(eos_token_ids)
        self.max_batch_size = max_batch_size
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        config = model.config
        self.max_context = int(
            getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 2048)
        )
        # Prefill computes logits for the last position only where the model supports it.
        self._prefill_kwargs = (
            {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
        )
        self._torch = torch
        self._inbox: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stats = {
            "requests": 0,
            "finished": 0,
            "cancelled": 0,
            "generated_tokens": 0,
            "steps": 0,
            "max_batch": 0,
            "events": 0,
        }

    # ------------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, device: str | None = None, dtype: str | None = None, max_batch_size: int = 32
    ) -> TransformersBackend:
        """Load a local checkpoint: bf16 on GPU, fp32 on CPU, unless ``dtype`` says otherwise."""
        import torch
        from transformers import AutoModelForCausalLM

        from openchat_hf.tokenizer_loading import load_tokenizer

        path = Path(path)
        if not (path / "config.json").exists():
            raise ServingError(f"{path} is not a model folder (no config.json); pass a local checkpoint directory.")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = (
            getattr(torch, dtype) if dtype else (torch.bfloat16 if device.startswith("cuda") else torch.float32)
        )
        tokenizer = load_tokenizer(path)  # checked before the weights load
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(device)
        logger.info("Loaded %s on %s (%s)", path, device, torch_dtype)
        return cls(model, tokenizer, max_batch_size=max_batch_size)

    # ------------------------------------------------------------------------------------------- async side
    async def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._worker, name="openchat-hf-generate", daemon=True)
            self._thread.start()

    async def close(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._inbox.put(None)
            await asyncio.to_thread(self._thread.join, 30)
            self._thread = None

    def stats(self) -> dict[str, Any]:
        return dict(self._stats)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        if self._thread is None:
            await self.start()
        seq = _Sequence(request, asyncio.get_running_loop(), asyncio.Queue())
        self._stats["requests"] += 1
        self._inbox.put(seq)
        try:
            while True:
                item = await seq.out.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # Closing the iterator early (client gone, stop string found) cancels the generation.
            seq.cancelled = True

    # ----------------------------------------------------------------------------------------- worker side
    def _worker(self) -> None:
        torch = self._torch
        batch: _Batch | None = None
        with torch.inference_mode():
            while not self._stopping.is_set():
                running = 0 if batch is None else len(batch.seqs)
                new: list[_Sequence] = []
                try:
                    # Block only when idle; otherwise pick up whatever arrived since the last step.
                    item = self._inbox.get(timeout=0.5) if running == 0 else self._inbox.get_nowait()
                    while True:
                        if item is None:
                            break
                        if not item.cancelled:
                            new.append(item)
                        if running + len(new) >= self.max_batch_size:
                            break
                        item = self._inbox.get_nowait()
                except queue.Empty:
                    pass
                try:
                    if new:
                        batch = self._admit(batch, new)
                    if batch is not None and batch.seqs:
                        batch = self._step(batch)
                except Exception as err:  # a model failure must not kill the worker: fail the affected requests
                    logger.exception("Generation failed")
                    failed = (batch.seqs if batch is not None else []) + new
                    for seq in failed:
                        seq.send(ServingError("Generation failed inside the model.", status=500, type="server_error"))
                        seq.send(_DONE)
                    del err
                    batch = None
        if batch is not None:
            for seq in batch.seqs:
                seq.send(_DONE)

    def _admit(self, batch: _Batch | None, new: list[_Sequence]) -> _Batch:
        """Prefill ``new`` sequences (left-padded) and merge them into the running batch."""
        torch = self._torch
        from transformers import DynamicCache

        for seq in new:
            seed = seq.request.params.seed
            seq.generator = torch.Generator(device=self.device)
            seq.generator.manual_seed(seed % 2**64 if seed is not None else random.getrandbits(63))
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
        incoming = _Batch(new, cache, mask, mask.sum(-1), logits.float(), torch.zeros_like(logits, dtype=torch.float))
        merged = incoming if batch is None or not batch.seqs else batch.merge(incoming)
        self._stats["max_batch"] = max(self._stats["max_batch"], len(merged.seqs))
        return merged

    def _step(self, batch: _Batch) -> _Batch | None:
        """Sample one token per running sequence, emit text, drop finished rows, then run the next forward."""
        torch = self._torch
        tokens = self._sample(batch)
        lengths = batch.lengths.tolist()
        keep: list[int] = []
        outbox: dict[asyncio.AbstractEventLoop, list[tuple[_Sequence, Any]]] = {}
        for i, seq in enumerate(batch.seqs):
            if seq.cancelled:
                self._stats["cancelled"] += 1
                continue
            token = tokens[i]
            seq.generated.append(token)
            self._stats["generated_tokens"] += 1
            finish = None
            if token in self.eos_token_ids:
                finish = "stop"
            elif len(seq.generated) >= seq.request.params.max_tokens or lengths[i] + 1 >= self.max_context:
                finish = "length"
            if finish is None:
                keep.append(i)
                if not seq.request.incremental:  # the caller waits for the final text only: no event, no wake-up
                    continue
                event = GenerationEvent(self._delta(seq, final=False), [token], len(seq.generated))
                outbox.setdefault(seq.loop, []).append((seq, event))
                continue
            ids = [token] if seq.request.incremental else list(seq.generated)
            event = GenerationEvent(self._delta(seq, final=True), ids, len(seq.generated), finish)
            outbox.setdefault(seq.loop, []).extend(((seq, event), (seq, _DONE)))
            seq.finished = True
            self._stats["finished"] += 1
        self._stats["events"] += sum(len(items) for items in outbox.values())
        _deliver(outbox)
        self._stats["steps"] += 1
        if not keep:
            return None
        if len(keep) < len(batch.seqs):
            batch = batch.select(keep)
            tokens = [tokens[i] for i in keep]
        next_ids = torch.tensor(tokens, dtype=torch.long, device=self.device)[:, None]
        batch.counts[torch.arange(len(tokens)), next_ids[:, 0]] += 1
        batch.mask = torch.cat([batch.mask, torch.ones_like(batch.mask[:, :1])], dim=-1)
        positions = batch.lengths[:, None].clone()
        batch.lengths = batch.lengths + 1
        out = self.model(
            input_ids=next_ids,
            attention_mask=batch.mask,
            position_ids=positions,
            cache=batch.cache,
            use_cache=True,
        )
        batch.logits = out.logits[:, -1, :].float()
        return batch

    def _sample(self, batch: _Batch) -> list[int]:
        """Penalties, temperature, top-p, then one draw per row from that row's own generator."""
        torch = self._torch
        logits = batch.logits
        params = [s.request.params for s in batch.seqs]
        if any(p.presence_penalty or p.frequency_penalty for p in params):
            presence = torch.tensor([p.presence_penalty for p in params], device=logits.device)[:, None]
            frequency = torch.tensor([p.frequency_penalty for p in params], device=logits.device)[:, None]
            logits = logits - presence * (batch.counts > 0).float() - frequency * batch.counts
        greedy = logits.argmax(-1).tolist()
        tokens = []
        for i, p in enumerate(params):
            if p.temperature == 0:
                tokens.append(greedy[i])
                continue
            row = logits[i] / p.temperature
            probs = torch.softmax(row, -1)
            if p.top_p < 1.0:
                sorted_probs, order = probs.sort(descending=True)
                cumulative = sorted_probs.cumsum(-1)
                drop = cumulative - sorted_probs > p.top_p  # keep the smallest set reaching top_p
                sorted_probs[drop] = 0.0
                probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
            tokens.append(int(torch.multinomial(probs, 1, generator=batch.seqs[i].generator)))
        return tokens

    def _delta(self, seq: _Sequence, *, final: bool) -> str:
        """New whole characters since the last event (an incomplete UTF-8 sequence waits for its next token)."""
        text = self.tokenizer.decode(seq.generated, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):
            return ""
        delta = text[seq.emitted_chars :]
        seq.emitted_chars = len(text)
        return delta


class _Batch:
    """The running batch: sequences, their shared KV cache, attention mask, lengths, next-token logits, counts."""

    def __init__(self, seqs, cache, mask, lengths, logits, counts) -> None:
        self.seqs: list[_Sequence] = seqs
        self.cache = cache
        self.mask = mask
        self.lengths = lengths
        self.logits = logits
        self.counts = counts

    def select(self, keep: list[int]) -> _Batch:
        import torch

        index = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.seqs = [self.seqs[i] for i in keep]
        self.mask, self.lengths = self.mask[index], self.lengths[index]
        self.logits, self.counts = self.logits[index], self.counts[index]
        # Drop leading columns that are padding for every remaining row.
        first = int(self.mask.any(0).int().argmax())
        if first > 0:
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., first:, :], layer.values[..., first:, :]
        return self

    def merge(self, other: _Batch) -> _Batch:
        """Left-pad both caches and masks to the same length and stack the batches."""
        import torch

        width = max(self.mask.shape[1], other.mask.shape[1])

        def pad(tensor, dim):
            missing = width - tensor.shape[dim]
            if missing == 0:
                return tensor
            shape = list(tensor.shape)
            shape[dim] = missing
            return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)

        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([pad(mine.keys, -2), pad(theirs.keys, -2)], dim=0)
            mine.values = torch.cat([pad(mine.values, -2), pad(theirs.values, -2)], dim=0)
        self.mask = torch.cat([pad(self.mask, 1), pad(other.mask, 1)], dim=0)
        self.seqs = self.seqs + other.seqs
        self.lengths = torch.cat([self.lengths, other.lengths])
        self.logits = torch.cat([self.logits, other.logits])
        self.counts = torch.cat([self.counts, other.counts])
        return self
