"""Decontamination against benchmark prompts: each rule, the short-prompt rule's false positives, prompt files,
and precision / recall of the documented defaults on the planted corpus."""

import json

import pytest

from openchat_hf.data import DataPipelineError
from openchat_hf.data.decontaminate import (
    EXACT,
    MINHASH,
    NGRAM,
    SHORT,
    DecontaminationConfig,
    Decontaminator,
    Prompt,
    build_decontaminator,
    bundled_prompts,
    first_match,
    load_prompts,
)
from openchat_hf.data.planted import GREETINGS, make_planted_corpus, score

TIME = "How can I improve my time management skills?"  # vicuna_bench/1, 8 words (short)
BLOG = (  # vicuna_bench/77 == mt_bench/81, 17 words (long)
    "Compose an engaging travel blog post about a recent trip to Hawaii, highlighting cultural experiences and "
    "must-see attractions."
)


def conv(*user_turns):
    out = []
    for t in user_turns:
        out += [{"role": "user", "content": t}, {"role": "assistant", "content": "Sure, here is an answer."}]
    return out


@pytest.fixture(scope="module")
def deco():
    return build_decontaminator()


def test_bundled_prompts_and_ignored_follow_ups():
    prompts = bundled_prompts()
    assert len(prompts) == 80 + 160
    assert {p.id for p in prompts} >= {"vicuna_bench/1", "mt_bench/81", "mt_bench/81/turn2"}
    d = Decontaminator(prompts)
    # short MT-bench follow-ups ("Can you parallelize it?") are ignored; no first turn is
    assert all(pid.endswith(("turn2",)) for pid in d.ignored) and "mt_bench/121/turn2" in d.ignored
    assert d.num_prompts == 240 - len(d.ignored)


@pytest.mark.parametrize(
    "text, rule",
    [
        (TIME, EXACT),
        ("HOW CAN I IMPROVE MY TIME-MANAGEMENT SKILLS", EXACT),  # re-cased, re-punctuated
        ("how can i improve my time management skills!!", EXACT),
        ("Can you help me with this: " + TIME, SHORT),  # wrapped short prompt
        ('My teacher asked us this: "' + TIME + '" What should I say?', SHORT),
        (BLOG, EXACT),
        ("Can you help me with this: " + BLOG + " Keep it under 500 words please.", NGRAM),
    ],
)
def test_contaminated_turns(deco, text, rule):
    found = deco.check([conv("Hello there, I have a question.", text)])[0]
    match = first_match(found)
    assert match is not None and match.rule == rule and match.turn == 2
    assert match.prompt_id in ("vicuna_bench/1", "vicuna_bench/77")


def test_minhash_catches_a_lightly_edited_long_prompt(deco):
    prompt = (
        "Draft a professional email seeking your supervisor's feedback on the 'Quarterly Financial Report' you "
        "prepared. Ask specifically about the data analysis, presentation style, and the clarity of conclusions drawn. Keep the email short and to the point."
    )
    assert prompt in {p.text for p in bundled_prompts()}
    # one word changed every ~12 words: no 13-gram of the prompt survives, most 3-grams do
    edited = prompt.replace("professional", "formal").replace("presentation style", "presentation layout")
    edited = edited.replace("short and", "brief and")
    found = deco.check([conv(edited)])[0]
    assert MINHASH in found and found[MINHASH].score >= 0.5
    assert NGRAM not in found and EXACT not in found


@pytest.mark.parametrize(
    "text",
    [
        *GREETINGS,  # greetings, one-liners and MT-bench follow-ups alone
        "How can I improve my time management skills as a nurse working night shifts?",  # a different question
        "How can I improve my cooking skills?",
        "Compose an engaging travel blog post about my cat.",
        # a long message that quotes a short prompt in passing
        "I run a team of twelve engineers across three time zones and we keep missing deadlines because meetings "
        "eat the whole day. How can I improve my time management skills? Also, what tools do you recommend for "
        "tracking work, and how should I talk to my manager about the meeting load?",
    ],
)
def test_no_false_positives(deco, text):
    assert deco.check([conv(text)])[0] == {}


