"""LoRA / QLoRA for OpenChat SFT: the new EOT embedding row and the LM head stay trainable."""

from __future__ import annotations

from typing import Any

from openchat_hf.training.errors import TrainingError


def build_peft_config(model_args: Any, model: Any, eot_id: int) -> Any:
    """TRL's ``get_peft_config(model_args)`` plus ``trainable_token_indices`` for the EOT row.

    A LoRA adapter alone would leave the freshly initialised ``<|end_of_turn|>`` embedding untrained, and the model
    would never learn to stop. The EOT row of the input embeddings is trained through ``trainable_token_indices``;
    an untied LM head is trained in full through ``modules_to_save`` (default ``["lm_head"]``).
    """
    from trl import get_peft_config

    config = get_peft_config(model_args)
    if config is None:
        return None
    embed_name = _module_name(model, model.get_input_embeddings())
    config.trainable_token_indices = {embed_name: [eot_id]}
    tied = getattr(model.config.get_text_config(), "tie_word_embeddings", False)
    if not tied:
        head_name = _module_name(model, model.get_output_embeddings())
        config.modules_to_save = sorted({*(config.modules_to_save or []), head_name})
    return config


def expose_head_bias(model: Any) -> None:
    """Let TRL's fused LM head read ``bias`` from a peft-wrapped output layer (tied embeddings).

    With tied embeddings peft wraps the LM head in a ``TrainableTokensWrapper`` that shares the EOT row's trainable
    delta with the input embeddings; its ``weight`` is the merged (trainable) weight but it has no ``bias``, which TRL's
    fused LM head reads (``'TrainableTokensWrapper' object has no attribute 'bias'``). Give it the wrapped layer's bias.
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    original = getattr(head, "original_module", None) if head is not None else None
    if original is not None and "bias" not in vars(head) and not hasattr(type(head), "bias"):
        try:
            head.bias  # noqa: B018 - only wrappers without a bias attribute need one
        except AttributeError:
            head.bias = getattr(original, "bias", None)


def _module_name(model: Any, module: Any) -> str:
    for name, candidate in model.named_modules():
        if candidate is module:
            return name.rsplit(".", 1)[-1]
    raise TrainingError("Could not find the embedding module in the model; set lora_modules_to_save by hand.")
