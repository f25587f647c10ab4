"""Conversation-aware near-dedup: MinHash + LSH over each conversation's normalised text.

Two signatures per conversation (rensa R-MinHash of word 5-gram sets, 128 slots):

* ``transcript``: every turn, roles included, so a re-share, a regenerated answer or a lightly edited copy is caught;
* ``first_turn``: the first user turn alone, when it has at least ``min_first_turn_words`` words, so copies that
  differ only in a follow-up (or in the answers) are caught, while short openers ("hi", "write a poem about love")
  never group unrelated conversations.

Candidate pairs come from LSH banding of the signature matrix (bands / rows chosen for the threshold by
:func:`openchat_hf.data.minhash.lsh_bands`); a pair is a near-duplicate when its estimated Jaccard similarity is at
least the threshold of that signature. Near-duplicates are grouped transitively (union-find) into clusters and one
representative per cluster is kept: the longest transcript (``keep="longest"``, ties: the earliest), the earliest
(``"first"``) or the most recent by a timestamp the source gives (``"newest"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from openchat_hf.data.errors import DataPipelineError
from openchat_hf.data.minhash import band_keys, lsh_bands, normalize_words, signatures, similarity

NEAR_DUPLICATE = "near_duplicate"
TRANSCRIPT = "transcript"
FIRST_TURN = "first_turn"
KEEP_CHOICES = ("longest", "first", "newest")


@dataclass
class NearDedupConfig:
    """Near-dedup settings.

    Attributes:
        threshold: estimated Jaccard similarity of two transcripts' word ``shingle``-gram sets from which they are
            near-duplicates.
        first_turn_threshold: the same for the first user turns (``None``: don't compare first turns).
        min_first_turn_words: first user turns with fewer words are not compared.
        shingle: words per shingle.
        num_perm: MinHash signature size.
        keep: which conversation of a cluster is kept: ``longest``, ``first`` or ``newest``.
        batch_size: conversations per signature batch.
    """

    threshold: float = 0.5
    first_turn_threshold: float | None = 0.8
    min_first_turn_words: int = 20
    shingle: int = 5
    num_perm: int = 128
    keep: str = "longest"
    batch_size: int = 4096

    def __post_init__(self) -> None:
        for name in ("threshold", "first_turn_threshold"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 1:
                raise DataPipelineError(f"near-dedup {name} must be in (0, 1], got {value}.")
        if self.keep not in KEEP_CHOICES:
            raise DataPipelineError(f"near-dedup keep must be one of {KEEP_CHOICES}, got {self.keep!r}.")


@dataclass(frozen=True)
class NearDuplicate:
    """A dropped conversation: its cluster (the smallest index in it), the kept one, and the link that joined it."""

    index: int
    cluster: int
    kept: int
    rule: str
    similarity: float


def transcript_words(messages: Sequence[dict[str, str]]) -> list[str]:
    words: list[str] = []
    for m in messages:
        words.append(f"<{m['role']}>")
        words += normalize_words(m["content"])
    return words


def first_turn_words(messages: Sequence[dict[str, str]]) -> list[str]:
    return next((normalize_words(m["content"]) for m in messages if m["role"] == "user"), [])


class NearDeduplicator:
    """Collects signatures batch by batch (:meth:`add`), then clusters (:meth:`finish`)."""

    def __init__(self, config: NearDedupConfig | None = None) -> None:
        self.config = config or NearDedupConfig()
        self._sigs: dict[str, list[np.ndarray]] = {TRANSCRIPT: [], FIRST_TURN: []}
        self._first_rows: list[np.ndarray] = []
        self._lengths: list[int] = []
        self._n = 0

    def add(self, conversations: Sequence[Sequence[dict[str, str]]]) -> None:
        cfg = self.config
        transcripts = [transcript_words(m) for m in conversations]
        self._sigs[TRANSCRIPT].append(signatures(transcripts, cfg.shingle, cfg.num_perm))
        self._lengths += [sum(len(m["content"]) for m in messages) for messages in conversations]
        if cfg.first_turn_threshold is not None:
            firsts = [first_turn_words(m) for m in conversations]
            rows = [i for i, w in enumerate(firsts) if len(w) >= cfg.min_first_turn_words]
            self._sigs[FIRST_TURN].append(signatures([firsts[i] for i in rows], cfg.shingle, cfg.num_perm))
            self._first_rows.append(np.asarray(rows, dtype=np.int64) + self._n)
        self._n += len(conversations)

    def finish(self, timestamps: Sequence[float] | None = None) -> list[NearDuplicate]:
        """Cluster everything added; return the dropped conversations (by input index, ascending)."""
        cfg = self.config
        parent = np.arange(self._n)
        link: dict[int, tuple[str, float]] = {}

        def find(x: int) -> int:
            root = x
            while parent[root] != root:
                root = parent[root]
            while parent[x] != root:
                parent[x], x = root, parent[x]
            return root

        kinds = [(TRANSCRIPT, cfg.threshold, None)]
        if cfg.first_turn_threshold is not None:
            kinds.append((FIRST_TURN, cfg.first_turn_threshold, np.concatenate(self._first_rows or [[]])))
        for kind, threshold, rows in kinds:
            sigs = np.concatenate(self._sigs[kind]) if self._sigs[kind] else np.zeros((0, cfg.num_perm), np.uint32)
            index = np.arange(len(sigs)) if rows is None else rows.astype(np.int64)
            for a, b, s in _similar_pairs(sigs, threshold):
                ia, ib = int(index[a]), int(index[b])
                ra, rb = find(ia), find(ib)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
                    link.setdefault(max(ia, ib), (kind, s))
                    link.setdefault(min(ia, ib), (kind, s))
        if not link:
            return []
        if cfg.keep == "newest" and timestamps is None:
            raise DataPipelineError('near-dedup keep="newest" needs timestamps from the source.')
        members: dict[int, list[int]] = {}
        for i in sorted(link):
            members.setdefault(find(i), []).append(i)
        dropped = []
        for cluster, group in members.items():
            if cfg.keep == "first":
                kept = min(group)
            elif cfg.keep == "newest":
                kept = max(group, key=lambda i: (timestamps[i], -i))
            else:
                kept = max(group, key=lambda i: (self._lengths[i], -i))
            dropped += [NearDuplicate(i, cluster, kept, *link[i]) for i in group if i != kept]
        return sorted(dropped, key=lambda d: d.index)


def _similar_pairs(sigs: np.ndarray, threshold: float):
    """Pairs ``(a, b, similarity)`` of signature rows that share an LSH band and reach ``threshold``."""
    n, num_perm = sigs.shape
    if n < 2:
        return
    bands, rows = lsh_bands(threshold, num_perm)
    empty = (sigs == np.uint32(0xFFFFFFFF)).all(axis=1)
    seen: set[tuple[int, int]] = set()
    keys = band_keys(sigs, bands, rows)
    for b in range(bands):
        band = keys[:, b]
        order = np.argsort(band, kind="stable")
        ordered = band[order]
        same = ordered[1:] == ordered[:-1]
        if not same.any():
            continue
        # Each row in a run of equal band values is compared with the run's first row.
        run_start = np.maximum.accumulate(np.where(np.concatenate([[True], ~same]), np.arange(n), 0))
        second = np.flatnonzero(np.concatenate([[False], same]))
        a, c = order[run_start[second]], order[second]
        keep = ~(empty[a] | empty[c])
        a, c = a[keep], c[keep]
        sims = similarity(sigs[a], sigs[c])
        for x, y, s in zip(a.tolist(), c.tolist(), sims.tolist()):
            pair = (min(x, y), max(x, y))
            if s >= threshold and pair not in seen:
                seen.add(pair)
                yield pair[0], pair[1], round(s, 4)


def near_dedup(
    conversations: Sequence[Sequence[dict[str, str]]],
    config: NearDedupConfig | None = None,
    timestamps: Sequence[float] | None = None,
) -> list[NearDuplicate]:
    """Near-duplicates of ``conversations`` (lists of ``{role, content}``) to drop, one kept per cluster."""
    dedup = NearDeduplicator(config)
    size = dedup.config.batch_size
    for start in range(0, len(conversations), size):
        dedup.add(conversations[start : start + size])
    return dedup.finish(timestamps)


def near_dedup_step(cleaned, rows: Sequence[int], config: NearDedupConfig, log, batch_size: int = 2048):
    """The pipeline step over the cleaned dataset's ``rows`` (those that passed every earlier step): log each
    dropped near-duplicate (cluster, kept representative) to the drop log ``log``; ``(kept rows, summary)``."""
    from tqdm.auto import tqdm

    rows = list(rows)
    dedup = NearDeduplicator(config)
    messages_column = cleaned.select_columns(["messages"])  # one Python list per batch (a Column is lazy)
    with tqdm(total=len(rows), desc="near-dedup", unit="conv") as bar:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            dedup.add(messages_column.select(chunk)[:]["messages"])
            bar.update(len(chunk))
    dropped = dedup.finish()
    involved = sorted({x for d in dropped for x in (d.index, d.cluster, d.kept)})
    info = cleaned.select([rows[i] for i in involved]).select_columns(["id", "has_id", "source", "index", "messages"])
    meta = {i: dict(zip(info.column_names, values)) for i, values in zip(involved, zip(*info.to_dict().values()))}

    def name(i: int) -> str:
        m = meta[i]
        return m["id"] if m["has_id"] else f"{m['source']}#{m['index']}"

    for d in dropped:
        me, kept = meta[d.index], meta[d.kept]
        log.add(
            "near_dedup",
            NEAR_DUPLICATE,
            source=me["source"],
            index=me["index"],
            id=me["id"] if me["has_id"] else None,
            excerpt=conversation_excerpt(me["messages"]),
            cluster=name(d.cluster),
            kept_id=name(d.kept),
            kept_source=kept["source"],
            kept_index=kept["index"],
            kept_excerpt=conversation_excerpt(kept["messages"]),
            rule=d.rule,
            similarity=d.similarity,
        )
    gone = {rows[d.index] for d in dropped}
    summary = {
        "threshold": config.threshold,
        "first_turn_threshold": config.first_turn_threshold,
        "keep": config.keep,
        "clusters": len({d.cluster for d in dropped}),
        "dropped": len(dropped),
    }
    return [r for r in rows if r not in gone], summary


def conversation_excerpt(messages: Sequence[dict[str, str]]) -> str:
    """The first user turn and the start of the first answer, on one line."""
    from openchat_hf.data.droplog import excerpt

    return excerpt(" / ".join(m["content"][:200] for m in messages[:2]))
