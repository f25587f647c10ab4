"""The model card written beside every trained checkpoint (base model, data, recipe, hyperparameters, template)."""

from __future__ import annotations

import json
from typing import Any

CARD_HYPERPARAMETERS = (
    "learning_rate",
    "lr_scheduler_type",
    "num_train_epochs",
    "max_steps",
    "warmup_steps",
    "weight_decay",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "world_size",
    "max_tokens_per_batch",
    "padding_free",
    "loss_mode",
    "use_weights",
    "bf16",
    "seed",
)


def build_model_card(
    *,
    model_name: str,
    base_model: str | None,
    dataset: str | None,
    model_type: str,
    chat_template: str,
    args: Any,
    recipe: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Markdown with YAML metadata, ready to save as ``README.md``; ``extra`` adds run facts to the table."""
    from huggingface_hub import ModelCardData

    hyper = {k: getattr(args, k) for k in CARD_HYPERPARAMETERS if hasattr(args, k)} | (extra or {})
    data = ModelCardData(
        base_model=base_model if base_model and "/" in base_model and not base_model.startswith("/") else None,
        datasets=[dataset] if dataset and "/" in dataset and not dataset.startswith("/") else None,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=["openchat-hf", "sft", "trl", model_type],
    )
    example = "[{'role': 'user', 'content': 'Hello'}]"
    return "\n".join(
        [
            "---",
            data.to_yaml(),
            "---",
            f"# {model_name}",
            "",
            f"Fine-tuned with openchat-hf (`pip install openchat-hf`; TRL `SFTTrainer`) as model type `{model_type}`.",
            "",
            f"- Base model: `{base_model}`",
            f"- Training data: `{dataset}`",
            f"- Recipe: `{recipe}`" if recipe else "- Recipe: (command line)",
            "",
            "## Hyperparameters",
            "",
            "```json",
            json.dumps(hyper, indent=2, default=str),
            "```",
            "",
            "## Chat template",
            "",
            "Prompt the model with `tokenizer.apply_chat_template(messages, add_generation_prompt=True)`; generation "
            "stops at `<|end_of_turn|>` (in `generation_config.eos_token_id`). For example "
            f"`{example}` renders as shown by this template:",
            "",
            "```jinja",
            chat_template,
            "```",
            "",
        ]
    )
