"""The SFT collator: labels from supervise masks, padded and padding-free layouts, loss weights."""

from __future__ import annotations

import pytest
import torch

from openchat_hf.training.collator import DataCollatorForOpenChat
from openchat_hf.training.errors import TrainingError

EXAMPLES = [
    {"input_ids": [1, 10, 11, 12, 13], "supervise_mask": [0, 0, 0, 1, 1], "weight": 2.0},
    {"input_ids": [1, 20, 21], "supervise_mask": [1, 0, 1], "weight": 0.5},
    {"input_ids": [1, 30, 31, 32], "supervise_mask": [0, 1, 1, 1]},
]


def test_padding_free_flattens_with_restarting_positions_and_no_cross_boundary_label():
    batch = DataCollatorForOpenChat(pad_token_id=0, padding_free=True)(EXAMPLES)
    assert batch["input_ids"].tolist() == [[1, 10, 11, 12, 13, 1, 20, 21, 1, 30, 31, 32]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3]]
    # The first token of every conversation is never a target (even when its mask is 1, as in example 2).
    assert batch["labels"].tolist() == [[-100, -100, -100, 12, 13, -100, -100, 21, -100, 30, 31, 32]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 5, 8, 12] == batch["cu_seq_lens_k"].tolist()
    assert batch["cu_seq_lens_q"].dtype == torch.int32
    assert batch["max_length_q"] == batch["max_length_k"] == 5
    assert "attention_mask" not in batch
    assert batch["loss_weights"].tolist() == [[float(x != -100) for x in batch["labels"][0].tolist()]]


def test_padded_mode_pads_right_with_masks():
    batch = DataCollatorForOpenChat(pad_token_id=7, pad_to_multiple_of=4)(EXAMPLES)
    assert batch["input_ids"].shape == (3, 8)
    assert batch["input_ids"][1].tolist() == [1, 20, 21, 7, 7, 7, 7, 7]
    assert batch["attention_mask"][1].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert batch["labels"][1].tolist() == [-100, -100, 21] + [-100] * 5
    assert batch["labels"][2].tolist() == [-100, 30, 31, 32] + [-100] * 4


def test_conversation_mode_and_group_weights():
    collate = DataCollatorForOpenChat(pad_token_id=0, padding_free=True, loss_mode="conversation", use_weights=True)
    weights = collate(EXAMPLES)["loss_weights"][0].tolist()
    # conversation 1: 2 supervised tokens, weight 2 -> 1.0 each; conversation 2: 1 token, weight 0.5;
    # conversation 3: 3 tokens, no weight column -> 1/3 each. Each conversation sums to its weight.
    assert weights[3:5] == pytest.approx([1.0, 1.0])
    assert weights[7] == pytest.approx(0.5)
    assert weights[9:] == pytest.approx([1 / 3] * 3)
    assert sum(weights) == pytest.approx(2.0 + 0.5 + 1.0)


def test_empty_batch_is_one_unsupervised_token():
    for padding_free in (True, False):
        batch = DataCollatorForOpenChat(pad_token_id=3, padding_free=padding_free)([])
        assert batch["input_ids"].tolist() == [[3]]
        assert batch["labels"].tolist() == [[-100]]
        assert batch["loss_weights"].sum() == 0


@pytest.mark.parametrize(
    "example, message",
    [
        ({"input_ids": [1, 2]}, "supervise_mask"),
        ({"input_ids": [1, 2], "supervise_mask": [1]}, "differ in length"),
        ({"input_ids": [], "supervise_mask": []}, "no tokens"),
    ],
)
def test_bad_examples_raise_clear_errors(example, message):
    with pytest.raises(TrainingError, match=message):
        DataCollatorForOpenChat(pad_token_id=0)([example])


def test_unknown_loss_mode():
    with pytest.raises(TrainingError, match="loss_mode"):
        DataCollatorForOpenChat(pad_token_id=0, loss_mode="sequence")