def test_every_rule_is_reported_on_its_own(deco):
    found = deco.check([conv("Can you help me with this: " + BLOG)])[0]
    assert set(found) == {NGRAM, MINHASH}  # the wrapper is short: both long-prompt rules fire
    assert first_match(found).rule == NGRAM


def test_prompt_files(tmp_path):
    alpaca = tmp_path / "alpaca_eval.json"
    alpaca.write_text(
        json.dumps(
            [
                {
                    "instruction": "What are the names of some famous actors that started their careers on Broadway?",
                    "output": "x",
                }
            ]
        )
    )
    arena = tmp_path / "arena.jsonl"
    arena.write_text(
        json.dumps(
            {"question_id": "abc", "turns": [{"content": "Write a haiku about rust and borrow checkers please"}]}
        )
        + "\n"
    )
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(["Explain the offside rule in football to a complete beginner"]))
    assert [p.id for p in load_prompts(alpaca)] == ["alpaca_eval/0"]
    assert load_prompts(arena) == [Prompt("arena/abc", "Write a haiku about rust and borrow checkers please")]
    d = build_decontaminator([alpaca, arena, plain], bundled=False)
    found = d.check([conv("write a haiku about Rust and borrow-checkers, please!"), conv(TIME)])
    assert found[0][EXACT].prompt_id == "arena/abc" and found[1] == {}
    for bad, message in (("{not json", "not JSON"), ('[{"foo": 1}]', "no prompt text")):
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(DataPipelineError, match=message):
            load_prompts(tmp_path / "bad.json")
    with pytest.raises(DataPipelineError, match="Cannot read"):
        load_prompts(tmp_path / "missing.jsonl")
    with pytest.raises(DataPipelineError, match="ngram_threshold"):
        DecontaminationConfig(ngram_threshold=0)


def test_defaults_precision_recall_on_planted_corpus():
    """The documented defaults on the planted corpus: every pasted prompt found, most edited ones, no look-alike."""
    corpus = make_planted_corpus(1000, seed=1)
    found = build_decontaminator().check(corpus.conversations())
    drops = {i: first_match(f).rule for i, f in enumerate(found) if f}
    result = score(corpus, drops, {})
    assert result["decontaminate"]["all"]["precision"] == 1.0
    assert result["decontaminate"]["all"]["recall"] >= 0.95
    edited = result["kinds"]["edited"]
    assert edited["decontaminated"] >= 0.6 * edited["n"] > 0  # MinHash: one word in 12 replaced
    for kind in ("lookalike_topic", "lookalike_oneliner", "base"):
        assert result["kinds"][kind]["decontaminated"] == 0, kind
    for kind in ("verbatim", "recased", "repunctuated", "wrapped"):
        assert result["kinds"][kind]["decontaminated"] == result["kinds"][kind]["n"] > 0, kind


def test_bundled_benchmarks_can_be_chosen():
    """``--decontaminate-benchmarks vicuna_bench`` (the demo's choice) flags Vicuna-bench prompts, not MT-bench ones."""
    from openchat_hf.resources import MT_BENCH_DIR, VICUNA_BENCH_DIR

    vicuna = json.loads((VICUNA_BENCH_DIR / "question.jsonl").read_text().splitlines()[0])
    # (MT-bench's first question, the Hawaii travel post, is also Vicuna-bench's 77th: take a math one)
    mt_rows = [json.loads(line) for line in (MT_BENCH_DIR / "question.jsonl").read_text().splitlines()]
    mt = next(q for q in mt_rows if q["category"] == "math")
    chats = [
        [
            {"role": "user", "content": q["turns"][0] if "turns" in q else q["text"]},
            {"role": "assistant", "content": "x"},
        ]
        for q in (vicuna, mt)
    ]
    only_vicuna = build_decontaminator(bundled=["vicuna_bench"]).check(chats)
    both = build_decontaminator().check(chats)
    assert only_vicuna[0] and not only_vicuna[1]
    assert both[0] and both[1]
    assert not any(build_decontaminator(bundled=False).check(chats))
    with pytest.raises(DataPipelineError, match="vicuna_bench, mt_bench"):
        build_decontaminator(bundled=["alpaca_eval"])
