"""A synthetic ShareGPT-like corpus with planted benchmark contamination and near-duplicates (known labels).

Used by the tests of the documented defaults and by ``benchmarks/bench_data.py``. Conversations are made of
sentences of the bundled GPT-4 / model answers recombined at random (so no two base conversations are alike), plus:

* contamination: bundled benchmark prompts pasted as a user turn verbatim, re-cased, re-punctuated, wrapped
  ("Can you help me with this: ...") or (prompts of 13+ words) edited, one word in twelve replaced;
* decontamination look-alikes that must be kept: same topic, different question (the prompt's opening with another
  ending, the prompt extended into a different question), greetings and one-liners, MT-bench follow-ups alone;
* near-duplicates of earlier conversations with a known share of words edited, re-shares with another follow-up,
  and regenerated answers;
* near-dedup look-alikes that must be kept: conversations sharing a short opener or a few sentences.

Each record carries ``label`` (``clean`` | ``contaminated`` | ``near_duplicate``), ``kind`` and, for planted
records, ``of`` (the prompt id or the id of the conversation it copies).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

EDIT_LEVELS = (0.01, 0.03, 0.05, 0.1, 0.2, 0.3)
GREETINGS = (
    "hi",
    "Hello!",
    "thanks",
    "Thank you so much!",
    "continue",
    "Can you parallelize it?",
    "Write a poem.",
    "Prove the Pythagorean theorem.",
    "What about in Python?",
    "Make it shorter please.",
)
WRAPPERS = (
    "Can you help me with this: {}",
    "{} Thanks in advance!",
    "Please answer the following question.\n\n{}",
    'My teacher asked us this: "{}"',
)
ENDINGS = (
    "for a small bakery in my town?",
    "when I only have ten minutes a day?",
    "in the context of ancient Rome?",
    "using only a spreadsheet?",
    "for my grandmother who is 90?",
)


@dataclass
class PlantedCorpus:
    records: list[dict]

    def conversations(self) -> list[list[dict[str, str]]]:
        return [r["messages"] for r in self.records]


def sentence_pool() -> list[str]:
    from openchat_hf.data.decontaminate import bundled_prompts
    from openchat_hf.data.minhash import normalize_words
    from openchat_hf.resources import MT_BENCH_DIR, VICUNA_ANSWERS_DIR, VICUNA_BENCH_DIR, read_jsonl

    texts = [r["text"] for p in sorted(VICUNA_ANSWERS_DIR.glob("*.jsonl")) for r in read_jsonl(p)]
    for d in (VICUNA_BENCH_DIR, MT_BENCH_DIR):
        texts += [t for r in read_jsonl(d / "reference_answer_gpt-4.jsonl") for t in r["choices"][0]["turns"]]
    out = {s.strip() for t in texts for s in re.split(r"(?<=[.!?])\s+|\n+", t)}
    # Some benchmark prompts quote passages that their reference answers repeat: keep such text out of the pool.
    grams = set()
    for p in bundled_prompts():
        w = normalize_words(p.text)
        grams.update(tuple(w[i : i + 6]) for i in range(len(w) - 5))
    clean = []
    for s in sorted(out):
        w = normalize_words(s)
        if len(w) >= 5 and not any(tuple(w[i : i + 6]) in grams for i in range(len(w) - 5)):
            clean.append(s)
    return clean


def iter_synthetic(n: int, seed: int = 0, near_dup_rate: float = 0.02, contamination_rate: float = 0.001):
    """``n`` ShareGPT-like conversations generated on the fly (flat memory), with ``near_dup_rate`` lightly edited
    (1-3 % of words) copies of recent ones and ``contamination_rate`` pasted benchmark prompts."""
    from openchat_hf.data.decontaminate import bundled_prompts

    rng = random.Random(seed)
    pool = sentence_pool()
    vocab = sorted({w for s in pool[:2000] for w in s.split()})
    prompts = [p.text for p in bundled_prompts() if not p.follow_up]
    recent: list[list[dict]] = []
    for _ in range(n):
        r = rng.random()
        if recent and r < near_dup_rate:
            messages = [
                {"role": m["role"], "content": edit_words(m["content"], rng.choice((0.01, 0.03)), rng, vocab)}
                for m in rng.choice(recent)
            ]
        else:
            messages = []
            for _ in range(rng.choice((1, 2, 2, 3))):
                user = " ".join(rng.sample(pool, rng.randint(2, 3)))
                answer = " ".join(rng.sample(pool, rng.randint(3, 10)))
                messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
            if r > 1 - contamination_rate:
                messages[0]["content"] = rng.choice(WRAPPERS).format(rng.choice(prompts))
            if len(recent) < 1000:
                recent.append(messages)
            else:
                recent[rng.randrange(1000)] = messages
        yield messages


def edit_words(text: str, share: float, rng: random.Random, vocab: list[str]) -> str:
    """``text`` with ``share`` of its words replaced (60 %), inserted (20 %) or deleted (20 %)."""
    words = text.split()
    if not words:
        return text
    for _ in range(max(1, round(share * len(words)))):
        op, i = rng.random(), rng.randrange(len(words))
        if op < 0.6:
            words[i] = rng.choice(vocab)
        elif op < 0.8:
            words.insert(i, rng.choice(vocab))
        elif len(words) > 1:
            del words[i]
    return " ".join(words)


def make_planted_corpus(n_base: int = 2000, seed: int = 0, *, plant: bool = True) -> PlantedCorpus:
    """``n_base`` clean conversations, then (``plant=True``) contamination, near-duplicates and look-alikes."""
    from openchat_hf.data.decontaminate import bundled_prompts
    from openchat_hf.data.minhash import normalize_words

    rng = random.Random(seed)
    pool = sentence_pool()
    vocab = sorted({w for s in pool[:2000] for w in s.split()})

    def para(lo: int, hi: int) -> str:
        return " ".join(rng.sample(pool, rng.randint(lo, hi)))

    records: list[dict] = []

    def add(messages, label="clean", kind="base", of=None):
        records.append({"id": f"c{len(records):07d}", "messages": messages, "label": label, "kind": kind, "of": of})

    def fresh() -> list[dict]:
        messages = []
        for _ in range(rng.choice((1, 2, 2, 3))):
            messages += [{"role": "user", "content": para(2, 3)}, {"role": "assistant", "content": para(3, 10)}]
        return messages

    for _ in range(n_base):
        add(fresh())
    if not plant:
        return PlantedCorpus(records)
    base = list(records)
    prompts = [p for p in bundled_prompts() if not p.follow_up]

    def with_turn(text: str) -> list[dict]:
        messages = fresh()
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        messages[rng.choice(users)]["content"] = text
        return messages

    for p in rng.sample(prompts, min(len(prompts), 120)):  # contamination, each prompt one way
        long = len(p.text.split()) >= 13
        kind = rng.choice(("verbatim", "recased", "repunctuated", "wrapped") + (("edited",) if long else ()))
        text = p.text
        if kind == "edited":  # one word in 12 replaced: no 13-gram survives
            words = text.split()
            for i in range(rng.randrange(12), len(words), 12):
                words[i] = rng.choice(vocab)
            text = " ".join(words)
        if kind == "recased":
            text = rng.choice((str.upper, str.lower, str.title))(text)
        elif kind == "repunctuated":
            text = (
                re.sub(r"[?.!,]", "", text) if rng.random() < 0.5 else re.sub(r"[?.]", "!!", text).replace(",", " ,")
            )
        elif kind == "wrapped":
            text = rng.choice(WRAPPERS).format(text)
        add(with_turn(text), "contaminated", kind, p.id)
    for p in rng.sample(prompts, 40):  # same topic, different question
        words = p.text.rstrip("?.! ").split()
        if len(words) < 13 and rng.random() < 0.5:  # a short question turned into another one
            text = " ".join(words) + " " + rng.choice(ENDINGS)
        else:
            text = " ".join(words[: max(3, len(words) // 3)]) + " " + " ".join(rng.choice(pool).split()[:8]) + "?"
        add(with_turn(text), "clean", "lookalike_topic", p.id)
    for g in GREETINGS * 3:
        add(with_turn(g), "clean", "lookalike_oneliner")

    for level in EDIT_LEVELS:  # near-duplicates at known edit shares
        for original in rng.sample(base, 40):
            messages = [
                {"role": m["role"], "content": edit_words(m["content"], level, rng, vocab)}
                for m in original["messages"]
            ]
            add(messages, "near_duplicate", f"edit_{int(level * 100)}pct", original["id"])
    long_first = [
        r for r in base if len(normalize_words(r["messages"][0]["content"])) >= 20 and len(r["messages"]) >= 4
    ]
    for original in rng.sample(long_first, 40):  # re-share with another follow-up / a regenerated answer
        messages = [dict(m) for m in original["messages"][:2]]
        messages += [{"role": "user", "content": para(2, 3)}, {"role": "assistant", "content": para(3, 8)}]
        add(messages, "near_duplicate", "other_follow_up", original["id"])
    for original in rng.sample(long_first, 40):
        messages = [dict(original["messages"][0]), {"role": "assistant", "content": para(3, 10)}]
        add(messages, "near_duplicate", "regenerated", original["id"])
    for original in rng.sample(base, 40):  # share a short opener / a few sentences: must be kept
        messages = [{"role": "user", "content": rng.choice(GREETINGS)}, {"role": "assistant", "content": para(3, 8)}]
        add(messages, "clean", "lookalike_opener")
        shared = " ".join(original["messages"][1]["content"].split(". ")[:2])
        messages = [
            {"role": "user", "content": para(2, 3)},
            {"role": "assistant", "content": shared + " " + para(4, 8)},
        ]
        add(messages, "clean", "lookalike_shared_sentences", original["id"])
    return PlantedCorpus(records)


def score(corpus: PlantedCorpus, decontaminated: dict[int, str], near_dropped: dict[int, tuple[int, int]]) -> dict:
    """Precision / recall of each rule on the planted labels.

    ``decontaminated``: index -> rule of the drop; ``near_dropped``: index -> (cluster, kept index). A planted
    near-duplicate counts as found when it and the conversation it copies end up in the same cluster (either may be
    the one kept: the longest is); a drop is a false positive when no planted relation explains it.
    """
    records = corpus.records
    index_of = {r["id"]: i for i, r in enumerate(records)}
    cluster = {i: c for i, (c, _) in near_dropped.items()}
    cluster.update({kept: c for c, kept in near_dropped.values()})
    out: dict = {"decontaminate": {}, "near_dedup": {}}
    contaminated = [i for i, r in enumerate(records) if r["label"] == "contaminated"]
    for rule in sorted(set(decontaminated.values())) + ["all"]:
        hits = {i for i, x in decontaminated.items() if rule in ("all", x)}
        tp = sum(1 for i in hits if records[i]["label"] == "contaminated")
        out["decontaminate"][rule] = {"drops": len(hits), "true": tp, "precision": tp / max(len(hits), 1)}
    out["decontaminate"]["all"]["recall"] = out["decontaminate"]["all"]["true"] / max(len(contaminated), 1)
    by_kind: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_kind.setdefault(r["kind"], []).append(i)
    out["kinds"] = {
        kind: {
            "n": len(ix),
            "decontaminated": sum(i in decontaminated for i in ix),
            "near_dropped": sum(i in near_dropped for i in ix),
        }
        for kind, ix in sorted(by_kind.items())
    }
    explained = set()
    for kind, ix in by_kind.items():
        if not ix or records[ix[0]]["label"] != "near_duplicate":
            continue
        found = 0
        for i in ix:
            j = index_of[records[i]["of"]]
            if i in cluster and cluster.get(j) == cluster[i]:
                found += 1
                explained.update((i, j))
        out["near_dedup"][kind] = {"n": len(ix), "found": found, "recall": found / len(ix)}
    false = [i for i in near_dropped if i not in explained]
    out["near_dedup"]["all"] = {
        "drops": len(near_dropped),
        "false_drops": len(false),
        "precision": 1 - len(false) / max(len(near_dropped), 1),
    }
    return out
