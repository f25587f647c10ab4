"""Near-dedup: clusters, kept representative, the first-turn signature, look-alikes kept, and precision / recall
of the documented defaults on the planted corpus."""

import pytest

from openchat_hf.data import DataPipelineError
from openchat_hf.data.minhash import lsh_bands, normalize_words, signatures, similarity
from openchat_hf.data.near_dedup import FIRST_TURN, TRANSCRIPT, NearDedupConfig, near_dedup
from openchat_hf.data.planted import make_planted_corpus, score

ANSWER = (
    "Time management starts with knowing where your hours go. Track a normal week in fifteen minute blocks, then "
    "sort the blocks into work that moves your goals forward, work that only feels urgent, and time that simply "
    "leaks away. Plan the next day every evening, put the hardest task first, and protect it from meetings and "
    "messages. Batch small chores together, say no to requests that do not fit your priorities, and review the plan "
    "every Friday so the system keeps improving instead of collapsing after a busy week."
)
QUESTION = (
    "I am a project manager with three teams and constant interruptions from chat and email during the day, and I "
    "never seem to finish my own planning work before evening. What can I change?"
)


def c(*turns):
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


def test_normalize_words_and_signatures():
    assert normalize_words("Don't STOP—believin’, ok?") == ["dont", "stop", "believin", "ok"]
    assert normalize_words("Ｆｕｌｌ ｗｉｄｔｈ") == ["full", "width"]
    sigs = signatures([ANSWER.split(), ANSWER.upper().split(), "completely different words here".split(), []], 5, 128)
    assert sigs.shape == (4, 128) and sigs.dtype.name == "uint32"
    assert similarity(sigs[0], signatures([ANSWER.split()], 5, 128)[0]) == 1.0  # stable
    assert similarity(sigs[0], sigs[2]) < 0.1 and (sigs[3] == 0xFFFFFFFF).all()
    bands, rows = lsh_bands(0.5, 128)
    assert bands * rows <= 128 and 1 - (1 - 0.5**rows) ** bands >= 0.99


def test_clusters_keep_longest_and_log_the_link():
    edited = ANSWER.replace("fifteen minute", "15-minute").replace("Friday", "Sunday")
    convs = [
        c(QUESTION, ANSWER),  # 0
        c("Write a limerick about a cat who loves lasagna.", "There once was a cat named Lou..."),  # 1
        c(QUESTION, edited + " Good luck!"),  # 2: lightly edited re-share, longer -> kept
        c(QUESTION.upper(), ANSWER),  # 3: re-cased copy
    ]
    dropped = near_dedup(convs)
    assert [d.index for d in dropped] == [0, 3]
    assert {d.cluster for d in dropped} == {0} and {d.kept for d in dropped} == {2}
    assert all(d.rule == TRANSCRIPT and d.similarity >= 0.5 for d in dropped)
    first = near_dedup(convs, NearDedupConfig(keep="first"))
    assert [d.index for d in first] == [2, 3] and {d.kept for d in first} == {0}
    newest = near_dedup(convs, NearDedupConfig(keep="newest"), timestamps=[5, 0, 1, 2])
    assert {d.kept for d in newest} == {0}
    with pytest.raises(DataPipelineError, match="timestamps"):
        near_dedup(convs, NearDedupConfig(keep="newest"))


def test_first_turn_signature_catches_other_follow_ups_but_not_short_openers():
    follow_a = c(QUESTION, ANSWER, "Thanks! Now make it a checklist.", "1. Track your week 2. Plan the evening before")
    follow_b = c(
        QUESTION,
        ANSWER + " (regenerated)",
        "Can you translate it into Spanish for my team?",
        "Claro, aqui tienes la version en espanol del plan completo de gestion del tiempo.",
    )
    regenerated = c(QUESTION, "Start by blocking two hours every morning for deep work and turn off notifications.")
    dropped = near_dedup([follow_a, follow_b, regenerated])
    assert len(dropped) == 2 and {d.rule for d in dropped} <= {FIRST_TURN, TRANSCRIPT}
    assert any(d.rule == FIRST_TURN for d in dropped)
    # short openers never group unrelated conversations
    hi = [c("hi", ANSWER), c("hi", "Hello! How can I help you today? I can answer questions, write code and more.")]
    assert near_dedup(hi) == []
    assert (
        near_dedup([follow_a, follow_b, regenerated], NearDedupConfig(first_turn_threshold=None))[0].rule == TRANSCRIPT
    )


def test_config_errors():
    with pytest.raises(DataPipelineError, match="threshold"):
        NearDedupConfig(threshold=1.5)
    with pytest.raises(DataPipelineError, match="keep"):
        NearDedupConfig(keep="oldest")


def test_defaults_precision_recall_on_planted_corpus():
    """The documented defaults: no look-alike dropped; copies with <= 5 % of words edited, re-shares with another
    follow-up and regenerated answers found; heavier edits are (by design) not near-duplicates."""
    corpus = make_planted_corpus(1000, seed=2)
    dropped = near_dedup(corpus.conversations())
    result = score(corpus, {}, {d.index: (d.cluster, d.kept) for d in dropped})
    nd = result["near_dedup"]
    assert nd["all"]["false_drops"] == 0
    for kind in ("edit_1pct", "edit_3pct", "edit_5pct", "regenerated"):
        assert nd[kind]["recall"] == 1.0, kind
    assert nd["other_follow_up"]["recall"] >= 0.95
    assert nd["edit_30pct"]["recall"] == 0.0
    for kind in ("lookalike_opener", "lookalike_shared_sentences", "lookalike_topic", "lookalike_oneliner"):
        assert result["kinds"][kind]["near_dropped"] == 0, kind


@pytest.mark.slow
def test_bench_dedup_smoke():
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_data.py"
    res = subprocess.run(
        [sys.executable, str(bench), "--only-dedup", "--dedup-n", "400,800"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| all (the step) |" in res.stdout and "(default) |" in res.stdout
    rows = [line.split("|") for line in res.stdout.splitlines() if line.startswith(("| 400 |", "| 800 |"))]
    assert len(rows) == 2 and all(int(r[9]) > 0 for r in rows)  # near-duplicates found
    assert "Extrapolated (linear, from the two largest sizes) to 1M conversations" in res.stdout
