"""Real assets from the package index: what they contain, how they are verified, and every failure in one line."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from real_assets import REAL_TOKENIZERS

from openchat_hf import assets
from openchat_hf.assets import AssetError, cache_root, fetch_asset, read_reference_encodings

REPO = Path(__file__).resolve().parents[2]


def _cli(*args, env=None, timeout=300):
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "openchat_hf.cli", "assets", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def _one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("name", ["llama2-tokenizer", "starcoder-tokenizer", "llama3-tokenizer"])
def test_reference_encodings_reproduced(real_tokenizer, real_tokenizer_dir, name):
    folder = real_tokenizer_dir(name)
    cases = read_reference_encodings(folder / "reference" / "encodings.inp", folder / "reference" / "encodings.out")
    assert len(cases) == 46
    tokenizer = real_tokenizer(name)
    assert sum(tokenizer.encode(text, add_special_tokens=False) == ids for text, ids in cases) == 46


def test_tokenizer_folders_are_plain_hugging_face_folders(real_tokenizer, real_tokenizer_dir):
    expected = {  # size, BOS, EOS, ids of "Hello world" with special tokens
        "llama2-tokenizer": (32000, "<s>", "</s>", [1, 15043, 3186]),
        "mistral-tokenizer": (32000, "<s>", "</s>", [1, 22557, 1526]),
        "starcoder-tokenizer": (49152, "<|endoftext|>", "<|endoftext|>", [8279, 5788]),
        "llama3-tokenizer": (128256, "<|begin_of_text|>", "<|end_of_text|>", [9906, 1917]),
    }
    for name in REAL_TOKENIZERS:
        tokenizer = real_tokenizer(name)
        size, bos, eos, ids = expected[name]
        assert (len(tokenizer), tokenizer.bos_token, tokenizer.eos_token) == (size, bos, eos), name
        assert tokenizer("Hello world").input_ids == ids, name
        record = json.loads((real_tokenizer_dir(name) / "asset.json").read_text())
        assert record["recipe"] == assets.RECIPE_VERSION and record["packages"]
        config = json.loads((real_tokenizer_dir(name) / "tokenizer_config.json").read_text())
        assert config["tokenizer_class"] == "PreTrainedTokenizerFast"  # loadable by transformers 4 too
    mistral = real_tokenizer_dir("mistral-tokenizer") / "tokenizer.model"
    assert hashlib.sha256(mistral.read_bytes()).hexdigest() == assets.MEMBER_SHA256["tokenizer.model.v1"]
    starcoder = real_tokenizer("starcoder-tokenizer")
    assert starcoder.encode("def print_hello_world():") == [589, 1459, 81, 7656, 81, 5860, 2262]
    assert len(starcoder.get_added_vocab()) == 19  # ids 0-18, the type-3 tokens, are special
    llama3 = real_tokenizer("llama3-tokenizer")
    assert len([t for t in llama3.get_added_vocab() if t.startswith("<|")]) == 256


def test_cli_list_and_fetch_print_the_cached_folder(real_tokenizer_dir):
    folder = real_tokenizer_dir("llama2-tokenizer")
    listed = _cli("list")
    assert listed.returncode == 0, listed.stderr
    assert f"cache: {cache_root()}" in listed.stdout
    assert all(name in listed.stdout for name in assets.list_assets())
    fetched = _cli("fetch", "llama2-tokenizer", "--no-progress")
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == str(folder)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    for var in ("OPENCHAT_HF_ASSETS", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "huggingface" / "openchat-hf" / "assets"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "huggingface" / "openchat-hf" / "assets"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert cache_root() == tmp_path / "hf" / "openchat-hf" / "assets"
    monkeypatch.setenv("OPENCHAT_HF_ASSETS", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


def test_unknown_name_is_one_line_error(tmp_path):
    result = _cli("fetch", "llama9-tokenizer", env={"OPENCHAT_HF_ASSETS": str(tmp_path)})
    _one_line_error(result, "unknown asset 'llama9-tokenizer'", "llama2-tokenizer")
    assert not any(tmp_path.iterdir())  # checked before anything was downloaded


def test_unreachable_registry_is_one_line_error(tmp_path):
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"OPENCHAT_HF_ASSETS": str(tmp_path), "PIP_INDEX_URL": f"http://127.0.0.1:{port}/simple"}
    result = _cli("fetch", "mistral-tokenizer", env=env, timeout=120)
    _one_line_error(result, "cannot reach the package index", f"127.0.0.1:{port}", "PIP_INDEX_URL")
    assert not (tmp_path / "mistral-tokenizer").exists()


class _FakeIndex:
    """A PEP 503 (HTML) or PEP 691 (JSON) simple index on loopback serving the given files."""

    def __init__(self, files: dict[str, bytes], project: str, *, json_api: bool, stated_sha: str | None = None):
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == f"/simple/{project}/":
                    if json_api:
                        body = json.dumps(
                            {
                                "meta": {"api-version": "1.0"},
                                "name": project,
                                "files": [
                                    {
                                        "filename": n,
                                        "url": f"/files/{n}",
                                        "hashes": {"sha256": index.sha(n, stated_sha)},
                                    }
                                    for n in files
                                ],
                            }
                        ).encode()
                        kind = "application/vnd.pypi.simple.v1+json"
                    else:
                        links = "".join(
                            f'<a href="../../files/{n}#sha256={index.sha(n, stated_sha)}">{n}</a>' for n in files
                        )
                        body = f"<html><body>{links}</body></html>".encode()
                        kind = "text/html"
                elif self.path.startswith("/files/") and self.path[7:] in files:
                    body, kind = files[self.path[7:]], "application/octet-stream"
                    index.downloads += 1
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.files = files
        self.downloads = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sha(self, name, stated):
        return stated or hashlib.sha256(self.files[name]).hexdigest()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mistral_wheel(real_tokenizer_dir):
    real_tokenizer_dir("mistral-tokenizer")  # makes sure the verified wheel is in the downloads cache
    return (cache_root() / "downloads" / assets.MISTRAL_COMMON.filename).read_bytes()


@pytest.mark.parametrize("json_api", [False, True])
def test_download_through_a_mirror_then_cached(tmp_path, monkeypatch, mistral_wheel, json_api):
    index = _FakeIndex({assets.MISTRAL_COMMON.filename: mistral_wheel}, "mistral-common", json_api=json_api)
    try:
        monkeypatch.setenv("PIP_INDEX_URL", index.url)
        folder = fetch_asset("mistral-tokenizer", cache_dir=tmp_path, progress=False)
        assert folder == tmp_path / "mistral-tokenizer" and (folder / "tokenizer.json").is_file()
        assert index.downloads == 1
        assert fetch_asset("mistral-tokenizer", cache_dir=tmp_path, progress=False) == folder
        shutil.rmtree(folder)  # the downloaded package is kept: rebuilding does not download again
        fetch_asset("mistral-tokenizer", cache_dir=tmp_path, progress=False)
        assert index.downloads == 1
        assert not [p.name for p in tmp_path.iterdir() if p.name.endswith((".building", ".part"))]
    finally:
        index.close()


def test_corrupt_download_is_one_line_error_and_kept_nowhere(tmp_path, mistral_wheel):
    corrupt = bytearray(mistral_wheel)
    corrupt[1000] ^= 0xFF
    index = _FakeIndex(
        {assets.MISTRAL_COMMON.filename: bytes(corrupt)},
        "mistral-common",
        json_api=False,
        stated_sha=assets.MISTRAL_COMMON.sha256,
    )  # the index claims the right hash
    try:
        result = _cli(
            "fetch",
            "mistral-tokenizer",
            "--no-progress",
            env={"OPENCHAT_HF_ASSETS": str(tmp_path), "PIP_INDEX_URL": index.url},
        )
    finally:
        index.close()
    _one_line_error(result, "corrupt download of mistral_common-1.13.1-py3-none-any.whl", "nothing was kept")
    assert not list((tmp_path / "downloads").iterdir()) and not (tmp_path / "mistral-tokenizer").exists()


def test_index_serving_another_file_is_refused(tmp_path, monkeypatch, mistral_wheel):
    index = _FakeIndex({assets.MISTRAL_COMMON.filename: b"not a wheel"}, "mistral-common", json_api=True)
    try:
        monkeypatch.setenv("PIP_INDEX_URL", index.url)
        with pytest.raises(AssetError, match="serves a different file"):
            fetch_asset("mistral-tokenizer", cache_dir=tmp_path, progress=False)
        assert index.downloads == 0
    finally:
        index.close()


def test_interrupted_build_leaves_no_folder_and_is_rebuilt(tmp_path, monkeypatch, mistral_wheel):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / assets.MISTRAL_COMMON.filename).write_bytes(mistral_wheel)
    original = assets.ASSETS["mistral-tokenizer"]

    def dies_half_way(files, out, progress):
        (out / "tokenizer.model").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setitem(
        assets.ASSETS, "mistral-tokenizer", assets.Asset(**{**original.__dict__, "build": dies_half_way})
    )
    with pytest.raises(KeyboardInterrupt):
        fetch_asset("mistral-tokenizer", cache_dir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["downloads"]
    # A folder without its record (written by hand, or by an older version) is never taken as finished.
    (tmp_path / "mistral-tokenizer").mkdir()
    (tmp_path / "mistral-tokenizer" / "tokenizer.model").write_bytes(b"half")
    assert assets.cached_asset("mistral-tokenizer", tmp_path) is None
    monkeypatch.setitem(assets.ASSETS, "mistral-tokenizer", original)
    folder = fetch_asset("mistral-tokenizer", cache_dir=tmp_path, progress=False)
    assert (folder / "tokenizer.model").read_bytes() == (
        cache_root() / "mistral-tokenizer" / "tokenizer.model"
    ).read_bytes()


@pytest.mark.slow
def test_smollm2_is_a_float32_safetensors_chat_model(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (smollm2_dir / "model.safetensors").is_file() and not list(smollm2_dir.glob("*.gguf"))
    model = AutoModelForCausalLM.from_pretrained(str(smollm2_dir))
    assert model.dtype == torch.float32 and model.config.model_type == "llama"
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_dir))
    assert tokenizer.eos_token == "<|im_end|>" and len(tokenizer) == 49152
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, tokenize=False
    )
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=10, do_sample=False)
    assert tokenizer.decode(out[0, ids.shape[1] :]).startswith("The capital of France is Paris.")
