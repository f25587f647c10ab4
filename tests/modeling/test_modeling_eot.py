"""add_eot_token: tokenizer, new embedding rows, old rows untouched, tied heads stay tied, config records."""

from __future__ import annotations

import copy

import pytest
import torch

from openchat_hf.model_types import EOT_TOKEN
from openchat_hf.modeling import ModelingError, add_eot_token
from openchat_hf.templates import setup_tokenizer
from openchat_hf.tiny import build_tiny_model


@pytest.fixture
def llama(base_tokenizers):
    tokenizer = copy.deepcopy(base_tokenizers["llama"])
    return build_tiny_model(tokenizer, "llama"), tokenizer


@pytest.fixture
def bigcode(base_tokenizers):
    tokenizer = copy.deepcopy(base_tokenizers["gpt2"])
    return build_tiny_model(tokenizer, "gpt_bigcode"), tokenizer


def _weights(model):
    head = model.get_output_embeddings()
    return model.get_input_embeddings().weight.detach().clone(), head.weight.detach().clone()


def test_llama_mean_init_untied(llama):
    model, tokenizer = llama
    old_emb, old_head = _weights(model)
    n = old_emb.shape[0]
    eot = add_eot_token(model, tokenizer, "openchat")

    assert eot == n == tokenizer.convert_tokens_to_ids(EOT_TOKEN)
    emb, head = _weights(model)
    assert emb.shape == head.shape == (n + 1, old_emb.shape[1])
    assert torch.equal(emb[:n], old_emb) and torch.equal(head[:n], old_head)
    torch.testing.assert_close(emb[eot], old_emb.double().mean(0).float(), rtol=0, atol=1e-7)
    torch.testing.assert_close(head[eot], old_head.double().mean(0).float(), rtol=0, atol=1e-7)
    assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight
    assert model.config.vocab_size == n + 1
    assert model.config.openchat_eot_init == "mean"
    assert model.config.openchat_model_type == "openchat"
    assert model.generation_config.eos_token_id == [eot, tokenizer.eos_token_id]
    # The tokenizer is set up exactly as the data pipeline sets it up: same id, same template.
    reference = setup_tokenizer(copy.deepcopy(tokenizer), "openchat")
    assert tokenizer.chat_template == reference.jinja()
    assert tokenizer(f"a{EOT_TOKEN}", add_special_tokens=False)["input_ids"][-1] == eot


def test_mean_is_computed_in_fp32_for_bf16_weights(llama):
    model, tokenizer = llama
    model.to(torch.bfloat16)
    old = model.get_input_embeddings().weight.detach().clone()
    eot = add_eot_token(model, tokenizer, "openchat")
    new = model.get_input_embeddings().weight
    assert new.dtype == torch.bfloat16
    assert torch.equal(new[eot], old.float().mean(0).to(torch.bfloat16))


def test_bigcode_normal_init_stays_tied(bigcode):
    model, tokenizer = bigcode
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    old_emb, _ = _weights(model)
    n = old_emb.shape[0]
    torch.manual_seed(1)
    eot = add_eot_token(model, tokenizer, "opencoder")

    emb = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight is emb
    assert torch.equal(emb[:n].detach(), old_emb)
    row = emb[eot].detach()
    # N(0, 0.02) over 64 values: far from the old rows' mean, with a plausible std.
    assert 0.01 < row.std().item() < 0.035 and abs(row.mean().item()) < 0.01
    assert not torch.allclose(row, old_emb.mean(0), atol=1e-3)
    assert model.config.openchat_eot_init == "normal" and model.config.openchat_eot_init_std == 0.02
    logits = model(torch.tensor([[eot, 5]])).logits
    assert logits.shape[-1] == n + 1


def test_tied_llama_stays_tied_and_init_is_selectable(base_tokenizers):
    tokenizer = copy.deepcopy(base_tokenizers["llama"])
    model = build_tiny_model(tokenizer, "llama", tie_word_embeddings=True)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    old, _ = _weights(model)
    eot = add_eot_token(model, tokenizer, "openchat", init="normal")
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert model.get_input_embeddings().weight.shape[0] == old.shape[0] + 1
    assert model.config.openchat_eot_init == "normal"
    assert not torch.allclose(model.get_input_embeddings().weight[eot], old.mean(0), atol=1e-3)


def test_bigcode_with_mean_override(bigcode):
    model, tokenizer = bigcode
    old, _ = _weights(model)
    eot = add_eot_token(model, tokenizer, "opencoder", init="mean")
    torch.testing.assert_close(model.get_input_embeddings().weight[eot].detach(), old.mean(0), rtol=0, atol=1e-6)


def test_second_call_changes_nothing(llama):
    model, tokenizer = llama
    first = add_eot_token(model, tokenizer, "openchat")
    emb, head = _weights(model)
    second = add_eot_token(model, tokenizer, "openchat", init="normal")
    assert first == second
    emb2, head2 = _weights(model)
    assert torch.equal(emb, emb2) and torch.equal(head, head2)
    assert model.config.openchat_eot_init == "mean"


def test_padded_vocabulary_reuses_a_spare_row(base_tokenizers):
    """A model whose embedding has spare rows (vocab padded to a multiple) gets no resize, but the EOT row is set."""
    tokenizer = copy.deepcopy(base_tokenizers["llama"])
    model = build_tiny_model(tokenizer, "llama")
    model.resize_token_embeddings(len(tokenizer) + 8, mean_resizing=False)
    n_rows = model.get_input_embeddings().weight.shape[0]
    old, _ = _weights(model)
    eot = add_eot_token(model, tokenizer, "openchat")
    assert model.get_input_embeddings().weight.shape[0] == n_rows
    expected = old[: len(tokenizer) - 1].mean(0)  # mean over the real vocabulary only
    torch.testing.assert_close(model.get_input_embeddings().weight[eot].detach(), expected, rtol=0, atol=1e-6)


def test_bad_init_is_rejected(llama):
    model, tokenizer = llama
    with pytest.raises(ModelingError, match="mean, normal"):
        add_eot_token(model, tokenizer, "openchat", init="zeros")
    assert EOT_TOKEN not in tokenizer.get_vocab()
