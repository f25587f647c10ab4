"""LoRA and full fine-tuning on tied and untied embeddings: the new EOT row trains in every case."""

from __future__ import annotations

import datasets
import pytest
import torch
from training_helpers import bundled_conversations

from openchat_hf.templates import ChatTemplate
from openchat_hf.tiny import save_tiny_base
from openchat_hf.training.config import OpenChatSFTConfig
from openchat_hf.training.model import load_model_and_tokenizer
from openchat_hf.training.trainer import OpenChatSFTTrainer

CASES = {
    "llama-untied": ("llama", "openchat", False),
    "llama-tied": ("llama", "openchat", True),  # SmolLM2-style tied LLaMA
    "gpt_bigcode": ("gpt_bigcode", "opencoder", True),  # StarCoder / opencoder, tied by design
}


@pytest.fixture(scope="module", params=list(CASES))
def base(request, tmp_path_factory):
    family, model_type, tied = CASES[request.param]
    kwargs = {"tie_word_embeddings": tied} if family == "llama" else {}
    folder = save_tiny_base(tmp_path_factory.mktemp(request.param), family, **kwargs)
    return request.param, folder, model_type, tied


def _train(folder, model_type, tmp_path, *, lora: bool):
    from trl import ModelConfig

    from openchat_hf.training.peft_utils import build_peft_config

    model, tokenizer, name = load_model_and_tokenizer(str(folder), model_type, dtype="float32")  # EOT added on the fly
    eot = tokenizer.convert_tokens_to_ids(ChatTemplate(name, tokenizer).model_type.eot_token)
    before = model.get_input_embeddings().weight.detach().clone()
    rows = [
        {"input_ids": c.input_ids, "supervise_mask": c.supervise_mask, "length": len(c.input_ids)}
        for c in ChatTemplate(name, tokenizer).tokenize_batch(bundled_conversations()[:24], max_length=192)
    ]
    peft_config = None
    if lora:
        model_args = ModelConfig(use_peft=True, lora_r=4, lora_alpha=8, lora_target_modules="all-linear")
        peft_config = build_peft_config(model_args, model, eot)
    args = OpenChatSFTConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", max_steps=1, learning_rate=1e-2,
        max_tokens_per_batch=2048, save_strategy="no", disable_tqdm=True,
    )  # fmt: skip
    trainer = OpenChatSFTTrainer(
        model=model, args=args, train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer,
        peft_config=peft_config,
    )  # fmt: skip
    trainer.train()
    trained = trainer.model.merge_and_unload() if lora else trainer.model
    return trained, eot, before


def test_lora_trains_the_eot_row_in_tied_and_untied_models(base, tmp_path):
    """Before the fix, tied models crashed on the first step ('TrainableTokensWrapper' has no attribute 'bias')."""
    _, folder, model_type, tied = base
    model, eot, before = _train(folder, model_type, tmp_path, lora=True)
    embed = model.get_input_embeddings().weight.detach()
    assert not torch.allclose(embed[eot], before[eot]), "the EOT row did not train"
    others = torch.arange(embed.shape[0]) != eot
    torch.testing.assert_close(embed[others], before[others])  # LoRA leaves every other row alone
    head = model.get_output_embeddings().weight.detach()
    if tied:  # the head is the embedding: it carries the trained EOT row too
        torch.testing.assert_close(head, embed)
    else:  # the untied head trains in full (modules_to_save)
        assert not torch.allclose(head[others], before[others])


def test_full_fine_tuning_trains_the_eot_row(base, tmp_path):
    _, folder, model_type, tied = base
    model, eot, before = _train(folder, model_type, tmp_path, lora=False)
    embed = model.get_input_embeddings().weight.detach()
    assert not torch.allclose(embed[eot], before[eot])
    assert (model.get_output_embeddings().weight is model.get_input_embeddings().weight) == tied
