"""OpenAI response bodies: a whole ``chat.completion`` / ``text_completion``, or its server-sent-event stream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from openchat_hf.serving.errors import ServingError, internal_error
from openchat_hf.serving.protocol import new_id, now, usage

logger = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


def sse(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class Completion:
    """One request's answer: ``collect()`` for a JSON body, ``events()`` for a stream (always ending ``[DONE]``)."""

    def __init__(self, service: Any, gen: AsyncIterator, *, n: int, chat: bool, prompt_tokens: int, raw: dict):
        self.service = service
        self.gen = gen
        self.n = n
        self.chat = chat
        self.prompt_tokens = prompt_tokens
        self.raw = raw
        self.id = new_id("chatcmpl" if chat else "cmpl")
        self.created = now()
        self.object = "chat.completion" if chat else "text_completion"
        self.model = service.config.model_name

    async def collect(self) -> dict:
        n = self.n
        texts, finishes, completion = [""] * n, [None] * n, [0] * n
        try:
            async for index, text, finish, tokens in self.gen:
                texts[index] += text
                completion[index] = tokens
                finishes[index] = finish or finishes[index]
        finally:
            await self.gen.aclose()
        self.service.log_conversation(self.raw, texts)
        if self.chat:
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": texts[i]},
                    "logprobs": None,
                    "finish_reason": finishes[i],
                }
                for i in range(n)
            ]
        else:
            choices = [
                {"index": i, "text": texts[i], "logprobs": None, "finish_reason": finishes[i]} for i in range(n)
            ]
        return {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": usage(self.prompt_tokens, sum(completion)),
            "system_fingerprint": None,
        }

    def _chunk(self, choices: list, extra: dict | None = None) -> bytes:
        body = {"id": self.id, "object": self.object + (".chunk" if self.chat else ""), "created": self.created}
        return sse({**body, "model": self.model, "choices": choices, **(extra or {})})

    def _choice(self, index: int, text: str | None, finish: str | None) -> dict:
        if self.chat:
            delta = {} if text is None else {"content": text}
            return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}

    async def events(self, include_usage: bool) -> AsyncIterator[bytes]:
        """The SSE stream; an error midway becomes one ``data: {"error": ...}`` event, then ``[DONE]``."""
        n = self.n
        completion, answers = [0] * n, [""] * n
        try:
            if self.chat:
                for i in range(n):
                    role = {"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None}
                    yield self._chunk([{**role, "finish_reason": None}])
            async for index, text, finish, tokens in self.gen:
                completion[index] = tokens
                answers[index] += text
                if text:
                    yield self._chunk([self._choice(index, text, None)])
                if finish:
                    yield self._chunk([self._choice(index, None, finish)])
            if include_usage:
                yield self._chunk([], {"usage": usage(self.prompt_tokens, sum(completion))})
            self.service.log_conversation(self.raw, answers)
        except ServingError as err:
            self.service.metrics.error(err.status, err.code)
            yield sse(err.to_dict())
        except Exception:
            logger.exception("Generation failed during a stream")
            err = internal_error()
            self.service.metrics.error(err.status, err.code)
            yield sse(err.to_dict())
        finally:
            await self.gen.aclose()
        yield DONE
