"""Tiny, locally built tokenizers and random-init models: the embedded default for the demo and the tests.

Nothing here touches the network. The tokenizer is a BPE trained in a second on the bundled Vicuna-bench text, in
the two shapes OpenChat's base models use: ``llama`` (SentencePiece-like Metaspace with byte fallback) and ``gpt2``
(byte-level, like StarCoder).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from openchat_hf.resources import iter_resource_texts

logger = logging.getLogger(__name__)

TOKENIZER_STYLES = ("llama", "gpt2")


def _corpus(extra_texts: Iterable[str] | None) -> Iterator[str]:
    yield from iter_resource_texts()
    if extra_texts is not None:
        yield from extra_texts


def _with_byte_fallback_pieces(tok: Any) -> Any:
    """Append the 256 ``<0xXX>`` pieces to the BPE vocabulary as ordinary pieces (as in LLaMA), not added tokens."""
    from tokenizers import Tokenizer

    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    for i in range(256):
        vocab.setdefault(f"<0x{i:02X}>", len(vocab))
    return Tokenizer.from_str(json.dumps(spec))


def build_tiny_tokenizer(
    style: str = "llama", vocab_size: int = 2048, extra_texts: Iterable[str] | None = None
) -> Any:
    """Train a small BPE tokenizer on the bundled text and wrap it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if style == "llama":
        specials = ["<unk>", "<s>", "</s>"]
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
        tok.decoder = decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        )
        trainer = trainers.BpeTrainer(vocab_size=vocab_size - 256, special_tokens=specials, show_progress=False)
        tok.train_from_iterator(_corpus(extra_texts), trainer=trainer)
        tok = _with_byte_fallback_pieces(tok)
        wrapped = PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", add_bos_token=False
        )
    elif style == "gpt2":
        specials = ["<|endoftext|>"]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(_corpus(extra_texts), trainer=trainer)
        wrapped = PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
        )
    else:
        raise ValueError(f"Unknown tokenizer style {style!r}; expected one of {TOKENIZER_STYLES}.")
    wrapped.model_max_length = 8192
    return wrapped


def build_tiny_model(
    tokenizer: Any,
    family: str = "llama",
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    max_position_embeddings: int = 2048,
    tie_word_embeddings: bool = False,
    seed: int = 0,
) -> Any:
    """A random-init causal LM of ``family`` (``llama`` or ``gpt_bigcode``) sized for CPU tests."""
    import torch
    from transformers import AutoModelForCausalLM, GPTBigCodeConfig, LlamaConfig

    torch.manual_seed(seed)
    vocab = len(tokenizer)
    if family in ("llama", "mistral"):
        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 2,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=max(1, num_heads // 2),
            max_position_embeddings=max_position_embeddings,
            tie_word_embeddings=tie_word_embeddings,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    elif family == "gpt_bigcode":
        config = GPTBigCodeConfig(
            vocab_size=vocab,
            n_embd=hidden_size,
            n_layer=num_layers,
            n_head=num_heads,
            n_positions=max_position_embeddings,
            multi_query=True,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    else:
        raise ValueError(f"Unknown model family {family!r}; expected 'llama' or 'gpt_bigcode'.")
    model = AutoModelForCausalLM.from_config(config)
    model.eval()
    return model


def save_tiny_base(output_dir: str | Path, family: str = "llama", **model_kwargs: Any) -> Path:
    """Write a tiny random-init base model and its tokenizer (no EOT yet) to ``output_dir``; reuse it if present."""
    output_dir = Path(output_dir)
    if (output_dir / "config.json").exists() and (output_dir / "tokenizer.json").exists():
        return output_dir
    style = "gpt2" if family == "gpt_bigcode" else "llama"
    tokenizer = build_tiny_tokenizer(style)
    model = build_tiny_model(tokenizer, family, **model_kwargs)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    logger.info("Wrote a tiny random-init %s base model to %s", family, output_dir)
    return output_dir
