"""Model type registry, folder records (openchat_hf.json) and model types registered outside openchat-hf."""

from __future__ import annotations

import json

import pytest

from openchat_hf.model_types import (
    ModelType,
    ModelTypeError,
    get_model_type,
    list_model_types,
    parse_model_types,
    register_model_type,
)
from openchat_hf.templates import ChatTemplate


def test_builtin_model_types():
    assert {"openchat", "openchat_8192", "opencoder"} <= set(list_model_types())
    oc, oc8k, coder = get_model_type("openchat"), get_model_type("openchat_8192"), get_model_type("opencoder")
    assert (oc.family, oc.max_length, oc.eot_init, oc.add_bos) == ("llama", 2048, "mean", True)
    assert (oc8k.max_length, oc8k.context_extension, oc8k.user_prefix) == (8192, "extrapolate", "Human: ")
    assert (coder.family, coder.eot_init, coder.add_bos) == ("gpt_bigcode", "normal", False)
    assert (coder.user_prefix, coder.assistant_prefix) == ("User:", "Assistant:")


def test_unknown_model_type_lists_known_ones():
    with pytest.raises(ModelTypeError, match="Known: .*openchat"):
        get_model_type("nope")
    with pytest.raises(ModelTypeError, match="No model type"):
        parse_model_types(" , ")
    assert [m.name for m in parse_model_types("openchat, opencoder")] == ["openchat", "opencoder"]


def test_register_custom_model_type_and_use_it(make_tokenizer):
    mt = ModelType(
        name="test_zephyrish", family="mistral", max_length=4096, user_prefix="<u> ", assistant_prefix="<a> "
    )
    register_model_type(mt)
    with pytest.raises(ModelTypeError, match="already registered"):
        register_model_type(mt)
    register_model_type(mt, overwrite=True)
    template = ChatTemplate("test_zephyrish", make_tokenizer("openchat"))
    text = template.render([{"role": "user", "content": "q"}, {"role": "assistant", "content": "r"}]).text
    assert text == "<s><u> q<|end_of_turn|><a> r<|end_of_turn|>"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": ""}, "name"),
        ({"max_length": 0}, "max_length"),
        ({"eot_init": "zeros"}, "eot_init"),
    ],
)
def test_invalid_model_types_are_rejected(kwargs, message):
    base = {"name": "x", "family": "llama", "max_length": 16}
    with pytest.raises(ModelTypeError, match=message):
        ModelType(**{**base, **kwargs})


# ------------------------------------------------------------------------------- openchat_hf.json and model_type_of
def test_folder_info_round_trip_and_validation(tmp_path):
    from openchat_hf.folder_info import FOLDER_INFO_FILE, FolderInfoError, read_folder_info, write_folder_info

    assert read_folder_info(tmp_path / "missing") == {}
    write_folder_info(tmp_path, model_type=get_model_type("opencoder"), kind="patched")
    info = read_folder_info(tmp_path)
    assert (info["model_type"], info["tokenization"], info["kind"]) == ("opencoder", "joint", "patched")
    write_folder_info(tmp_path, kind="export", extra="kept")  # merged over what the folder holds
    assert read_folder_info(tmp_path) == {**info, "kind": "export", "extra": "kept"}
    with pytest.raises(ModelTypeError, match="Unknown model type 'nope'"):
        write_folder_info(tmp_path, model_type="nope")
    with pytest.raises(FolderInfoError, match="tokenization must be one of joint, segment"):
        write_folder_info(tmp_path, tokenization="word")
    (tmp_path / FOLDER_INFO_FILE).write_text("[1, 2")
    with pytest.raises(FolderInfoError, match="Cannot read .*openchat_hf.json"):
        read_folder_info(tmp_path)


