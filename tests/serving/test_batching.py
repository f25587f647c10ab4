"""Continuous batching gives every request what it would get alone: the greedy streams of concurrent requests with
different prompt lengths, budgets and arrival times equal ``model.generate`` on each prompt alone, token for token.

The arrivals are chained to the progress of running streams, so that requests are admitted into a running batch
(a longer prompt than the running ones shifts their cache), rows finish in the middle of the batch (the last row
moves into the hole) and a long prompt that finished early leaves padding columns that are dropped.
"""

from __future__ import annotations

import asyncio

import pytest
import torch

from openchat_hf.serving.backends.base import GenerationRequest, SamplingParams
from openchat_hf.serving.backends.transformers import TransformersBackend

# (prompt length, max_tokens, start after stream `after` has received `tokens` tokens)
PLANS = [
    (70, 3, None, 0),  # long prompt, done early: its left padding of the others is dropped after it finishes
    (4, 30, None, 0),
    (18, 12, 1, 2),  # admitted into the running batch
    (110, 6, 1, 4),  # longer than the running batch: the running rows are shifted right
    (6, 20, 2, 3),
    (40, 1, 1, 6),  # finishes at once, in the middle of the batch
    (9, 14, 4, 2),
]


def prompts_of(tokenizer, plans=PLANS) -> list[list[int]]:
    words = "the llama sleeps standing up in cold weather because its wool keeps it warm and dry at night".split()
    ids = tokenizer(" ".join(words * 20), add_special_tokens=False).input_ids
    return [ids[i : i + length] for i, (length, *_) in enumerate(plans)]


def alone(model, ids: list[int], max_new_tokens: int) -> list[int]:
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
    return out[0, len(ids) :].tolist()


async def batched(backend, prompts: list[list[int]], plans=PLANS) -> list[list[int]]:
    progress = [0] * len(plans)
    changed = asyncio.Condition()

    async def one(i: int) -> list[int]:
        _, max_tokens, after, tokens = plans[i]
        if after is not None:
            async with changed:
                await changed.wait_for(lambda: progress[after] >= tokens)
        got: list[int] = []
        request = GenerationRequest(prompts[i], "", SamplingParams(max_tokens, temperature=0))
        async for event in backend.stream(request):
            got += event.token_ids
            async with changed:
                progress[i] = len(got)
                changed.notify_all()
        return got

    try:
        return await asyncio.gather(*[one(i) for i in range(len(plans))])
    finally:
        await backend.close()


def check(model, tokenizer, plans=PLANS, *, cpu_kernels="torch"):
    prompts = prompts_of(tokenizer, plans)
    assert [len(p) for p in prompts] == [length for length, *_ in plans]
    expected = [alone(model, ids, max_tokens) for ids, (_, max_tokens, *_) in zip(prompts, plans, strict=True)]
    backend = TransformersBackend(model, tokenizer, eos_token_ids=[], max_batch_size=8, cpu_kernels=cpu_kernels)
    assert asyncio.run(batched(backend, prompts, plans)) == expected
    assert backend.stats()["max_batch"] >= 3
    return backend


def test_concurrent_greedy_streams_equal_generate_alone(backend):
    check(backend.model, backend.tokenizer)


@pytest.mark.slow
def test_concurrent_greedy_streams_equal_generate_alone_on_smollm2(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    shorter = [(length, max(1, budget // 2), after, min(tokens, 2)) for length, budget, after, tokens in PLANS]
    check(model, AutoTokenizer.from_pretrained(smollm2_dir), shorter)


@pytest.mark.slow
def test_with_the_compiled_cpu_kernel_smollm2_streams_still_equal_plain_generate(smollm2_dir):
    """The batch runs 1-3 rows on the compiled kernel, more (and the prefills) on prepacked oneDNN weights;
    ``generate`` alone runs the unpatched model (MKL)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    backend = check(model, AutoTokenizer.from_pretrained(smollm2_dir), PLANS, cpu_kernels="compiled")
    assert backend.compiled_layers == backend.prepacked_layers == 30 * 7 + 1  # q, k, v, o, gate, up, down, lm_head


def test_a_slow_reader_gets_the_steps_it_missed_as_one_event(backend):
    """Events that pile up while the reader is busy come out merged (one SSE chunk instead of one per step), and
    nothing is lost: the tokens are still those of ``generate`` alone."""
    model, tokenizer = backend.model, backend.tokenizer
    prompt = prompts_of(tokenizer)[1]
    expected = alone(model, prompt, 24)
    fresh = TransformersBackend(model, tokenizer, eos_token_ids=[], max_batch_size=4)

    async def read_slowly():
        events = []
        try:
            async for event in fresh.stream(GenerationRequest(prompt, "", SamplingParams(24, temperature=0))):
                events.append(event)
                await asyncio.sleep(0.05)  # meanwhile the worker runs several steps
        finally:
            await fresh.close()
        return events

    events = asyncio.run(read_slowly())
    assert [t for e in events for t in e.token_ids] == expected
    assert len(events) < len(expected) and events[-1].completion_tokens == 24 and events[-1].finish_reason


def test_every_request_is_counted_once_a_cancelled_waiting_one_included(backend):
    """A request whose client goes away while it waits for a place in the batch never runs; it must still be
    counted (as cancelled), so that requests = finished + cancelled + failed."""
    model, tokenizer = backend.model, backend.tokenizer
    prompt = prompts_of(tokenizer)[1]
    capped = TransformersBackend(model, tokenizer, eos_token_ids=[], max_batch_size=1)

    async def run() -> dict:
        try:
            running = capped.stream(GenerationRequest(prompt, "", SamplingParams(1500, temperature=0), True, 1))
            await anext(running)  # it holds the only place
            waiting = capped.stream(GenerationRequest(prompt, "", SamplingParams(5, temperature=0), True, 1))
            task = asyncio.create_task(anext(waiting))
            while capped.stats()["waiting"] < 1:
                await asyncio.sleep(0.01)
            task.cancel()  # its client hangs up while it waits
            await asyncio.gather(task, return_exceptions=True)
            await running.aclose()  # then the running one's too; the worker takes the waiting one next
            done = GenerationRequest(prompt, "", SamplingParams(3, temperature=0), True, 1)
            assert [e async for e in capped.stream(done)][-1].finish_reason == "length"
            return capped.stats()
        finally:
            await capped.close()

    stats = asyncio.run(run())
    assert stats["requests"] == 3 and stats["finished"] == 1 and stats["failed"] == 0
    assert stats["cancelled"] == 2  # the running one and the one that never ran


def test_greedy_tokens_on_cpu_are_torchs_argmax_ties_and_nan_included():
    """Greedy decoding on CPU takes NumPy's argmax (torch's is not vectorised there): the same token for every row,
    the first of equal maxima and a NaN row included, on a real vocabulary's width and on a strided slice."""
    from openchat_hf.serving.backends.transformers import _greedy

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, 49152, generator=generator)
    logits[1, -1, 100] = logits[1, -1, 40000] = 50.0  # a tie: the first wins
    logits[2, -1] = 0.0  # all equal
    logits[3, -1, 7] = float("nan")
    logits[4, -1, 9:] = float("-inf")
    rows = logits[:, -1, :]  # not contiguous
    assert _greedy(rows) == rows.argmax(-1).tolist() == _greedy(rows.contiguous())
    assert _greedy(rows)[1:4] == [100, 0, 7]
