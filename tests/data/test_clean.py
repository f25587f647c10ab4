"""Cleaning: each drop reason, trimming, word-aware blocked words, and a stable content hash."""

import subprocess
import sys

import pytest

from openchat_hf.data.clean import (
    DEFAULT_BLOCKED_WORDS,
    blocked_words_pattern,
    clean_batch,
    clean_conversation,
    content_hash,
    read_blocked_words,
)
from openchat_hf.data.errors import DataPipelineError

H, G = "human", "gpt"
PAT = blocked_words_pattern(DEFAULT_BLOCKED_WORDS)


def turns(*pairs):
    return [{"from": r, "value": v} for r, v in pairs]


def test_default_list_reproduces_openchat_v1():
    assert DEFAULT_BLOCKED_WORDS == ("openai",)


def test_kept_conversation_is_converted():
    messages, reason = clean_conversation(turns((H, "Hi"), (G, "<p><strong>Hello</strong></p>")), blocked=PAT)
    assert reason == ""
    assert messages == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "**Hello**"}]


@pytest.mark.parametrize(
    "conv, reason",
    [
        (turns((H, "Hi")), "too_short"),
        (turns((G, "Hello"), (H, "Hi")), "too_short"),
        (turns((H, "a"), (H, "b"), (G, "c")), "wrong_roles"),
        (turns((H, "a"), (G, "b"), (G, "c"), (H, "d"), (G, "e")), "wrong_roles"),
        (turns((H, "a"), ("alien", "b")), "wrong_roles"),
        (turns((H, "a"), (G, "<div>1 / 2</div><p></p>")), "empty_turn"),
        (turns((H, "a"), (G, "Made by OpenAI's team.")), "blocked_words"),
        (turns((H, "see https://openai.com/x"), (G, "ok")), "blocked_words"),
    ],
)
def test_drop_reasons(conv, reason):
    assert clean_conversation(conv, blocked=PAT) == ([], reason)


def test_parse_error_is_a_reason(monkeypatch):
    import openchat_hf.data.clean as clean

    def boom(value):
        raise RuntimeError("parser crashed")

    monkeypatch.setattr(clean, "to_markdown", boom)
    assert clean_conversation(turns((H, "a"), (G, "<p>b</p>")))[1] == "parse_error"


def test_trims_leading_assistant_and_trailing_user_turns():
    messages, reason = clean_conversation(turns((G, "Hello!"), (H, "q"), (G, "a"), (H, "thanks")))
    assert reason == "" and [m["content"] for m in messages] == ["q", "a"]


def test_system_message_kept_first():
    conv = [{"from": "system", "value": "Be brief."}, *turns((H, "q"), (G, "a"))]
    messages, _ = clean_conversation(conv, already_clean=True)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]


@pytest.mark.parametrize(
    "text, blocked",
    [
        ("OpenAI", True),
        ("openai.com", True),
        ("Open AI", False),
        ("reopenaid", False),
        ("openairlines", False),
        ("openairlines, made by OpenAI", True),  # the first plain hit is inside a word, a later one is whole
    ],
)
def test_blocked_words_are_word_aware(text, blocked):
    assert bool(PAT.search(text)) is blocked


def test_custom_blocked_words_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# phrases\nas an AI language model\n\nI'm sorry\n", encoding="utf-8")
    words = read_blocked_words(path)
    assert words == ["as an AI language model", "I'm sorry"]
    pattern = blocked_words_pattern(words)
    assert pattern.search("Well, As an AI Language Model, I can't.") and pattern.search("I'm sorry.")
    assert not pattern.search("the openai logo")
    with pytest.raises(DataPipelineError, match="blocked-words file"):
        read_blocked_words(tmp_path / "missing.txt")


def test_hash_depends_on_roles_and_content():
    a = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    assert content_hash(a) == content_hash([dict(m) for m in a])
    assert content_hash(a) != content_hash([{"role": "user", "content": "xy"}, {"role": "assistant", "content": ""}])
    assert content_hash(a) != content_hash([{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}])


def test_hash_is_stable_across_processes():
    code = (
        "from openchat_hf.data.clean import content_hash;"
        "print(content_hash([{'role': 'user', 'content': 'héllo'}, {'role': 'assistant', 'content': 'wörld'}]))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout.strip()
        for seed in ("1", "2")
    }
    here = content_hash([{"role": "user", "content": "héllo"}, {"role": "assistant", "content": "wörld"}])
    assert outs == {here}


def test_clean_batch_keeps_read_errors_and_hashes_kept_rows():
    batch = {
        "turns": [turns((H, "q"), (G, "a")), [], turns((H, "q"))],
        "clean": [False, False, False],
        "error": ["", "not_utf8", ""],
        "detail": ["", "byte 0xe9 at offset 3 is not UTF-8", ""],
        "source": ["a.html", "b.html", "c.json"],
    }
    out = clean_batch(batch, blocked_words=("openai",))
    assert out["reason"] == ["", "not_utf8", "too_short"]
    assert out["hash"][0] and out["hash"][1:] == ["", ""]
    assert out["excerpt"] == [
        "q",
        "byte 0xe9 at offset 3 is not UTF-8",
        "fewer than 2 user/assistant turns after trimming (roles: human)",
    ]
