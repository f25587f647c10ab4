"""Loss equivalences: padded == padding-free, one batch == micro-batches (gradient accumulation), loss modes."""

from __future__ import annotations

import datasets
import pytest
import torch
from training_helpers import tokenized_rows

from openchat_hf.training.config import OpenChatSFTConfig
from openchat_hf.training.trainer import OpenChatSFTTrainer, weighted_nll


def make_trainer(model, tokenizer, tmp_path, rows, **kwargs):
    args = OpenChatSFTConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", logging_steps=1, **kwargs
    )
    return OpenChatSFTTrainer(
        model=model, args=args, train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer
    )


def grads(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def assert_grads_close(a, b, rtol=1e-4, atol=1e-6):
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=rtol, atol=atol, msg=name)


@pytest.mark.parametrize("attn", ["sdpa", "eager", "flex_attention"])
def test_padded_and_padding_free_give_same_loss_and_gradients(fresh_model, patched_tokenizer, tmp_path, attn):
    """Same loss and gradients; flex_attention has no backward on CPU, so there only the loss (gradients on GPU)."""
    rows = tokenized_rows(patched_tokenizer, 6, max_length=96, seed=1)
    assert len({r["length"] for r in rows}) > 1  # really different lengths, so padding happens
    model = fresh_model(attn)
    trainer = make_trainer(model, patched_tokenizer, tmp_path, rows)
    padded = trainer.data_collator.__class__(pad_token_id=patched_tokenizer.pad_token_id, padding_free=False)(rows)
    flat = trainer.data_collator.__class__(pad_token_id=patched_tokenizer.pad_token_id, padding_free=True)(rows)
    backward = attn != "flex_attention" or torch.cuda.is_available()
    results = []
    for batch in (padded, flat):
        with torch.set_grad_enabled(backward):
            total, weight, _ = weighted_nll(trainer.model, batch)
        if backward:
            (total / weight).backward()
        results.append(((total / weight).item(), grads(trainer.model) if backward else None))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    if backward:
        assert_grads_close(results[0][1], results[1][1])


@pytest.mark.parametrize("padding_free", [True, False])
@pytest.mark.parametrize("loss_mode", ["token", "conversation"])
def test_one_batch_equals_micro_batches(fresh_model, patched_tokenizer, tmp_path, padding_free, loss_mode):
    rows = tokenized_rows(patched_tokenizer, 8, max_length=128, seed=2, weights=True)
    model = fresh_model()
    trainer = make_trainer(
        model, patched_tokenizer, tmp_path, rows, padding_free=padding_free, loss_mode=loss_mode, use_weights=True
    )
    collate = trainer.data_collator
    whole = [collate(rows)]
    split = [collate(rows[:1]), collate(rows[1:4]), collate(rows[4:])]
    losses = []
    for batches in (whole, split):
        n = trainer._get_num_items_in_batch(batches, torch.device("cpu"))
        loss = 0.0
        for batch in batches:
            step_loss = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=n)
            step_loss.backward()
            loss += step_loss.item()
        losses.append((loss, grads(trainer.model)))
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-5)
    assert_grads_close(losses[0][1], losses[1][1])
    # The naive alternative (mean of micro-batch means) differs, so the check above can fail.
    naive = []
    with torch.no_grad():
        for batch in split:
            total, weight, _ = weighted_nll(trainer.model, batch)
            naive.append((total / weight).item())
    assert sum(naive) / len(naive) != pytest.approx(losses[0][0], rel=1e-3)


def test_loss_modes_match_reference_definitions(fresh_model, patched_tokenizer, tmp_path):
    rows = tokenized_rows(patched_tokenizer, 5, max_length=128, seed=3, weights=True)
    model = fresh_model()
    with torch.no_grad():  # reference: each conversation alone, the model's own mean loss over its targets
        per_conv, counts = [], []
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            labels = torch.tensor([[t if m else -100 for t, m in zip(row["input_ids"], row["supervise_mask"])]])
            per_conv.append(model(input_ids=ids, labels=labels).loss.item())
            counts.append(int((labels[0, 1:] != -100).sum()))
    weights = [r["weight"] for r in rows]
    expected = {
        ("token", False): sum(loss * c for loss, c in zip(per_conv, counts)) / sum(counts),
        ("conversation", False): sum(per_conv) / len(per_conv),
        ("token", True): sum(loss * c * w for loss, c, w in zip(per_conv, counts, weights))
        / sum(c * w for c, w in zip(counts, weights)),
        ("conversation", True): sum(loss * w for loss, w in zip(per_conv, weights)) / sum(weights),
    }
    for (mode, use_weights), value in expected.items():
        trainer = make_trainer(model, patched_tokenizer, tmp_path, rows, loss_mode=mode, use_weights=use_weights)
        batch = trainer.data_collator(rows)
        with torch.no_grad():
            n = trainer._get_num_items_in_batch([batch], torch.device("cpu"))
            loss = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=n).item()
        assert loss == pytest.approx(value, rel=1e-5), (mode, use_weights)