def test_model_type_of_is_one_rule_for_every_kind_of_folder(tmp_path):
    import json

    from openchat_hf.folder_info import FolderInfoError, model_type_of, write_folder_info

    recorded = tmp_path / "recorded"
    write_folder_info(recorded, model_type="openchat_8192")
    (recorded / "config.json").write_text(json.dumps({"model_type": "llama", "openchat_model_type": "openchat"}))
    assert model_type_of(recorded).name == "openchat_8192"  # openchat_hf.json wins over config.json
    assert model_type_of(recorded, "openchat_8192").name == "openchat_8192"
    with pytest.raises(FolderInfoError, match="'openchat_8192', not 'openchat'; pass --model-type openchat_8192"):
        model_type_of(recorded, "openchat")

    legacy = tmp_path / "legacy"  # written before openchat_hf.json existed
    legacy.mkdir()
    (legacy / "config.json").write_text(json.dumps({"model_type": "gpt_bigcode", "openchat_model_type": "opencoder"}))
    assert model_type_of(legacy).name == "opencoder"

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert model_type_of(base, "openchat").name == "openchat"
    with pytest.raises(FolderInfoError, match="is a llama model but model type 'opencoder' is for gpt_bigcode"):
        model_type_of(base, "opencoder")
    with pytest.raises(
        FolderInfoError, match=r"pass --model-type \(for a llama model: openchat, openchat_8192, openchat_llama3[,)]"
    ):
        model_type_of(base)
    (base / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(FolderInfoError, match="register a model type with family='qwen2'"):
        model_type_of(base, "openchat")


# ----------------------------------------------------------------------------------- model types registered outside
PLUGIN = """
from openchat_hf.model_types import ModelType

{name} = ModelType(name="{name}", family="llama", max_length=512, user_prefix="Q: ", assistant_prefix="A: ")
"""


def _installed_plugin(root, name: str):
    """A package installed the way pip does it: a module plus a dist-info with an entry_points.txt."""
    (root / f"{name}_pkg.py").write_text(PLUGIN.format(name=name))
    dist = root / f"{name}_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[openchat_hf.model_types]\n{name} = {name}_pkg:{name}\n")
    return root


def _run(args, env_extra, cwd):
    import os
    import subprocess
    import sys

    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_entry_point_model_types_reach_every_command(tiny_llama_dir, tmp_path):
    """A model type from an installed package's entry point works in `openchat-hf patch` (a fresh process)."""
    import os

    (tmp_path / "site").mkdir()
    plugins = _installed_plugin(tmp_path / "site", "ep_chat")
    env = {"PYTHONPATH": os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "patched"
    result = _run(
        ["-m", "openchat_hf.cli", "patch", str(tiny_llama_dir), str(out), "--model-type", "ep_chat"], env, tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((out / "openchat_hf.json").read_text())["model_type"] == "ep_chat"
    assert "Q: " in (out / "chat_template.jinja").read_text()
    # the recipes' code path (the registry, used by recipes/sft.py through load_model_and_tokenizer) sees it too
    code = "from openchat_hf.folder_info import model_type_of; import sys; print(model_type_of(sys.argv[1]).name)"
    result = _run(["-c", code, str(out)], env, tmp_path)
    assert result.stdout.strip() == "ep_chat", result.stderr[-2000:]


def test_model_type_module_option_and_environment(tmp_path, capsys, monkeypatch):
    from openchat_hf.cli import main
    from openchat_hf.model_types import MODULES_ENV

    module = tmp_path / "my_types.py"
    module.write_text(PLUGIN.format(name="mod_chat") + "\nfrom openchat_hf.model_types import register_model_type\n"
                      "register_model_type(mod_chat)\n")  # fmt: skip
    assert "mod_chat" not in list_model_types()
    monkeypatch.setenv(MODULES_ENV, "")
    # an unknown type fails in one line; with the module it is found (here: `data run` converts for it)
    assert main(["data", "run", str(tmp_path / "none"), str(tmp_path / "out"), "--model-types", "mod_chat"]) == 2
    assert "Unknown model type 'mod_chat'" in capsys.readouterr().err
    assert main(["--model-type-module", str(module), "data", "run", str(tmp_path / "none"), str(tmp_path / "o")]) == 2
    assert "Unknown model type" not in capsys.readouterr().err
    assert get_model_type("mod_chat").user_prefix == "Q: "
    import os

    assert str(module) in os.environ[MODULES_ENV]  # subprocesses (accelerate launch recipes/sft.py) inherit it
    result = _run(
        ["-c", "from openchat_hf.model_types import list_model_types; print(list_model_types())"], {}, tmp_path
    )
    assert "mod_chat" in result.stdout, result.stderr[-2000:]

    assert main(["--model-type-module", "no_such_module_xyz", "data", "run", "a", "b"]) == 2
    assert "Cannot import the model type module 'no_such_module_xyz': ModuleNotFoundError" in capsys.readouterr().err
