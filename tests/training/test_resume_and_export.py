"""`--resume_from_checkpoint last` skips half-written checkpoints; a LoRA adapter exports from any directory."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from openchat_hf.training.errors import TrainingError
from openchat_hf.training.sft import last_complete_checkpoint, resolve_checkpoint


@pytest.fixture(scope="module")
def real_checkpoint(patched_tiny, sft_data_dir, tmp_path_factory):
    """A checkpoint-N folder written by the Trainer itself (2 steps, full state)."""
    from openchat_hf.training.config import OpenChatSFTConfig
    from openchat_hf.training.data import load_sft_datasets
    from openchat_hf.training.model import load_model_and_tokenizer
    from openchat_hf.training.trainer import OpenChatSFTTrainer

    out = tmp_path_factory.mktemp("ckpts")
    model, tokenizer, name = load_model_and_tokenizer(str(patched_tiny), dtype="float32")
    train, _ = load_sft_datasets(str(sft_data_dir), tokenizer, name, eval_split=None, max_train_samples=16)
    args = OpenChatSFTConfig(output_dir=str(out), use_cpu=True, bf16=False, report_to="none", max_steps=2,
                             max_tokens_per_batch=1024, save_strategy="steps", save_steps=2, disable_tqdm=True)  # fmt: skip
    OpenChatSFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer).train()
    return out / "checkpoint-2"


def test_last_skips_half_written_checkpoints(real_checkpoint, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copytree(real_checkpoint, out / "checkpoint-2")
    # killed while saving: weights written, trainer_state.json (written last) missing
    shutil.copytree(real_checkpoint, out / "checkpoint-4")
    (out / "checkpoint-4" / "trainer_state.json").unlink()
    # killed while writing trainer_state.json itself
    shutil.copytree(real_checkpoint, out / "checkpoint-6")
    state = (out / "checkpoint-6" / "trainer_state.json").read_text()
    (out / "checkpoint-6" / "trainer_state.json").write_text(state[: len(state) // 2])
    # killed before the weights
    (out / "checkpoint-8").mkdir()
    (out / "checkpoint-8" / "config.json").write_text("{}")
    assert last_complete_checkpoint(out) == str(out / "checkpoint-2")  # before: checkpoint-8

    class Args:
        output_dir = str(out)
        resume_from_checkpoint = "last"

    assert resolve_checkpoint(Args) == str(out / "checkpoint-2")
    Args.resume_from_checkpoint = str(out / "checkpoint-6")
    with pytest.raises(TrainingError, match="not completely written"):
        resolve_checkpoint(Args)


def test_lora_adapter_from_a_relative_base_patched_as_openchat_8192_exports_elsewhere(tiny_llama_dir, tmp_path):
    """The base is patched on the fly (EOT + RoPE context 2048 -> 8192); merge/export runs from another directory."""
    import datasets
    from training_helpers import bundled_conversations
    from trl import ModelConfig

    from openchat_hf.modeling.export import export_checkpoint
    from openchat_hf.templates import ChatTemplate
    from openchat_hf.training.config import OpenChatSFTConfig
    from openchat_hf.training.model import load_model_and_tokenizer
    from openchat_hf.training.peft_utils import build_peft_config
    from openchat_hf.training.trainer import OpenChatSFTTrainer

    work = tmp_path / "work"
    shutil.copytree(tiny_llama_dir, work / "base")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        model, tokenizer, name = load_model_and_tokenizer("base", "openchat_8192", dtype="float32")  # relative
        assert json.loads((work / "base" / "config.json").read_text())["max_position_embeddings"] == 2048
        assert model.config.max_position_embeddings == 8192
        rows = [{"input_ids": c.input_ids, "supervise_mask": c.supervise_mask, "length": len(c.input_ids)}
                for c in ChatTemplate(name, tokenizer).tokenize_batch(bundled_conversations()[:8], max_length=128)]  # fmt: skip
        eot = tokenizer.convert_tokens_to_ids("<|end_of_turn|>")
        peft_config = build_peft_config(
            ModelConfig(use_peft=True, lora_r=4, lora_target_modules="all-linear"), model, eot
        )
        args = OpenChatSFTConfig(output_dir="adapter", use_cpu=True, bf16=False, report_to="none", max_steps=1,
                                 max_tokens_per_batch=1024, save_strategy="no", disable_tqdm=True, model_type=name)  # fmt: skip
        trainer = OpenChatSFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(rows),
                                     processing_class=tokenizer, peft_config=peft_config)  # fmt: skip
        trainer.train()
        trainer.save_model("adapter")
    finally:
        os.chdir(cwd)
    adapter = work / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(work / "base")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    try:
        exported = export_checkpoint(adapter, tmp_path / "export")  # no --model-type: the adapter folder says it
    finally:
        os.chdir(cwd)
    config = json.loads((exported / "config.json").read_text())
    assert config["openchat_model_type"] == "openchat_8192"
    assert config["max_position_embeddings"] == 8192  # before: 2048 (the unpatched base's)
