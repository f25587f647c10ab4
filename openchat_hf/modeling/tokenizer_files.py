"""``tokenizer_config.json`` in the form both transformers 4.5x (TGI, older vLLM) and 5.x load the same way."""

from __future__ import annotations

import json
from typing import Any

# The class name both transformers 4.5x and 5.x load from tokenizer.json as is. Family classes are not safe: in
# transformers 5, ``LlamaTokenizerFast`` maps to a class that rebuilds the normalizer / pre-tokenizer (Metaspace) and
# tokenizes differently after special tokens; in 4.x it rebuilds the post-processor from ``add_bos_token``.
LEGACY_TOKENIZER_CLASS = "PreTrainedTokenizerFast"
# Keys transformers 5 writes into tokenizer_config.json that mean nothing (or something else) to 4.x.
V5_ONLY_TOKENIZER_KEYS = ("backend", "is_local", "local_files_only", "extra_special_tokens")


def _token_entry(token: Any, special: bool) -> dict[str, Any]:
    return {
        "content": str(token.content),
        "lstrip": bool(token.lstrip),
        "normalized": bool(token.normalized),
        "rstrip": bool(token.rstrip),
        "single_word": bool(token.single_word),
        "special": bool(special),
    }


def legacy_tokenizer_config(tokenizer: Any, plain_template: str, eot: str) -> dict[str, Any]:
    """A ``tokenizer_config.json`` that transformers 4.5x (TGI, older vLLM) and 5.x load into the same tokenizer."""
    added = tokenizer._tokenizer.get_added_tokens_decoder()
    special_ids = set(tokenizer.all_special_ids) | {tokenizer.convert_tokens_to_ids(eot)}
    decoder = {
        str(i): _token_entry(tok, getattr(tok, "special", False) or i in special_ids)
        for i, tok in sorted(added.items())
    }
    config: dict[str, Any] = {
        "tokenizer_class": LEGACY_TOKENIZER_CLASS,
        "added_tokens_decoder": decoder,
        "bos_token": tokenizer.bos_token,
        "eos_token": tokenizer.eos_token,
        "unk_token": tokenizer.unk_token,
        "pad_token": tokenizer.pad_token,
        "additional_special_tokens": [eot],
        "model_max_length": int(tokenizer.model_max_length),
        "clean_up_tokenization_spaces": bool(getattr(tokenizer, "clean_up_tokenization_spaces", False)),
        "chat_template": plain_template,
    }
    # transformers 4.x rewrites a top-level pre-tokenizer whose add_prefix_space differs from this flag (default False).
    pre_tokenizer = json.loads(tokenizer._tokenizer.to_str()).get("pre_tokenizer") or {}
    if "add_prefix_space" in pre_tokenizer:
        config["add_prefix_space"] = bool(pre_tokenizer["add_prefix_space"])
    return {k: v for k, v in config.items() if v is not None}
