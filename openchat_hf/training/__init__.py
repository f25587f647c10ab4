"""openchat-hf training: config dataclasses, the SFT collator, the multipack sampler and the trainer glue.

Import the submodules (``openchat_hf.training.trainer`` etc.); this package imports nothing heavy itself.
"""

__all__ = [
    "DataCollatorForOpenChat",
    "MultipackBatchSampler",
    "OpenChatSFTConfig",
    "OpenChatSFTTrainer",
    "ScriptArguments",
    "TrainingError",
    "load_model_and_tokenizer",
    "load_sft_datasets",
    "train",
]

_LAZY = {
    "DataCollatorForOpenChat": "openchat_hf.training.collator",
    "MultipackBatchSampler": "openchat_hf.training.sampler",
    "OpenChatSFTConfig": "openchat_hf.training.config",
    "ScriptArguments": "openchat_hf.training.config",
    "OpenChatSFTTrainer": "openchat_hf.training.trainer",
    "TrainingError": "openchat_hf.training.errors",
    "load_model_and_tokenizer": "openchat_hf.training.model",
    "load_sft_datasets": "openchat_hf.training.data",
    "train": "openchat_hf.training.sft",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'openchat_hf.training' has no attribute {name!r}")
