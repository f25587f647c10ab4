"""Output post-processing: stop strings cut across chunk boundaries, the prefix space, whole UTF-8 characters."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openchat_hf.serving.backends.transformers import TransformersBackend, _Sequence
from openchat_hf.serving.text import OutputFilter
from openchat_hf.templates import ChatTemplate


def run(chunks, stop=(), strip=None):
    out = OutputFilter(stop, strip)
    sent, stopped = [], False
    for chunk in chunks:
        text, stopped = out.feed(chunk)
        sent.append(text)
        if stopped:
            break
    sent.append(out.flush())
    return sent, stopped


def test_stop_string_split_across_chunks_is_held_back_and_removed():
    sent, stopped = run(["Hello wo", "rld, ST", "OP here"], stop=["STOP"])
    assert "".join(sent) == "Hello world, " and stopped
    assert "ST" not in "".join(sent[:2])  # the possible start of a stop string was held back


def test_false_alarm_is_released():
    sent, stopped = run(["abc S", "Tx", "yz"], stop=["STOP"])
    assert "".join(sent) == "abc STxyz" and not stopped


def test_held_back_tail_is_flushed_at_the_end():
    sent, _ = run(["the end ST"], stop=["STOP"])
    assert sent == ["the end ", "ST"]


def test_leading_space_of_the_answer_is_stripped_once():
    strip = ChatTemplate("openchat", bos_token="<s>").strip_completion
    assert "".join(run([" ", " Hi", " there"], strip=strip)[0]) == " Hi there"
    assert "".join(run([" Hi"], strip=strip)[0]) == "Hi"
    assert "".join(run(["Hi"], strip=strip)[0]) == "Hi"


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet="abSTOP \u00e9", max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=8),
    stops=st.lists(st.text(alphabet="abSTOP", min_size=1, max_size=4), max_size=3),
)
def test_any_chunking_gives_the_text_before_the_first_stop(text, cuts, stops):
    bounds = sorted({0, len(text), *[c for c in cuts if c <= len(text)]})
    chunks = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    # The stop completed first (earliest end) cuts the text at its start, whatever the chunking.
    found = [(i + len(s), i) for s in stops if (i := text.find(s)) >= 0]
    first = min(found)[1] if found else -1
    sent, stopped = run(chunks, stop=stops)
    assert "".join(sent) == (text[:first] if first >= 0 else text)
    assert stopped == (first >= 0)


def test_incomplete_utf8_waits_for_its_next_byte(backend):
    tokenizer = backend.tokenizer
    first, second = tokenizer.convert_tokens_to_ids(["<0xC3>", "<0xA9>"])  # "é" as two byte-fallback tokens
    assert tokenizer.decode([first, second]) == "é"
    seq = _Sequence(None, asyncio.new_event_loop(), None)
    seq.generated = [first]
    assert TransformersBackend._delta(backend, seq, final=False) == ""
    seq.generated.append(second)
    assert TransformersBackend._delta(backend, seq, final=False) == "é"
    seq.loop.close()


@pytest.mark.parametrize("top_p", [1.0, 0.5])
def test_sampling_is_reproducible_per_seed(backend, top_p):
    import torch

    from openchat_hf.serving.backends.base import GenerationRequest, SamplingParams
    from openchat_hf.serving.backends.transformers import _Batch

    logits = torch.randn(2, 50)

    def draw(seed):
        seqs = []
        for _ in range(2):
            seq = _Sequence(GenerationRequest([1], "", SamplingParams(1, temperature=1.0, top_p=top_p)), None, None)
            seq.generator = torch.Generator().manual_seed(seed)
            seqs.append(seq)
        batch = _Batch(seqs, None, None, None, logits, torch.zeros_like(logits))
        return [TransformersBackend._sample(backend, batch)[0] for _ in range(5)]

    assert draw(1) == draw(1) != draw(2)
    if top_p < 1:  # nucleus: only tokens inside the top-p mass are ever drawn
        probs = torch.softmax(logits, -1)
        for row in range(2):
            order = probs[row].argsort(descending=True).tolist()
            mass, allowed = 0.0, set()
            for token in order:
                allowed.add(token)
                mass += float(probs[row, token])
                if mass >= top_p:
                    break
            assert all(tokens[row] in allowed for tokens in draw(3))
