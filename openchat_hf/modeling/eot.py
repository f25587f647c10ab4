"""Add the end-of-turn token to a causal LM: tokenizer, input embeddings, untied LM head, generation config."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from openchat_hf.model_types import ModelType, get_model_type
from openchat_hf.modeling.errors import ModelingError
from openchat_hf.templates import eot_token_id, setup_tokenizer

logger = logging.getLogger(__name__)

EOT_INITS = ("mean", "normal", "copy")


def _is_tied(model: Any) -> bool:
    head = model.get_output_embeddings()
    return head is not None and head.weight is model.get_input_embeddings().weight


def _rows(embedding: Any) -> int:
    """Number of rows; ``num_embeddings`` / ``out_features`` because ZeRO-3 leaves a partitioned weight empty."""
    return (
        getattr(embedding, "num_embeddings", None) or getattr(embedding, "out_features", None) or len(embedding.weight)
    )


def _gathered(*params: Any) -> Any:
    """Gather DeepSpeed ZeRO-3 partitioned parameters to modify them (a no-op for ordinary tensors)."""
    params = [p for p in params if p is not None]
    if any(hasattr(p, "ds_id") for p in params):
        import deepspeed

        return deepspeed.zero.GatheredParameters(params, modifier_rank=0)
    return contextlib.nullcontext()


def _init_rows(weight: Any, rows: list[int], n_reference: int, init: str, std: float, source: int | None) -> None:
    """Initialise ``weight[rows]`` in place: mean of ``weight[:n_reference]`` (in fp32), a copy of ``weight[source]``
    or N(0, std)."""
    import torch

    with torch.no_grad():
        if init == "copy":
            weight[rows] = weight[source].clone().expand(len(rows), -1)
        elif init == "mean":
            value = weight[:n_reference].float().mean(dim=0)
            weight[rows] = value.to(weight.dtype).expand(len(rows), -1)
        else:
            noise = torch.empty(len(rows), weight.shape[1], dtype=torch.float32, device=weight.device)
            weight[rows] = noise.normal_(mean=0.0, std=std).to(weight.dtype)


def set_generation_eos(model: Any, tokenizer: Any, eot_id: int) -> list[int]:
    """Make ``model.generation_config.eos_token_id`` a list holding the EOT id (and the tokenizer's EOS)."""
    generation_config = model.generation_config
    current = generation_config.eos_token_id
    current = [] if current is None else ([current] if isinstance(current, int) else list(current))
    eos = [eot_id, *(i for i in [*current, tokenizer.eos_token_id] if i is not None and i != eot_id)]
    eos = list(dict.fromkeys(eos))
    generation_config.eos_token_id = eos
    if generation_config.pad_token_id is None and tokenizer.pad_token_id is not None:
        generation_config.pad_token_id = tokenizer.pad_token_id
    return eos


def add_eot_token(model: Any, tokenizer: Any, model_type: ModelType | str, init: str | None = None) -> int:
    """Add ``model_type``'s EOT token to ``tokenizer`` and ``model``; return its id.

    Calls :func:`openchat_hf.templates.setup_tokenizer` (EOT special token, pad token, chat template), grows the input
    embeddings and an untied LM head to the tokenizer's size (a tied head stays tied), and initialises the new rows
    with ``init`` (default: the model type's ``eot_init``): ``"mean"`` of the existing rows computed in fp32 (LLaMA),
    ``"normal"`` with std ``eot_init_std`` (StarCoder), or ``"copy"`` of the tokenizer's own EOS row (an instruct
    model that already ends its turns with that token, e.g. SmolLM2's ``<|im_end|>``: the new token starts where
    the model already stops, and fine-tuning separates the two). Records ``openchat_model_type`` and ``openchat_eot_init``
    in ``model.config`` and makes ``generation_config.eos_token_id`` a list that includes the EOT id.
    Calling it again on a model that already has the token changes no weights.
    """
    mt = get_model_type(model_type)
    init = init or mt.eot_init
    if init not in EOT_INITS:
        raise ModelingError(f"Unknown EOT init {init!r}; use one of {', '.join(EOT_INITS)}.")
    embeddings = model.get_input_embeddings()
    if embeddings is None:
        raise ModelingError(f"{type(model).__name__} has no input embeddings; add_eot_token needs a causal LM.")

    source = tokenizer.eos_token_id if init == "copy" else None
    if init == "copy" and source is None:
        raise ModelingError("--eot-init copy needs a tokenizer with an EOS token to copy; use mean or normal.")
    had_eot = mt.eot_token in tokenizer.get_vocab()
    old_rows = _rows(embeddings)
    n_reference = min(len(tokenizer), old_rows)
    setup_tokenizer(tokenizer, mt)
    eot_id = eot_token_id(tokenizer, mt)
    new_rows = max(old_rows, len(tokenizer))
    tied = _is_tied(model)

    if not had_eot or eot_id >= old_rows:
        if new_rows > old_rows:
            model.resize_token_embeddings(new_rows, mean_resizing=False)
        rows = sorted({*range(old_rows, new_rows), eot_id})
        weight = model.get_input_embeddings().weight
        with _gathered(weight):
            _init_rows(weight, rows, n_reference, init, mt.eot_init_std, source)
        head = model.get_output_embeddings()
        if head is not None and not tied:
            bias = getattr(head, "bias", None)
            with _gathered(head.weight, bias):
                _init_rows(head.weight, rows, n_reference, init, mt.eot_init_std, source)
                if bias is not None:
                    _init_rows(bias.unsqueeze(-1), rows, n_reference, "mean", 0.0, None)
        if tied and not _is_tied(model):  # pragma: no cover - transformers re-ties after resizing
            raise ModelingError("Resizing untied the input and output embeddings; please report this.")
        model.config.openchat_eot_init = init
        if init == "normal":
            model.config.openchat_eot_init_std = mt.eot_init_std
        if init == "copy":
            model.config.openchat_eot_init_from = tokenizer.convert_ids_to_tokens(source)
        logger.info(
            "Added %s (id %d) to a %d-token vocabulary: %d new row(s), init=%s, %s head",
            mt.eot_token,
            eot_id,
            old_rows,
            len(rows),
            init,
            "tied" if tied else "untied",
        )
    else:
        logger.info("The tokenizer and model already have %s (id %d); no weights changed", mt.eot_token, eot_id)
    model.config.openchat_model_type = mt.name
    if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    set_generation_eos(model, tokenizer, eot_id)
    return eot_id
