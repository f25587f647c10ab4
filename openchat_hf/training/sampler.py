"""Multipack: token-budget micro-batches by best-fit-decreasing packing, balanced across ranks and steps.

Each epoch the conversation indices are shuffled (seed + epoch), cut into windows, and each window is packed
best-fit-decreasing into bins of at most ``max_tokens`` tokens (one bin = one padding-free micro-batch). The tail is
then fixed so that no optimizer step is near-empty: the under-filled last bins of the windows are re-packed together,
a still light bin is balanced with the fullest one, and every epoch gets the same number of bins, a multiple of
``num_replicas x gradient_accumulation_steps`` (the fullest bins are split in two to get there), so each optimizer
step has all its micro-batches and no epoch ends on a short accumulation group. Bins are sorted by load and dealt out
``num_replicas`` at a time, so the ranks of one step get bins of similar size. No conversation is ever dropped or cut:
a conversation longer than the budget is an error; when there are not enough conversations to fill every slot, the
missing ones are empty micro-batches (``[]``, which the collator turns into one unsupervised token).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from openchat_hf.training.errors import TrainingError


def pack_bfd(lengths: Sequence[int], indices: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Best-fit-decreasing (as TRL's ``packing_strategy="bfd"``): longest first, each into the fullest bin it fits.

    Packs ``indices`` (by ``lengths[i]``) into bins of at most ``max_tokens`` tokens in ``O(n log n)`` (a sorted list of
    the bins' free space); unlike TRL it never truncates: a conversation over the budget is an error.
    """
    order = sorted(indices, key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (free tokens, bin number), sorted
    for i in order:
        n = lengths[i]
        if n > max_tokens:
            raise TrainingError(
                f"Conversation {i} has {n} tokens, more than the packing budget max_tokens_per_batch={max_tokens}; "
                "raise the budget to at least the longest conversation (or truncate in the data pipeline)."
            )
        k = bisect.bisect_left(free, (n, -1))
        if k < len(free):
            room, b = free.pop(k)
            bins[b].append(i)
            if room > n:
                bisect.insort(free, (room - n, b))
        else:
            bins.append([i])
            if max_tokens > n:
                bisect.insort(free, (max_tokens - n, len(bins) - 1))
    return bins


class MultipackBatchSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches (lists of dataset indices) of at most ``max_tokens`` tokens each.

    Args:
        lengths: token length of every conversation.
        max_tokens: token budget of one micro-batch on one rank.
        num_replicas, rank: data-parallel world size and this process's rank.
        seed: shuffling seed; the plan is a pure function of (seed, epoch, lengths, max_tokens, num_replicas).
        shuffle: shuffle before packing (off: pack in dataset order).
        window: number of conversations packed together (bigger packs tighter, smaller keeps more randomness).
        num_epochs: epochs to plan for; every epoch yields ``len(self)`` batches (the most any of them needs).
        gradient_accumulation_steps: micro-batches per optimizer step; ``len(self)`` is a multiple of it.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_tokens: int,
        *,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        shuffle: bool = True,
        window: int = 4096,
        num_epochs: int = 1,
        gradient_accumulation_steps: int = 1,
    ) -> None:
        if max_tokens <= 0:
            raise TrainingError(f"max_tokens_per_batch must be positive, got {max_tokens}.")
        if not 0 <= rank < num_replicas:
            raise TrainingError(f"rank {rank} is outside 0..{num_replicas - 1}.")
        if len(lengths) == 0:
            raise TrainingError("The training dataset is empty.")
        self.lengths = [int(n) for n in lengths]
        self.max_tokens = max_tokens
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.window = max(1, window)
        self.num_epochs = max(1, num_epochs)
        self.epoch = 0
        self.gradient_accumulation_steps = max(1, gradient_accumulation_steps)
        self._plans: dict[int, list[list[list[int]]]] = {}
        group = self.num_replicas * self.gradient_accumulation_steps
        most = max(len(self._bins(e)) for e in range(self.num_epochs))
        self._num_bins = -(-most // group) * group
        self._num_steps = self._num_bins // self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _bins(self, epoch: int) -> list[list[int]]:
        """First-fit-decreasing bins of ``epoch``, with the under-filled tails of the windows re-packed together."""
        indices = np.arange(len(self.lengths))
        if self.shuffle:
            indices = np.random.default_rng([self.seed, epoch]).permutation(indices)
        bins: list[list[int]] = []
        for start in range(0, len(indices), self.window):
            bins.extend(pack_bfd(self.lengths, indices[start : start + self.window].tolist(), self.max_tokens))
        light = [b for b in bins if self._load(b) < self.max_tokens / 2]
        if len(light) > 1:  # each window leaves its own partly filled bins: pack them together
            bins = [b for b in bins if self._load(b) >= self.max_tokens / 2]
            bins.extend(pack_bfd(self.lengths, [i for b in light for i in b], self.max_tokens))
        return bins

    def _load(self, indices: Sequence[int]) -> int:
        return sum(self.lengths[i] for i in indices)

    def _split(self, indices: list[int], parts: int = 2) -> list[list[int]]:
        """Spread ``indices`` over ``parts`` bins as evenly as possible (longest first, into the lightest bin)."""
        out: list[list[int]] = [[] for _ in range(parts)]
        for i in sorted(indices, key=lambda i: -self.lengths[i]):
            min(out, key=self._load).append(i)
        return out

    def _best_split(self, options: Iterable[tuple[int, list[int]]]) -> tuple[int, list[list[int]] | None]:
        """Of ``(k, items)`` options, the one whose items split in two have the heaviest lighter half."""
        best, best_pair, best_min = -1, None, -1
        for k, items in options:
            if len(items) < 2:
                continue
            pair = self._split(items)
            low = min(map(self._load, pair))
            if low > best_min and max(map(self._load, pair)) <= self.max_tokens:
                best, best_pair, best_min = k, pair, low
        return best, best_pair

    def plan(self, epoch: int) -> list[list[list[int]]]:
        """The steps of ``epoch``: ``steps[s][r]`` is rank ``r``'s micro-batch of step ``s`` (possibly empty)."""
        if epoch not in self._plans:
            bins = sorted(self._bins(epoch), key=self._load)
            if len(bins) > 1 and self._load(bins[0]) < self.max_tokens / 2:
                # the one light bin left: share with it the conversations of the bin that splits most evenly
                k, pair = self._best_split((k, bins[0] + bins[k]) for k in range(1, len(bins)))
                if pair is not None and min(map(self._load, pair)) > self._load(bins[0]):
                    bins[0], bins[k] = pair
            while len(bins) < self._num_bins:  # same count every epoch, whole optimizer steps: split a bin in two
                k, pair = self._best_split(enumerate(bins))
                bins = [*bins[:k], *pair, *bins[k + 1 :]] if pair is not None else [*bins, []]
            loads = [self._load(b) for b in bins]
            # Similar loads side by side, so each step's ranks get bins of similar size; steps in shuffled order.
            bins = [bins[i] for i in sorted(range(len(bins)), key=lambda i: -loads[i])]
            steps = [bins[s : s + self.num_replicas] for s in range(0, len(bins), self.num_replicas)]
            if self.shuffle:
                order = np.random.default_rng([self.seed, epoch, 1]).permutation(len(steps))
                steps = [steps[i] for i in order]
            self._plans = {epoch: steps}  # keep one epoch in memory
        return self._plans[epoch]

    def __iter__(self) -> Iterator[list[int]]:
        for step in self.plan(self.epoch):
            yield step[self.rank]

    def __len__(self) -> int:
        return self._num_steps

    def efficiency(self) -> float:
        """Share of the planned token slots (steps x ranks x budget) filled with real tokens."""
        total = sum(self.lengths)
        return total / (self._num_steps * self.num_replicas * self.max_tokens)
