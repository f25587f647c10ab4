"""Text normalisation, word n-gram hashes and MinHash signatures shared by decontamination and near-dedup.

Words: NFKC, lower case, apostrophes removed (``don't`` -> ``dont``), every other punctuation mark a separator, then
whitespace split. Hashes are stable across processes and runs (rensa's FxHash of each word, then a polynomial rolling
hash of ``k`` consecutive word hashes), so the same corpus always gives the same signatures and the same drops.
MinHash signatures are rensa's R-MinHash (Rust; 32-bit slots) computed from those n-gram hashes in one call per batch.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Sequence
from itertools import chain

import numpy as np

_DELETE = "'’‘`´"
_SEPARATORS = (
    "".join(c for c in string.punctuation if c not in _DELETE)
    + "“”„«»‹›–—―…·•¡¿、。，．：；！？「」『』（）【】《》〈〉"
)
_TABLE = str.maketrans({**{c: " " for c in _SEPARATORS}, **{c: None for c in _DELETE}})
_MULT = np.uint64(0x9E3779B97F4A7C15)
SEED = 1


def normalize_words(text: str) -> list[str]:
    """The normalised words of ``text`` (case, punctuation and Unicode width don't matter)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.lower().translate(_TABLE).split()


def word_hashes(docs: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """All docs' word hashes as one flat ``uint64`` array and each doc's word count.

    Words repeat (Zipf), so each distinct word is hashed once (rensa, in Rust) and looked up afterwards.
    """
    import rensa

    lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
    words = list(chain.from_iterable(docs))
    missing = [w for w in set(words) if w not in _WORD_HASHES]
    if missing:
        if len(_WORD_HASHES) + len(missing) > _MAX_CACHED:
            _WORD_HASHES.clear()
            missing = list(set(words))
        _WORD_HASHES.update(zip(missing, rensa.RMinHash.hash_token_sets([missing])[0]))
    flat = np.fromiter(map(_WORD_HASHES.__getitem__, words), dtype=np.uint64, count=len(words))
    return flat, lengths


_WORD_HASHES: dict[str, int] = {}
_MAX_CACHED = 1 << 21


def ngram_hashes(
    flat: np.ndarray, lengths: np.ndarray, k: int, *, short: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every run of ``k`` consecutive words inside each doc: ``(flat hashes, count per doc)``.

    ``short=True`` gives a doc with fewer than ``k`` (but some) words one hash of all its words, so it still has a
    signature; ``short=False`` gives it none.
    """
    n = len(flat)
    counts = np.maximum(lengths - k + 1, 0)
    if n >= k:
        rolled = flat[: n - k + 1].copy()
        with np.errstate(over="ignore"):
            for j in range(1, k):
                rolled = rolled * _MULT + flat[j : n - k + 1 + j]
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        doc = np.repeat(np.arange(len(lengths)), lengths)[: n - k + 1]
        keep = np.arange(n - k + 1) - starts[doc] < counts[doc]
        hashes = rolled[keep]
    else:
        hashes = np.zeros(0, dtype=np.uint64)
    if short and ((lengths > 0) & (lengths < k)).any():
        pieces, new_counts, start, pos = [], counts.copy(), 0, 0
        for i, (length, c) in enumerate(zip(lengths.tolist(), counts.tolist())):
            if 0 < length < k:
                h = flat[start]
                with np.errstate(over="ignore"):
                    for j in range(1, length):
                        h = h * _MULT + flat[start + j]
                pieces += [hashes[pos : pos + c], np.array([h], dtype=np.uint64)]
                new_counts[i] = 1
            else:
                pieces.append(hashes[pos : pos + c])
            start += length
            pos += c
        hashes, counts = np.concatenate(pieces), new_counts
    return hashes, counts


def signatures(docs: Sequence[Sequence[str]], k: int, num_perm: int, seed: int = SEED) -> np.ndarray:
    """R-MinHash signatures (``uint32``, one row per doc) of the docs' word ``k``-gram sets; empty docs get
    all-``0xFFFFFFFF`` rows (see :func:`similarity`)."""
    import rensa

    if not docs:
        return np.zeros((0, num_perm), dtype=np.uint32)
    flat, lengths = word_hashes(docs)
    hashes, counts = ngram_hashes(flat, lengths, k)
    offsets = np.zeros(len(docs) + 1, dtype=np.uint64)
    np.cumsum(counts, out=offsets[1:])
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets, num_perm, seed)
    return np.array(matrix.to_rows(), dtype=np.uint32)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of signature rows ``a`` and ``b`` (broadcast over leading axes)."""
    return (a == b).mean(axis=-1)


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """``(bands, rows)`` with ``bands * rows <= num_perm`` whose LSH S-curve ``1 - (1 - s**rows)**bands`` keeps
    at least 99 % of the pairs at ``threshold`` and lets through the fewest pairs below ``threshold - 0.2``."""
    best = None
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        recall = 1 - (1 - threshold**rows) ** bands
        noise = 1 - (1 - max(threshold - 0.2, 0.0) ** rows) ** bands
        if recall >= 0.99 and (best is None or noise < best[0]):
            best = (noise, bands, rows)
    return (best[1], best[2]) if best else (num_perm, 1)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (signature, LSH band): rows with an equal band have an equal key (``(n, bands)``)."""
    keys = np.zeros((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            keys = keys * _MULT + sigs[:, r : bands * rows : rows].astype(np.uint64)
    return keys
