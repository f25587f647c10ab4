"""Multipack: token-budget micro-batches by first-fit-decreasing packing, balanced across ranks.

Each epoch the conversation indices are shuffled (seed + epoch), cut into windows, and each window is packed
first-fit-decreasing into bins of at most ``max_tokens`` tokens (one bin = one padding-free micro-batch). Bins are
then sorted by load and dealt out ``num_replicas`` at a time, so the ranks of one step get bins of similar size. No
conversation is ever dropped or cut: a conversation longer than the budget is an error, and when the number of bins
is not a multiple of the number of ranks (or differs between epochs) the missing slots are empty micro-batches
(``[]``, which the collator turns into one unsupervised token), so every rank runs the same number of steps in every
epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from openchat_hf.training.errors import TrainingError


def pack_ffd(lengths: Sequence[int], indices: Sequence[int], max_tokens: int) -> list[list[int]]:
    """First-fit-decreasing: pack ``indices`` (by ``lengths[i]``) into bins of at most ``max_tokens`` tokens."""
    order = sorted(indices, key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    loads: list[int] = []
    for i in order:
        n = lengths[i]
        if n > max_tokens:
            raise TrainingError(
                f"Conversation {i} has {n} tokens, more than the packing budget max_tokens_per_batch={max_tokens}; "
                "raise the budget to at least the longest conversation (or truncate in the data pipeline)."
            )
        for b, load in enumerate(loads):
            if load + n <= max_tokens:
                bins[b].append(i)
                loads[b] += n
                break
        else:
            bins.append([i])
            loads.append(n)
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
        self._plans: dict[int, list[list[list[int]]]] = {}
        self._num_steps = max(len(self.plan(e)) for e in range(self.num_epochs))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def plan(self, epoch: int) -> list[list[list[int]]]:
        """The steps of ``epoch``: ``steps[s][r]`` is rank ``r``'s micro-batch of step ``s`` (possibly empty)."""
        if epoch not in self._plans:
            indices = np.arange(len(self.lengths))
            if self.shuffle:
                indices = np.random.default_rng([self.seed, epoch]).permutation(indices)
            bins: list[list[int]] = []
            for start in range(0, len(indices), self.window):
                bins.extend(pack_ffd(self.lengths, indices[start : start + self.window].tolist(), self.max_tokens))
            loads = [sum(self.lengths[i] for i in b) for b in bins]
            # Similar loads side by side, so each step's ranks get bins of similar size; steps in shuffled order.
            bins = [bins[i] for i in sorted(range(len(bins)), key=lambda i: -loads[i])]
            steps = [bins[s : s + self.num_replicas] for s in range(0, len(bins), self.num_replicas)]
            steps[-1] = steps[-1] + [[] for _ in range(self.num_replicas - len(steps[-1]))]
            if self.shuffle:
                order = np.random.default_rng([self.seed, epoch, 1]).permutation(len(steps))
                steps = [steps[i] for i in order]
            self._plans = {epoch: steps}  # keep one epoch in memory
        return self._plans[epoch]

    def __iter__(self) -> Iterator[list[int]]:
        steps = self.plan(self.epoch)
        for step in steps:
            yield step[self.rank]
        for _ in range(self._num_steps - len(steps)):
            yield []

    def __len__(self) -> int:
        return self._num_steps

    def efficiency(self) -> float:
        """Share of the planned token slots (steps x ranks x budget) filled with real tokens."""
        total = sum(self.lengths)
        return total / (self._num_steps * self.num_replicas * self.max_tokens)
