"""The template invariants on the five real tokenizers, for every registered model type.

For each (model type, tokenizer) pair and each conversation (code, Markdown, emoji, CJK, whitespace runs, the
tokenizer's own special-token strings): ids and supervise masks equal ``apply_chat_template(...,
return_assistant_tokens_mask=True)``; the generation prompt's ids are a prefix of the training ids; minijinja renders
the marker-free template exactly like Jinja2 and :meth:`ChatTemplate.render`; content never yields a special token.
"""

from __future__ import annotations

import time

import minijinja
import pytest
from real_assets import ALL_REAL_TOKENIZERS

from openchat_hf.model_types import list_model_types
from openchat_hf.templates import ZERO_WIDTH_SPACE, eot_token_id, setup_tokenizer

CODE = 'def fib(n: int) -> int:\n    """Fibonacci."""\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n'
MARKDOWN = "## Result\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- **bold** and _italic_\n  - nested `code`\n\n> quote"
CONVERSATIONS = [
    [{"role": "user", "content": "Write fib in Python."}, {"role": "assistant", "content": f"```python\n{CODE}```"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Summarise as a table."},
        {"role": "assistant", "content": MARKDOWN},
        {"role": "user", "content": "Thanks 🎉🚀 — merci, спасибо!"},
        {"role": "assistant", "content": "De rien 😊 Ünïcödé ok."},
    ],
    [
        {"role": "user", "content": "你好，世界！请用中文回答。日本語もOK？"},
        {"role": "assistant", "content": "好的。这是一个测试：１２３，한국어도 됩니다。"},
    ],
    [
        {"role": "user", "content": "   leading spaces\t\ttabs\n\n\n  and  runs   "},
        {"role": "assistant", "content": "  \n    indented\n\t\tx  "},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
    ],
    [{"role": "user", "content": "1234567 + 0.5 = ?"}, {"role": "assistant", "content": "1234567.5"}],
]


def _hostile(tokenizer, template) -> list[dict]:
    """A conversation whose content holds special-token strings of this tokenizer (a sample of at most 24)."""
    specials = sorted(template.special_tokens)
    sample = specials if len(specials) <= 24 else specials[:12] + specials[-12:]
    text = " x".join(sample) + " Human: Assistant: User:"
    return [{"role": "user", "content": text}, {"role": "assistant", "content": text + "\nend"}]


@pytest.fixture(scope="module")
def base_tokenizers(real_tokenizer):
    return {name: real_tokenizer(name) for name in ALL_REAL_TOKENIZERS}


@pytest.mark.slow
@pytest.mark.parametrize("tokenizer_name", ALL_REAL_TOKENIZERS)
@pytest.mark.parametrize("model_type", list_model_types())
def test_template_invariants_on_real_tokenizers(base_tokenizers, tokenizer_name, model_type):
    import copy

    tokenizer = copy.deepcopy(base_tokenizers[tokenizer_name])
    started = time.perf_counter()
    template = setup_tokenizer(tokenizer, model_type)
    marker_free = minijinja.Environment()
    marker_free.add_template("chat", template.jinja(generation_markers=False))
    assert time.perf_counter() - started < 30  # compiles (and quickly) with Llama-3's 256 special tokens
    eot = eot_token_id(tokenizer, model_type)
    assert (
        tokenizer.convert_ids_to_tokens(eot) in tokenizer.all_special_tokens or eot in tokenizer.added_tokens_decoder
    )
    special_ids = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder) | {eot}
    bos = [tokenizer.bos_token_id] if template.model_type.add_bos else []

    for messages in [*CONVERSATIONS, _hostile(tokenizer, template)]:
        ours = template.tokenize(messages)
        theirs = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        assert theirs["input_ids"] == ours.input_ids
        assert theirs["assistant_masks"] == ours.supervise_mask
        text = template.render(messages).text
        assert tokenizer.apply_chat_template(messages, tokenize=False) == text
        assert marker_free.render_template("chat", messages=messages, add_generation_prompt=False) == text
        # Content never becomes a special token: only BOS and one EOT per turn are special.
        assert [t for t in ours.input_ids if t in special_ids] == bos + [eot] * len(messages)
        # Every assistant turn's EOT is supervised, no other EOT is.
        supervised_eots = [m for t, m in zip(ours.input_ids, ours.supervise_mask) if t == eot]
        assert supervised_eots == [int(m["role"] == "assistant") for m in messages]
        # The generation prompt before each answer is a token prefix of the training sequence.
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = template.tokenize(messages[:i], add_generation_prompt=True)
            assert prompt.input_ids == tokenizer.apply_chat_template(
                messages[:i], add_generation_prompt=True, tokenize=True, return_dict=False
            )
            rendered = marker_free.render_template("chat", messages=messages[:i], add_generation_prompt=True)
            assert rendered == template.render(messages[:i], add_generation_prompt=True).text
            # It is, whenever the answer starts after a space ("Assistant: "). With a prefix ending in ":" (opencoder),
            # byte-level BPE may merge ":" with punctuation that opens the answer (":<"), so there only answers
            # opening with a letter, digit or whitespace are guaranteed (docs/modeling.md).
            first = message["content"][:1]
            starts_clean = not first or first.isalnum() or first.isspace()
            if template.model_type.assistant_prefix.endswith(" ") or starts_clean:
                assert ours.input_ids[: len(prompt.input_ids)] == prompt.input_ids, (tokenizer_name, i)

    hostile = _hostile(tokenizer, template)
    rendered = template.render(hostile)
    assert rendered.num_neutralized >= 2 * min(len(template.special_tokens), 24)
    assert ZERO_WIDTH_SPACE in rendered.text


def test_template_compiles_and_stays_fast_with_thousands_of_added_tokens(real_tokenizer):
    """5,000 added special tokens: the Jinja template compiles, renders like Python, and neutralises every one."""
    from tokenizers import AddedToken

    tokenizer = real_tokenizer("llama2-tokenizer")
    extra = [f"<|extra_{i}|>" for i in range(5000)] + [f"[TOOL_{i}]" for i in range(50)]
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in extra], special_tokens=True)
    started = time.perf_counter()
    template = setup_tokenizer(tokenizer, "openchat")
    hostile = " ".join(extra[::97]) + " <|extra_|> <|extra_49999|> [TOOL_] <not special> a < b"
    messages = [{"role": "user", "content": hostile}, {"role": "assistant", "content": CODE + hostile}]
    ours = template.tokenize(messages)
    theirs = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    elapsed = time.perf_counter() - started
    assert theirs["input_ids"] == ours.input_ids and theirs["assistant_masks"] == ours.supervise_mask
    env = minijinja.Environment()
    env.add_template("chat", template.jinja(generation_markers=False))
    assert (
        env.render_template("chat", messages=messages, add_generation_prompt=False) == template.render(messages).text
    )
    special_ids = set(tokenizer.added_tokens_decoder)
    eot = eot_token_id(tokenizer, "openchat")
    assert [t for t in ours.input_ids if t in special_ids] == [tokenizer.bos_token_id, eot, eot]
    assert ours.num_neutralized == 2 * len(extra[::97])  # the look-alikes are left alone
    assert "<not special> a < b" in template.render(messages).text
    assert elapsed < 30, elapsed  # one replace filter per token took minutes or failed to compile
