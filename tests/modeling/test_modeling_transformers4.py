"""The exported checkpoint loads in transformers 4.51 (TGI 3.x's) and gives the same ids, template text and config.

Slow: builds (once, cached in the temp dir) a separate virtualenv with ``transformers==4.51.*``, ``tokenizers`` and ``jinja2``
from PyPI (no torch needed for tokenizers and configs). Skipped only when PyPI cannot be reached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_modeling_export import conversations
from transformers import AutoConfig, AutoTokenizer, GenerationConfig

from openchat_hf.modeling import export_checkpoint, patch_model

pytestmark = pytest.mark.slow

VENV = Path(os.environ.get("OPENCHAT_HF_TF4_VENV", Path(tempfile.gettempdir()) / "openchat-hf-transformers451"))
NETWORK_ERRORS = (
    "No matching distribution",
    "Could not find a version",
    "NewConnectionError",
    "Network is unreachable",
)

PROBE = r"""
import json, sys
import transformers
from transformers import AutoConfig, AutoTokenizer, GenerationConfig

folder, cases = sys.argv[1], json.load(open(sys.argv[2]))
tokenizer = AutoTokenizer.from_pretrained(folder)
config = AutoConfig.from_pretrained(folder)
out = {
    "version": transformers.__version__,
    "tokenizer_class": type(tokenizer).__name__,
    "eos_token_id": GenerationConfig.from_pretrained(folder).eos_token_id,
    "rope_theta": getattr(config, "rope_theta", None),
    "rope_scaling": getattr(config, "rope_scaling", None),
    "max_position_embeddings": getattr(config, "max_position_embeddings", None),
    "openchat_model_type": config.openchat_model_type,
    "special_ids": sorted(tokenizer.all_special_ids),
    "texts": [],
    "ids": [],
    "ids_default": [],
    "decoded": [],
}
for case in cases:
    text = tokenizer.apply_chat_template(case["messages"], tokenize=False, add_generation_prompt=case["prompt"])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    out["texts"].append(text)
    out["ids"].append(ids)
    out["ids_default"].append(tokenizer(text)["input_ids"])
    out["decoded"].append(tokenizer.decode(ids, skip_special_tokens=True))
print(json.dumps(out))
"""


def _venv_python() -> Path:
    python = VENV / "bin" / "python"
    check = [
        str(python),
        "-c",
        "import jinja2, transformers, sys; sys.exit(not transformers.__version__.startswith('4.51.'))",
    ]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True)
    pip = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "transformers==4.51.*",
            "tokenizers",
            "jinja2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if pip.returncode != 0:
        if any(marker in pip.stdout + pip.stderr for marker in NETWORK_ERRORS):
            pytest.skip(f"PyPI is unreachable, cannot build the transformers 4.51 virtualenv: {pip.stderr[-300:]}")
        raise AssertionError(f"pip install transformers==4.51.* failed:\n{pip.stderr}")
    return python


@pytest.fixture(scope="module")
def tf4_python():
    return _venv_python()


@pytest.fixture(scope="module")
def exported_yarn(tiny_llama_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("yarn")
    patched = patch_model(tiny_llama_dir, root / "patched", "openchat_8192", context_method="yarn")
    return export_checkpoint(patched, root / "exported")


@pytest.mark.parametrize("which", ["exported_llama", "exported_bigcode", "exported_yarn"])
def test_transformers_451_loads_the_export(which, tf4_python, request, tmp_path):
    folder = request.getfixturevalue(which)
    cases = [{"messages": m, "prompt": p} for m, p in conversations(25, seed=7)]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    (tmp_path / "probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run(
        [str(tf4_python), str(tmp_path / "probe.py"), str(folder), str(tmp_path / "cases.json")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    old = json.loads(result.stdout.strip().splitlines()[-1])

    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = AutoConfig.from_pretrained(folder)
    assert old["version"].startswith("4.51.")
    assert old["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert old["eos_token_id"] == GenerationConfig.from_pretrained(folder).eos_token_id
    assert old["eos_token_id"][0] == tokenizer.convert_tokens_to_ids("<|end_of_turn|>")
    assert old["openchat_model_type"] == config.openchat_model_type
    assert set(old["special_ids"]) >= {old["eos_token_id"][0]}
    for case, text, ids, ids_default, decoded in zip(
        cases, old["texts"], old["ids"], old["ids_default"], old["decoded"], strict=True
    ):
        ours = tokenizer.apply_chat_template(case["messages"], tokenize=False, add_generation_prompt=case["prompt"])
        assert text == ours
        assert ids == tokenizer(ours, add_special_tokens=False)["input_ids"]
        assert ids_default == tokenizer(ours)["input_ids"]
        assert decoded == tokenizer.decode(ids, skip_special_tokens=True)
    rope = getattr(config, "rope_parameters", None)
    if rope:
        assert old["rope_theta"] == rope["rope_theta"]
        assert old["max_position_embeddings"] == config.max_position_embeddings
        if rope["rope_type"] == "default":
            assert old["rope_scaling"] is None
        else:
            assert old["rope_scaling"]["rope_type"] == rope["rope_type"]
            assert old["rope_scaling"]["factor"] == rope["factor"]
    else:
        assert old["rope_scaling"] is None
