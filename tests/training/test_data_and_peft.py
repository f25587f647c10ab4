"""Data loading (pipeline output, conversations on the fly, bad input) and the LoRA variant."""

from __future__ import annotations

import subprocess
import sys

import datasets
import pytest
import torch
from training_helpers import SFT_SCRIPT, TINY_RECIPE, bundled_conversations

from openchat_hf.templates import ChatTemplate
from openchat_hf.training.config import OpenChatSFTConfig
from openchat_hf.training.data import load_sft_datasets
from openchat_hf.training.errors import TrainingError
from openchat_hf.training.trainer import OpenChatSFTTrainer


def test_pipeline_output_loads_as_is(sft_data_dir, patched_tokenizer):
    train, evaluation = load_sft_datasets(str(sft_data_dir), patched_tokenizer, "openchat")
    assert len(train) == 96 and len(evaluation) == 8
    assert {"input_ids", "supervise_mask", "length"} <= set(train.column_names)


def test_messages_dataset_is_tokenized_with_the_template(patched_tokenizer, tmp_path):
    chats = bundled_conversations()[:12]
    rows = [{"id": str(i), "messages": chat, "weight": 1.5} for i, chat in enumerate(chats)]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "clean"))
    train, evaluation = load_sft_datasets(str(tmp_path / "clean"), patched_tokenizer, "openchat")
    assert evaluation is None
    assert set(train.column_names) == {"input_ids", "supervise_mask", "length", "weight"}
    expected = ChatTemplate("openchat", patched_tokenizer).tokenize(chats[3], max_length=2048)
    assert train[3]["input_ids"] == expected.input_ids and train[3]["supervise_mask"] == expected.supervise_mask
    assert train[3]["length"] == len(expected.input_ids)


def test_bad_inputs_raise_training_errors(patched_tokenizer, tmp_path):
    with pytest.raises(TrainingError, match="not a folder"):
        load_sft_datasets(str(tmp_path / "missing"), patched_tokenizer, "openchat")
    datasets.Dataset.from_list([{"text": "hello"}]).save_to_disk(str(tmp_path / "text"))
    with pytest.raises(TrainingError, match="supervise_mask"):
        load_sft_datasets(str(tmp_path / "text"), patched_tokenizer, "openchat")
    datasets.Dataset.from_list([{"input_ids": [1, 99999], "supervise_mask": [0, 1]}]).save_to_disk(
        str(tmp_path / "foreign")
    )
    with pytest.raises(TrainingError, match="another tokenizer"):
        load_sft_datasets(str(tmp_path / "foreign"), patched_tokenizer, "openchat")


def test_sft_script_reports_bad_data_in_one_line(patched_tiny, tmp_path):
    result = subprocess.run(
        [sys.executable, str(SFT_SCRIPT), "--config", str(TINY_RECIPE), "--model_name_or_path", str(patched_tiny),
         "--dataset_path", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("sft.py: error: Dataset path")
    assert "Traceback" not in result.stderr


def test_lora_trains_the_eot_row_and_lm_head_only(fresh_model, patched_tokenizer, sft_data_dir, tmp_path):
    from trl import ModelConfig

    from openchat_hf.training.peft_utils import build_peft_config

    model = fresh_model()
    eot = patched_tokenizer.convert_tokens_to_ids("<|end_of_turn|>")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model_args = ModelConfig(use_peft=True, lora_r=4, lora_alpha=8, lora_target_modules=["q_proj", "v_proj"])
    peft_config = build_peft_config(model_args, model, eot)
    assert peft_config.trainable_token_indices == {"embed_tokens": [eot]}
    assert peft_config.modules_to_save == ["lm_head"]
    train, _ = load_sft_datasets(str(sft_data_dir), patched_tokenizer, "openchat")
    args = OpenChatSFTConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", max_steps=3, learning_rate=1e-2,
        max_tokens_per_batch=1024, save_strategy="no",
    )  # fmt: skip
    trainer = OpenChatSFTTrainer(
        model=model, args=args, train_dataset=train, processing_class=patched_tokenizer, peft_config=peft_config
    )
    trainer.train()
    merged = trainer.model.merge_and_unload().state_dict()
    embed = merged["model.embed_tokens.weight"]
    assert not torch.allclose(embed[eot], before["model.embed_tokens.weight"][eot])
    others = torch.arange(embed.shape[0]) != eot
    torch.testing.assert_close(embed[others], before["model.embed_tokens.weight"][others])
    assert not torch.allclose(merged["lm_head.weight"], before["lm_head.weight"])
    assert not torch.allclose(
        merged["model.layers.0.self_attn.q_proj.weight"], before["model.layers.0.self_attn.q_proj.weight"]
    )
    torch.testing.assert_close(
        merged["model.layers.0.mlp.up_proj.weight"], before["model.layers.0.mlp.up_proj.weight"]
    )


def test_foreign_token_ids_are_found_in_every_train_row_and_in_eval(patched_tokenizer, tmp_path):
    """Before: only the first 1,000 train rows were checked, and eval never."""
    good = {"input_ids": [1, 5, 6, 7], "supervise_mask": [0, 0, 1, 1]}
    foreign = {"input_ids": [1, 5, len(patched_tokenizer) + 7], "supervise_mask": [0, 1, 1]}
    rows = [good] * 1500
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:1200] + [foreign] + rows[1200:]),
         "eval": datasets.Dataset.from_list(rows[:20])}
    ).save_to_disk(str(tmp_path / "late"))  # fmt: skip
    with pytest.raises(TrainingError, match="'train' split has token id .* another tokenizer"):
        load_sft_datasets(str(tmp_path / "late"), patched_tokenizer, "openchat")
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:50]), "eval": datasets.Dataset.from_list([good, foreign])}
    ).save_to_disk(str(tmp_path / "eval"))
    with pytest.raises(TrainingError, match="'eval' split has token id"):
        load_sft_datasets(str(tmp_path / "eval"), patched_tokenizer, "openchat")


def test_pipeline_root_is_refused_naming_the_model_type_folder(pipeline_out, patched_tokenizer):
    """Before: the root's JSON files were loaded together (every model type) and the eval split was lost."""
    with pytest.raises(TrainingError, match="output folder") as err:
        load_sft_datasets(str(pipeline_out), patched_tokenizer, "openchat")
    assert f"--dataset_path {pipeline_out / 'openchat'}" in str(err.value)
    with pytest.raises(TrainingError, match="--model-types opencoder"):
        load_sft_datasets(str(pipeline_out), patched_tokenizer, "opencoder")
    train, evaluation = load_sft_datasets(str(pipeline_out / "openchat"), patched_tokenizer, "openchat")
    assert len(train) > 0 and evaluation is not None and len(evaluation) > 0
