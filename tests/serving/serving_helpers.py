"""Helpers shared by the serving tests: real uvicorn servers on free loopback ports and a tiny chat checkpoint."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx

MODEL_NAME = "tiny-openchat"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """Run an ASGI app with uvicorn on 127.0.0.1 in a background thread (same process, so tests can inspect it)."""

    def __init__(self, app) -> None:
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def build_chat_checkpoint(out: Path, base_dir: Path) -> Path:
    """Base tiny LLaMA + EOT token + chat template + generation eos [eos, eot] + openchat_model_type, saved."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    try:
        from openchat_hf.modeling import add_eot_token
    except ImportError:  # the modeling area is not there: do by hand what add_eot_token does
        from openchat_hf.templates import eot_token_id, setup_tokenizer

        setup_tokenizer(tokenizer, "openchat")
        model.resize_token_embeddings(len(tokenizer))
        eot = eot_token_id(tokenizer, "openchat")
        model.config.openchat_model_type = "openchat"
        model.generation_config.eos_token_id = [tokenizer.eos_token_id, eot]
    else:
        add_eot_token(model, tokenizer, "openchat")
        model.config.openchat_model_type = "openchat"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
