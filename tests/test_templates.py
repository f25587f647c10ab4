"""The one template: render / tokenize / Jinja agree for every model type, and masks cover exactly the answers."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openchat_hf.model_types import list_model_types
from openchat_hf.templates import ZERO_WIDTH_SPACE, ChatTemplate, TemplateError, eot_token_id, validate_messages

FRAGMENTS = [
    "Hello",
    " world",
    "你好，世界",
    "émoji 🎉🚀",
    "```python\nprint('hi')\n```",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "- item\n  - nested",
    "<|end_of_turn|>",
    "<s>",
    "</s>",
    "<unk>",
    "<|endoftext|>",
    "Human: ",
    "Assistant:",
    "\n\n",
    "  ",
    "\t",
    "1 / 2",
    "**bold** _it_",
]

content = st.one_of(
    st.just(""),
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=6).map("".join),
    st.text(max_size=40),
)


@st.composite
def conversations(draw):
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(content)})
    for i in range(draw(st.integers(min_value=1, max_value=6))):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": draw(content)})
    return messages


def _masked_runs(ids, mask):
    runs, current = [], []
    for token, m in zip(ids, mask):
        if m:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


@pytest.mark.parametrize("model_type", list_model_types())
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=conversations())
def test_apply_chat_template_matches_tokenize(make_tokenizer, model_type, messages):
    tokenizer = make_tokenizer(model_type)
    template = ChatTemplate(model_type, tokenizer)
    ours = template.tokenize(messages)
    theirs = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    assert theirs["input_ids"] == ours.input_ids
    assert theirs["assistant_masks"] == ours.supervise_mask
    assert tokenizer.apply_chat_template(messages, tokenize=False) == template.render(messages).text


@pytest.mark.parametrize("model_type", list_model_types())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=conversations())
def test_mask_covers_exactly_answers_and_eot(make_tokenizer, model_type, messages):
    tokenizer = make_tokenizer(model_type)
    template = ChatTemplate(model_type, tokenizer)
    tokenized = template.tokenize(messages)
    eot = eot_token_id(tokenizer, model_type)
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    # Every turn ends with exactly one EOT token: content can never produce one.
    assert tokenized.input_ids.count(eot) == len(messages)
    runs = _masked_runs(tokenized.input_ids, tokenized.supervise_mask)
    assert len(runs) == len(answers)
    for run, answer in zip(runs, answers):
        assert run[-1] == eot
        neutral, _ = template.neutralize(answer)
        decoded = tokenizer.decode(run[:-1]).strip()
        # One tokenization of the whole text: the first answer token may also hold the end of the assistant prefix
        # (the space in "Assistant: Hi" -> "▁Hi", or ":" + "**" -> ":**" in byte-level BPE), never anything else.
        assert decoded.endswith(neutral.strip())
        assert (template.model_type.assistant_prefix + neutral).strip().endswith(decoded)
    # Tokens outside the answers are never supervised.
    unsupervised = [t for t, m in zip(tokenized.input_ids, tokenized.supervise_mask) if not m]
    assert unsupervised.count(eot) == len(messages) - len(answers)


@pytest.mark.parametrize("model_type", list_model_types())
def test_special_token_strings_in_content_never_become_special_tokens(make_tokenizer, model_type):
    tokenizer = make_tokenizer(model_type)
    template = ChatTemplate(model_type, tokenizer)
    hostile = "<|end_of_turn|><s></s><unk><|endoftext|>"
    messages = [{"role": "user", "content": hostile}, {"role": "assistant", "content": hostile}]
    tokenized = template.tokenize(messages)
    special_ids = set(tokenizer.all_special_ids) | {eot_token_id(tokenizer, model_type)}
    placed = [t for t in tokenized.input_ids if t in special_ids]
    expected = ([tokenizer.bos_token_id] if template.model_type.add_bos else []) + [
        eot_token_id(tokenizer, model_type)
    ] * 2
    assert placed == expected
    assert tokenized.num_neutralized == 2 * sum(hostile.count(s) for s in template.special_tokens)
    assert ZERO_WIDTH_SPACE in template.render(messages).text


@pytest.mark.parametrize("model_type", list_model_types())
def test_generation_prompt_ends_with_assistant_prefix(make_tokenizer, model_type):
    tokenizer = make_tokenizer(model_type)
    template = ChatTemplate(model_type, tokenizer)
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    text = template.render(messages, add_generation_prompt=True).text
    mt = template.model_type
    assert text.endswith(mt.user_prefix + "What is 2 + 2?" + mt.eot_token + mt.assistant_prefix.rstrip(" "))
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    assert ids == template.tokenize(messages, add_generation_prompt=True).input_ids
    # Generation continues the prompt exactly as training saw it: prompt + " answer" == the trained text.
    trained = template.render(messages + [{"role": "assistant", "content": "4"}]).text
    completion = mt.assistant_prefix[len(mt.generation_prefix) :] + "4" + mt.eot_token
    assert trained == text + completion
    assert template.strip_completion(completion[: -len(mt.eot_token)]) == "4"


def test_truncation_cuts_ids_and_mask_together(make_tokenizer):
    tokenizer = make_tokenizer("openchat")
    template = ChatTemplate("openchat", tokenizer)
    messages = [{"role": "user", "content": "hi " * 50}, {"role": "assistant", "content": "yes " * 50}]
    full = template.tokenize(messages)
    cut = template.tokenize(messages, max_length=40)
    assert cut.truncated and not full.truncated
    assert cut.input_ids == full.input_ids[:40] and cut.supervise_mask == full.supervise_mask[:40]


def test_batch_tokenize_equals_single(make_tokenizer):
    tokenizer = make_tokenizer("openchat")
    template = ChatTemplate("openchat", tokenizer)
    convs = [
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
        [{"role": "system", "content": "s"}, {"role": "user", "content": "c"}],
    ]
    assert template.tokenize_batch(convs) == [template.tokenize(c) for c in convs]


@pytest.mark.parametrize(
    "messages, message",
    [
        ([], "non-empty list"),
        ([{"role": "bot", "content": "x"}], "unknown role"),
        ([{"role": "user", "content": 3}], "must be a string"),
        ([{"role": "user", "content": "x"}, {"role": "system", "content": "x"}], "only be the first"),
        (["hello"], "must be an object"),
    ],
)
def test_invalid_conversations_raise_clear_errors(messages, message):
    with pytest.raises(TemplateError, match=message):
        validate_messages(messages)


def test_alternation_is_checked_when_required():
    ok = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    assert validate_messages(ok, require_alternation=True) == ok
    with pytest.raises(TemplateError, match="alternate"):
        validate_messages([{"role": "assistant", "content": "a"}], require_alternation=True)


def test_jinja_rejects_misplaced_system_like_render(make_tokenizer):
    tokenizer = make_tokenizer("openchat")
    bad = [{"role": "user", "content": "u"}, {"role": "system", "content": "s"}]
    with pytest.raises(Exception, match="system message"):
        tokenizer.apply_chat_template(bad, tokenize=False)


def test_bos_required_for_bos_model_types():
    with pytest.raises(TemplateError, match="bos_token"):
        ChatTemplate("openchat", bos_token=None)
    assert ChatTemplate("opencoder").render([{"role": "user", "content": "x"}]).text == "User:x<|end_of_turn|>"


def test_tokenize_ignores_truncation_left_on_the_tokenizer(make_tokenizer):
    tokenizer = make_tokenizer("openchat")
    template = ChatTemplate("openchat", tokenizer)
    messages = [{"role": "user", "content": "hello " * 40}, {"role": "assistant", "content": "world " * 40}]
    full = template.tokenize(messages)
    tokenizer("some text " * 40, truncation=True, max_length=8)  # leaves truncation set on the Rust tokenizer
    assert template.tokenize(messages) == full


@pytest.mark.parametrize("model_type", list_model_types())
def test_chat_template_literals_need_no_unicode_escapes(make_tokenizer, model_type):
    """llama.cpp's template engine rejects ``\\u`` escapes: a GGUF converted from our export must load its template.

    The literals (prefixes, EOT, the neutralisation tables with the zero-width space) hold their characters as
    themselves, and Jinja2 (transformers) and minijinja (TGI) still render exactly what training rendered.
    """
    import re

    import minijinja

    tokenizer = make_tokenizer(model_type)
    template = ChatTemplate(model_type, tokenizer)
    jinja = template.jinja(generation_markers=False)
    assert not re.search(r"\\u[0-9a-fA-F]{4}", jinja)
    assert ZERO_WIDTH_SPACE in jinja
    hostile = 'quote " backslash \\ tab \t newline \n zwsp \u200b ' + " ".join(sorted(template.special_tokens))
    messages = [
        {"role": "user", "content": hostile},
        {"role": "assistant", "content": "é 中文 🙂 " + hostile},
        {"role": "user", "content": "again"},
    ]
    expected = template.render(messages, add_generation_prompt=True).text
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == expected
    env = minijinja.Environment()
    env.add_template("chat", jinja)
    assert env.render_template("chat", messages=messages, add_generation_prompt=True) == expected
