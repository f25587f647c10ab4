"""Configuration dataclasses of SFT training (alignment-handbook style: one YAML recipe fills all three).

``TrlParser((ScriptArguments, OpenChatSFTConfig, ModelConfig))`` parses a recipe plus CLI overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import SFTConfig

from openchat_hf.training.collator import LOSS_MODES
from openchat_hf.training.errors import TrainingError


@dataclass
class ScriptArguments:
    """Where the data comes from.

    ``dataset_path`` is a folder written by the data pipeline (``OUT/<model_type>``, a ``DatasetDict`` saved with
    ``save_to_disk``) or a Hub dataset id (``load_dataset``). A dataset with ``input_ids`` + ``supervise_mask`` is used
    as is; one with a ``messages`` column is tokenized on the fly with the model type's template.
    """

    dataset_path: str | None = field(
        default=None, metadata={"help": "Tokenized dataset folder (OUT/<model_type>) or a Hub dataset id."}
    )
    dataset_name: str | None = field(default=None, metadata={"help": "Alias of dataset_path (TRL scripts' name)."})
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name."})
    dataset_train_split: str = field(default="train", metadata={"help": "Training split."})
    dataset_test_split: str = field(default="eval", metadata={"help": "Evaluation split (skipped when absent)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training rows."})

    def __post_init__(self) -> None:
        if self.dataset_path is None:
            self.dataset_path = self.dataset_name


@dataclass
class OpenChatSFTConfig(SFTConfig):
    """TRL's ``SFTConfig`` plus OpenChat's model type, padding-free multipack and loss options.

    Defaults that TRL 1.16 gets wrong for pre-tokenized data are fixed here: ``max_length=None`` (no silent truncation
    at 1024), ``remove_unused_columns=False`` (keep ``supervise_mask`` / ``weight``), and
    ``dataset_kwargs={"skip_prepare_dataset": True}`` (our collator builds the labels).
    """

    model_type: str | None = field(
        default=None,
        metadata={"help": "openchat_hf model type; default: the one the model records (a base model needs it)."},
    )
    padding_free: bool = field(
        default=True,
        metadata={"help": "Flatten each micro-batch into one row without padding (position_ids restart per chat)."},
    )
    max_tokens_per_batch: int | None = field(
        default=None,
        metadata={
            "help": "Packing token budget of one micro-batch per device (multipack sampler, padding-free only). "
            "Unset: per_device_train_batch_size conversations per micro-batch."
        },
    )
    packing_window: int = field(
        default=4096, metadata={"help": "Conversations packed together by the multipack sampler."}
    )
    loss_mode: str = field(
        default="token",
        metadata={
            "help": "'token': mean over the supervised tokens of the global batch; 'conversation': mean of "
            "per-conversation means.",
            "choices": list(LOSS_MODES),
        },
    )
    use_weights: bool = field(
        default=False, metadata={"help": "Weight each conversation's tokens by its 'weight' column (OpenChat v2-w)."}
    )
    max_length: int | None = field(default=None, metadata={"help": "Unused: data is truncated by the pipeline."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep supervise_mask and weight."})
    dataset_kwargs: dict[str, Any] | str | None = field(
        default_factory=lambda: {"skip_prepare_dataset": True},
        metadata={"help": "Passed to TRL; skip_prepare_dataset is required by our collator."},
    )
    activation_checkpointing: bool | None = field(default=False, metadata={"help": "Trade compute for memory."})
    gradient_checkpointing: bool | None = field(default=None, metadata={"help": "Deprecated alias."})

    def __post_init__(self) -> None:
        if self.loss_mode not in LOSS_MODES:
            raise TrainingError(f"Unknown loss_mode {self.loss_mode!r}; expected one of {', '.join(LOSS_MODES)}.")
        if self.max_tokens_per_batch is not None and not self.padding_free:
            raise TrainingError("max_tokens_per_batch (multipack) needs padding_free=true.")
        if self.packing:
            raise TrainingError(
                "TRL's packing=true re-packs and truncates the data; use padding_free + max_tokens_per_batch instead."
            )
        super().__post_init__()
        self.dataset_kwargs = {**(self.dataset_kwargs or {}), "skip_prepare_dataset": True}
