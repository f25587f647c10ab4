"""TRL / transformers options: each one is honoured (DFT loss, MoE aux loss, sequential order) or refused at start-up."""

from __future__ import annotations

import datasets
import pytest
import torch
from training_helpers import tokenized_rows

from openchat_hf.training.config import OpenChatSFTConfig
from openchat_hf.training.errors import TrainingError
from openchat_hf.training.trainer import OpenChatSFTTrainer


def config(**kwargs):
    return OpenChatSFTConfig(output_dir="unused", use_cpu=True, bf16=False, report_to="none", **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"label_smoothing_factor": 0.1}, "label_smoothing_factor"),
        ({"average_tokens_across_devices": False}, "average_tokens_across_devices"),
        ({"max_tokens_per_batch": 2048, "per_device_train_batch_size": 8}, "per_device_train_batch_size"),
        ({"max_tokens_per_batch": 2048, "train_sampling_strategy": "group_by_length"}, "group_by_length"),
        ({"max_tokens_per_batch": 2048, "dataloader_drop_last": True}, "dataloader_drop_last"),
    ],
)
def test_ignored_options_are_refused_with_the_reason(kwargs, message):
    with pytest.raises(TrainingError, match=f"Unsupported option.*{message}"):
        config(**kwargs)


def test_batch_size_defaults():
    assert config().per_device_train_batch_size == 8  # TRL's default without multipack
    multipack = config(max_tokens_per_batch=2048)
    assert multipack.per_device_train_batch_size == 1  # one packed micro-batch per step per device
    from openchat_hf.training.model_card import build_model_card

    card = build_model_card(model_name="m", base_model=None, dataset=None, model_type="openchat", chat_template="",
                            args=multipack)  # fmt: skip
    assert '"per_device_train_batch_size": null' in card and '"max_tokens_per_batch": 2048' in card


def test_train_cli_refuses_in_one_line(capsys):
    from openchat_hf.cli import main

    rc = main(["train", "--config", "tiny/sft/config_cpu.yaml", "--per_device_train_batch_size", "4"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("openchat-hf train: error: Unsupported option(s): per_device_train_batch")
    assert "Traceback" not in "\n".join(err)


def test_dft_loss_is_honoured(fresh_model, patched_tokenizer, tmp_path):
    rows = tokenized_rows(patched_tokenizer, 4, max_length=96, seed=5)
    model = fresh_model()
    with torch.no_grad():  # reference: DFT = mean over supervised tokens of -p * log p
        terms = []
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            target = ids[0, 1:]
            mask = torch.tensor(row["supervise_mask"][1:], dtype=torch.bool)
            lp = logp[torch.arange(len(target)), target][mask]
            terms.append(-(lp.exp() * lp))
        expected = torch.cat(terms).mean().item()
    losses = {}
    for loss_type in ("nll", "dft"):
        args = OpenChatSFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none",
                                 loss_type=loss_type)  # fmt: skip
        trainer = OpenChatSFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(rows),
                                     processing_class=patched_tokenizer)  # fmt: skip
        batch = trainer.data_collator(rows)
        with torch.no_grad():
            n = trainer._get_num_items_in_batch([batch], torch.device("cpu"))
            losses[loss_type] = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=n).item()
    assert losses["dft"] == pytest.approx(expected, rel=1e-4)
    assert losses["dft"] != pytest.approx(losses["nll"], rel=1e-2)


def test_moe_aux_loss_is_added(patched_tokenizer, tmp_path):
    """A tiny Mixtral: the loss is the weighted NLL plus router_aux_loss_coef x the load-balancing loss."""
    from transformers import AutoModelForCausalLM, MixtralConfig

    torch.manual_seed(0)
    moe = MixtralConfig(vocab_size=len(patched_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
                        pad_token_id=patched_tokenizer.pad_token_id)  # fmt: skip
    rows = tokenized_rows(patched_tokenizer, 4, max_length=96, seed=6)
    losses, aux = {}, {}
    for coef in (0.0, 0.5):
        torch.manual_seed(1)
        model = AutoModelForCausalLM.from_config(moe)
        args = OpenChatSFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none",
                                 router_aux_loss_coef=coef)  # fmt: skip
        trainer = OpenChatSFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(rows),
                                     processing_class=patched_tokenizer)  # fmt: skip
        batch = trainer.data_collator(rows)
        with torch.no_grad():
            n = trainer._get_num_items_in_batch([batch], torch.device("cpu"))
            trainer.current_gradient_accumulation_steps = 1
            losses[coef] = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=n).item()
            inputs = {k: v for k, v in batch.items() if k != "loss_weights"}
            aux[coef] = trainer.model(**inputs, output_router_logits=True, fused_lm_head=True).aux_loss.item()
    assert aux[0.5] > 0 and aux[0.0] == pytest.approx(aux[0.5], rel=1e-5)  # same weights, same routing
    assert losses[0.5] - losses[0.0] == pytest.approx(0.5 * aux[0.5], rel=1e-4)
