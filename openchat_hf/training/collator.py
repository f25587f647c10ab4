"""The SFT collator: ``input_ids`` + ``supervise_mask`` (+ ``weight``) -> a padded or a padding-free batch.

The tensors come from TRL's ``DataCollatorForLanguageModeling`` (the same layout as TRL's ``padding_free=True``);
what TRL lacks is added here: labels from the supervise mask, and per-token loss weights.

Labels are ``-100`` wherever the supervise mask is 0. Every batch also carries ``loss_weights`` (float, aligned with
``labels``): the weight of each supervised token in the loss, 0 elsewhere. The trainer sums them over the global batch
to normalise the loss (see :mod:`openchat_hf.training.trainer`):

* ``loss_mode="token"``: weight 1 per supervised token, the loss is the mean over the supervised tokens of the batch;
* ``loss_mode="conversation"``: weight ``1 / n`` for a conversation with ``n`` supervised tokens, the loss is the mean
  of the per-conversation means;
* ``use_weights=True``: each token's weight is further multiplied by its conversation's ``weight`` (OpenChat v2-w).

The first token of each conversation is never a label: a causal LM predicts token ``i`` from position ``i - 1``, which
in a padding-free row is the previous conversation's last token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from openchat_hf.training.errors import TrainingError

LOSS_MODES = ("token", "conversation")


@dataclass
class DataCollatorForOpenChat:
    """Collate pre-tokenized conversations.

    Args:
        pad_token_id: id used to pad (padded mode only).
        padding_free: flatten the batch into one row with ``position_ids`` restarting at each conversation and
            ``cu_seq_lens_q/k`` + ``max_length_q/k`` for varlen kernels; no ``attention_mask``.
        loss_mode: ``"token"`` or ``"conversation"`` (see the module docstring).
        use_weights: multiply each conversation's token weights by its ``weight`` field (1.0 when absent).
        pad_to_multiple_of: pad the padded batch's length to a multiple of this.
    """

    pad_token_id: int
    padding_free: bool = False
    loss_mode: str = "token"
    use_weights: bool = False
    pad_to_multiple_of: int | None = None

    def __post_init__(self) -> None:
        if self.loss_mode not in LOSS_MODES:
            raise TrainingError(f"Unknown loss_mode {self.loss_mode!r}; expected one of {', '.join(LOSS_MODES)}.")

    def _example(self, example: dict[str, Any]) -> tuple[list[int], list[int], list[float]]:
        try:
            ids, mask = list(example["input_ids"]), list(example["supervise_mask"])
        except KeyError as err:
            raise TrainingError(
                f"Training examples need 'input_ids' and 'supervise_mask' columns (missing {err}); tokenize the data "
                "with `openchat-hf data run` or pass a conversational 'messages' dataset."
            ) from None
        if len(ids) != len(mask):
            raise TrainingError(f"input_ids ({len(ids)}) and supervise_mask ({len(mask)}) differ in length.")
        if not ids:
            raise TrainingError("An example has no tokens; drop empty conversations before training.")
        labels = [t if m else -100 for t, m in zip(ids, mask)]
        labels[0] = -100
        n = sum(1 for label in labels if label != -100)
        w = 1.0
        if self.loss_mode == "conversation":
            w = 1.0 / n if n else 0.0
        if self.use_weights:
            w *= float(example.get("weight", 1.0) if example.get("weight") is not None else 1.0)
        weights = [w if label != -100 else 0.0 for label in labels]
        return ids, labels, weights

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        if not examples:
            return self._empty_batch()
        rows = [self._example(e) for e in examples]
        if self.padding_free:
            return self._flatten(rows)
        return self._pad(rows)

    def _empty_batch(self) -> dict[str, Any]:
        """A one-token batch with no label: keeps ranks in step when a sampler has fewer batches for one of them."""
        return (
            self._flatten([([self.pad_token_id], [-100], [0.0])])
            if self.padding_free
            else self._pad([([self.pad_token_id], [-100], [0.0])])
        )

    def _trl_collator(self) -> Any:
        """TRL's own ``DataCollatorForLanguageModeling`` builds the tensors (padded, or padding-free with
        ``position_ids``, ``cu_seq_lens_q/k``, ``max_length_q/k`` and no label at a conversation's first token)."""
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        return DataCollatorForLanguageModeling(
            pad_token_id=self.pad_token_id,
            padding_free=self.padding_free,
            pad_to_multiple_of=None if self.padding_free else self.pad_to_multiple_of,
        )

    def _flatten(self, rows: list[tuple[list[int], list[int], list[float]]]) -> dict[str, Any]:
        batch = self._trl_collator()([{"input_ids": ids, "labels": labels} for ids, labels, _ in rows])
        batch["loss_weights"] = torch.tensor([[w for _, _, ws in rows for w in ws]], dtype=torch.float32)
        return batch

    def _pad(self, rows: list[tuple[list[int], list[int], list[float]]]) -> dict[str, Any]:
        batch = self._trl_collator()([{"input_ids": ids, "labels": labels} for ids, labels, _ in rows])
        weights = torch.zeros(batch["labels"].shape, dtype=torch.float32)
        for i, (_, _, ws) in enumerate(rows):
            weights[i, : len(ws)] = torch.tensor(ws)
        batch["loss_weights"] = weights
        return batch
