"""``response_format`` for the embedded backend: JSON-schema constrained decoding with llguidance.

llguidance (Microsoft's grammar engine, also behind vLLM's and SGLang's structured outputs) compiles a JSON schema
into a grammar over the tokenizer's vocabulary; at every step :class:`JsonConstraint` gives the tokens that keep the
answer a valid prefix of a matching JSON value, and after the value is complete only the end-of-turn token.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from openchat_hf.serving.errors import ServingError

RESPONSE_FORMATS = ("text", "json_object", "json_schema")
_JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def available() -> bool:
    """Whether llguidance is installed (the ``serve`` extra)."""
    try:
        import llguidance  # noqa: F401
    except ImportError:
        return False
    return True


def structured_output(tokenizer: Any, vocab_size: int, eos_token_ids) -> StructuredOutput | None:
    """The embedded backend's ``response_format`` support: ``None`` without llguidance or a fast tokenizer."""
    if not (available() and getattr(tokenizer, "is_fast", False)):
        return None
    return StructuredOutput(tokenizer, vocab_size or len(tokenizer), sorted(eos_token_ids))


class StructuredOutput:
    """Compiles schemas for one tokenizer (cached) and builds a :class:`JsonConstraint` per sequence."""

    def __init__(self, tokenizer: Any, vocab_size: int, eos_token_ids: list[int], cache_size: int = 64) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.eos_token_ids = list(eos_token_ids)
        self.cache_size = cache_size
        self._lltokenizer: Any = None
        self._grammars: OrderedDict[str, str] = OrderedDict()

    def _llt(self) -> Any:
        if self._lltokenizer is None:
            import llguidance.hf

            self._lltokenizer = llguidance.hf.from_tokenizer(
                self.tokenizer, n_vocab=self.vocab_size, eos_token=self.eos_token_ids or None
            )
        return self._lltokenizer

    def grammar(self, schema: dict | bool) -> str:
        """The checked llguidance grammar of ``schema``; a 400 naming the problem when it is not usable."""
        import llguidance

        key = json.dumps(schema, sort_keys=True)
        if key in self._grammars:
            self._grammars.move_to_end(key)
            return self._grammars[key]
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=_JSON_OPTIONS)
            problem = llguidance.LLMatcher.validate_grammar(grammar, self._llt())
        except (ValueError, TypeError) as err:
            problem = str(err)
        if problem:
            raise ServingError(
                f"Invalid parameter 'response_format': the JSON schema cannot be used: {problem.splitlines()[0]}",
                param="response_format",
                code="invalid_value",
            )
        self._grammars[key] = grammar
        if len(self._grammars) > self.cache_size:
            self._grammars.popitem(last=False)
        return grammar

    def constraint(self, grammar: str) -> JsonConstraint:
        import llguidance

        return JsonConstraint(llguidance.LLMatcher(self._llt(), grammar), self.vocab_size)


class JsonConstraint:
    """One sequence's grammar state: ``allowed()`` is the boolean mask of the next tokens, ``advance(token)``."""

    def __init__(self, matcher: Any, vocab_size: int) -> None:
        self.matcher = matcher
        self.vocab_size = vocab_size

    def allowed(self) -> Any:
        import numpy as np
        import torch

        bits = np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8)
        mask = np.unpackbits(bits, bitorder="little")[: self.vocab_size].astype(bool)
        if self.matcher.is_error() or not mask.any():
            raise RuntimeError(f"the grammar allows no next token: {self.matcher.get_error()}")
        return torch.from_numpy(mask)

    def advance(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise RuntimeError(f"the grammar refused token {token}: {self.matcher.get_error()}")
