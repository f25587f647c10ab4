"""Proxy to a running Text Generation Inference server through ``huggingface_hub.AsyncInferenceClient``.

We send our own rendered prompt (never TGI's chat template), the EOT string as a stop sequence, and read token
counts from the stream's ``details``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from openchat_hf.serving.backends.base import Backend, GenerationEvent, GenerationRequest
from openchat_hf.serving.errors import ServingError

_FINISH = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


class TGIBackend(Backend):
    """Generate with TGI's ``/generate_stream`` (``text_generation(stream=True, details=True)``)."""

    name = "tgi"
    unsupported_params = frozenset({"presence_penalty"})  # TGI has no presence penalty
    response_formats = ("text", "json_object", "json_schema")  # sent as TGI's JSON grammar

    def __init__(self, url: str, tokenizer: Any, config: Any, *, eot_token: str, timeout: float = 600) -> None:
        super().__init__(tokenizer, config)
        from huggingface_hub import AsyncInferenceClient

        self.url = url.rstrip("/")
        self.eot_token = eot_token
        self.client = AsyncInferenceClient(base_url=self.url, timeout=timeout)
        # The client's default HTTP session refuses every request under HF_HUB_OFFLINE=1 (meant for the Hub); a TGI
        # server we were pointed at is not the Hub, so give the client a plain session.
        import httpx2

        self.client._async_client = httpx2.AsyncClient(timeout=timeout, follow_redirects=True)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        import httpx2
        from huggingface_hub.errors import HfHubHTTPError

        p = request.params
        kwargs: dict[str, Any] = {
            "max_new_tokens": p.max_tokens,
            "stop": [self.eot_token, *p.stop],
            "seed": p.seed,
            "details": True,
            "stream": True,
            "return_full_text": False,
            "frequency_penalty": p.frequency_penalty or None,
        }
        if p.json_schema is not None:
            kwargs["grammar"] = {"type": "json", "value": p.json_schema}
        if p.temperature == 0:
            kwargs["do_sample"] = False
        else:  # TGI wants temperature > 0 and 0 < top_p < 1
            kwargs.update(do_sample=True, temperature=p.temperature, top_p=p.top_p if 0 < p.top_p < 1 else None)
        count = 0
        try:
            stream = await self.client.text_generation(request.prompt_text, **kwargs)
            async for out in stream:
                count += 1
                text = "" if out.token.special else out.token.text
                finish = None
                if out.details is not None:
                    count = out.details.generated_tokens
                    finish = _FINISH.get(str(out.details.finish_reason), "stop")
                yield GenerationEvent(text, [out.token.id], count, finish)
                if finish:
                    return
        except HfHubHTTPError as err:
            raise ServingError(f"The TGI upstream failed: {err}", status=502, type="upstream_error") from None
        except (OSError, httpx2.TransportError) as err:
            raise ServingError(f"Cannot reach TGI at {self.url}: {err}", status=502, type="upstream_error") from None

    async def close(self) -> None:
        await self.client._async_client.aclose()
        await self.client.close()
