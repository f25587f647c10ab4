"""export_checkpoint and `openchat-hf export`: serving files, minijinja == transformers, EOT stops generation, push."""

from __future__ import annotations

import json
import random

import minijinja
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessor, LogitsProcessorList

from openchat_hf.cli import main
from openchat_hf.folder_info import FolderInfoError
from openchat_hf.model_types import EOT_TOKEN
from openchat_hf.modeling import ModelingError, export_checkpoint
from openchat_hf.templates import ChatTemplate

PIECES = [
    "Hello!",
    "line one\nline two\n\n",
    "  leading and trailing spaces  ",
    "quotes \" and ' and `back`",
    "{{ not a variable }} {% if %} {# comment #}",
    EOT_TOKEN,
    "<s>",
    "</s>",
    "<unk>",
    "<|endoftext|>",
    "ünïcødé 你好 🙂",
    "\\n is not a newline, \\u200b neither",
    "\ttab",
    "",
]


def conversations(n: int, seed: int = 0) -> list[tuple[list[dict], bool]]:
    """``n`` random conversations (system or not, 1-6 turns, tricky contents) with an add_generation_prompt flag."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        messages = []
        if rng.random() < 0.3:
            messages.append({"role": "system", "content": rng.choice(PIECES)})
        for turn in range(rng.randint(1, 6)):
            content = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 3)))
            messages.append({"role": "user" if turn % 2 == 0 else "assistant", "content": content})
        out.append((messages, messages[-1]["role"] == "user" and rng.random() < 0.8))
    return out


def minijinja_render(template: str, tokenizer, messages, add_generation_prompt: bool) -> str:
    """Render like TGI 3.x: minijinja with pycompat, trim/lstrip blocks, raise_exception, bos/eos tokens."""

    def raise_exception(message):
        raise ValueError(message)

    env = minijinja.Environment(trim_blocks=True, lstrip_blocks=True, pycompat=True)
    env.add_function("raise_exception", raise_exception)
    return env.render_str(
        template,
        messages=messages,
        add_generation_prompt=add_generation_prompt,
        bos_token=tokenizer.bos_token,
        eos_token=tokenizer.eos_token,
    )


@pytest.mark.parametrize("which", ["llama", "bigcode"])
def test_minijinja_renders_what_transformers_renders(which, exported_llama, exported_bigcode):
    out = exported_llama if which == "llama" else exported_bigcode
    model_type = json.loads((out / "config.json").read_text())["openchat_model_type"]
    tokenizer = AutoTokenizer.from_pretrained(out)
    inline = json.loads((out / "tokenizer_config.json").read_text())["chat_template"]
    assert json.loads((out / "chat_template.json").read_text())["chat_template"] == inline
    assert inline == ChatTemplate(model_type, tokenizer).jinja(generation_markers=False)
    assert "{%- generation" in (out / "chat_template.jinja").read_text()
    reference = ChatTemplate(model_type, tokenizer)
    for messages, prompt in conversations(60, seed=len(which)):
        expected = reference.render(messages, add_generation_prompt=prompt).text
        hf_text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
        assert hf_text == expected
        assert minijinja_render(inline, tokenizer, messages, prompt) == expected
    with pytest.raises(Exception, match="generation"):  # why TGI needs the marker-free copies
        minijinja_render(
            (out / "chat_template.jinja").read_text(), tokenizer, [{"role": "user", "content": "x"}], True
        )
    misplaced = [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]
    with pytest.raises(Exception, match="system message may only be the first"):
        minijinja_render(inline, tokenizer, misplaced, False)


def test_exported_files(patched_llama, exported_llama):
    out = exported_llama
    assert sorted(p.name for p in out.iterdir()) == [
        "chat_template.jinja",
        "chat_template.json",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "openchat_hf.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    config = json.loads((out / "config.json").read_text())
    assert config["openchat_model_type"] == "openchat_8192"
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"] == 10000.0
    assert config["rope_scaling"] is None and config["max_position_embeddings"] == 8192
    assert config["torch_dtype"] == "float32"
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "backend" not in tokenizer_config and "local_files_only" not in tokenizer_config
    eot = str(json.loads((out / "config.json").read_text())["vocab_size"] - 1)
    assert tokenizer_config["added_tokens_decoder"][eot]["content"] == EOT_TOKEN
    assert tokenizer_config["added_tokens_decoder"][eot]["special"] is True
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == [int(eot), 2]
    source, exported = load_file(patched_llama / "model.safetensors"), load_file(out / "model.safetensors")
    assert source.keys() == exported.keys() and all(torch.equal(source[k], exported[k]) for k in source)


@pytest.mark.parametrize("which", ["llama", "bigcode"])
def test_exported_tokenizer_is_the_trained_one(
    which, patched_llama, patched_bigcode, exported_llama, exported_bigcode
):
    """transformers 5 loads the exported tokenizer_config.json into a tokenizer with the same ids and specials."""
    patched, exported = (patched_llama, exported_llama) if which == "llama" else (patched_bigcode, exported_bigcode)
    ours, theirs = AutoTokenizer.from_pretrained(patched), AutoTokenizer.from_pretrained(exported)
    assert type(theirs) is type(ours)
    assert theirs.all_special_ids == ours.all_special_ids or set(theirs.all_special_ids) >= set(ours.all_special_ids)
    for messages, prompt in conversations(40, seed=3):
        text = ours.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
        for special in (False, True):
            assert (
                theirs(text, add_special_tokens=special)["input_ids"]
                == ours(text, add_special_tokens=special)["input_ids"]
            )
        ids = ours(text, add_special_tokens=False)["input_ids"]
        assert theirs.decode(ids, skip_special_tokens=True) == ours.decode(ids, skip_special_tokens=True)


def test_bigcode_export(exported_bigcode):
    tokenizer_config = json.loads((exported_bigcode / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert tokenizer_config["add_prefix_space"] is False  # byte-level pre-tokenizer, kept as trained
    config = json.loads((exported_bigcode / "config.json").read_text())
    assert "rope_theta" not in config and "rope_scaling" not in config  # learned positions
    generation = json.loads((exported_bigcode / "generation_config.json").read_text())
    assert generation["eos_token_id"][0] == AutoTokenizer.from_pretrained(exported_bigcode).convert_tokens_to_ids(
        EOT_TOKEN
    )


class ForceTokenAt(LogitsProcessor):
    """Make ``token_id`` the only choice at generation step ``step`` (the model is random-init)."""

    def __init__(self, prompt_length: int, step: int, token_id: int) -> None:
        self.prompt_length, self.step, self.token_id = prompt_length, step, token_id

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] - self.prompt_length == self.step:
            scores = torch.full_like(scores, -float("inf"))
            scores[:, self.token_id] = 0.0
        return scores


def test_exported_checkpoint_chats_and_stops_at_eot(exported_llama):
    tokenizer = AutoTokenizer.from_pretrained(exported_llama)
    model = AutoModelForCausalLM.from_pretrained(exported_llama)
    eot = tokenizer.convert_tokens_to_ids(EOT_TOKEN)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    reference = ChatTemplate("openchat_8192", tokenizer).tokenize(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True
    )
    assert prompt["input_ids"][0].tolist() == reference.input_ids
    n = prompt["input_ids"].shape[1]
    processors = LogitsProcessorList([ForceTokenAt(n, 3, eot)])
    output = model.generate(**prompt, max_new_tokens=12, do_sample=False, logits_processor=processors)
    assert output.shape[1] == n + 4 and output[0, -1].item() == eot  # stopped by generation_config's eos list
    assert EOT_TOKEN not in tokenizer.decode(output[0, n:], skip_special_tokens=True)
    without_eot = GenerationConfig.from_pretrained(exported_llama)
    without_eot.eos_token_id = [tokenizer.eos_token_id]
    longer = model.generate(
        **prompt, generation_config=without_eot, max_new_tokens=12, do_sample=False, logits_processor=processors
    )
    assert longer.shape[1] > n + 4  # control: the same run without EOT in the eos list goes on


def test_push_to_fake_hub(patched_llama, tmp_path, fake_hub):
    out = export_checkpoint(patched_llama, tmp_path / "out", push_to="fake-user/openchat-tiny")
    local = {p.name: p.read_bytes() for p in out.iterdir()}
    assert fake_hub.files("fake-user/openchat-tiny") == local
    from huggingface_hub import snapshot_download

    downloaded = snapshot_download("fake-user/openchat-tiny", cache_dir=tmp_path / "cache")
    tokenizer = AutoTokenizer.from_pretrained(downloaded)
    text = f"<s>Human: Hi{EOT_TOKEN}Assistant: Hello{EOT_TOKEN}"
    assert tokenizer(text)["input_ids"] == AutoTokenizer.from_pretrained(out)(text)["input_ids"]


def test_cli_export_push_and_errors(patched_llama, tiny_llama_dir, tmp_path, fake_hub, capsys, monkeypatch):
    assert main(["export", str(patched_llama), str(tmp_path / "a"), "--push", "fake-user/cli"]) == 0
    assert "pushed to fake-user/cli" in capsys.readouterr().out
    assert "config.json" in fake_hub.files("fake-user/cli")

    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    assert main(["export", str(patched_llama), str(tmp_path / "b"), "--push", "fake-user/other"]) == 2
    assert "Pushing to fake-user/other failed" in capsys.readouterr().err
    assert (tmp_path / "b" / "config.json").exists()  # the local export is kept
    assert not fake_hub.repo_exists("fake-user/other")

    assert main(["export", str(tiny_llama_dir), str(tmp_path / "c")]) == 2  # an unpatched base
    assert "does not record its model type (openchat_hf.json); pass --model-type" in capsys.readouterr().err
    with pytest.raises(ModelingError, match="openchat-hf patch"):
        export_checkpoint(tiny_llama_dir, tmp_path / "c", model_type="openchat")
    assert not (tmp_path / "c").exists()
    with pytest.raises(ModelingError, match="not a checkpoint folder"):
        export_checkpoint(tmp_path / "missing", tmp_path / "d")


def test_lora_adapter_is_merged(patched_llama, tmp_path):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(patched_llama)
    tokenizer = AutoTokenizer.from_pretrained(patched_llama)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"])
    peft_model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                param.add_(torch.randn_like(param) * 0.05)  # a trained adapter: merging must change the weights
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    (adapter / "README.md").write_text("# model card\n")
    expected = {k: v.clone() for k, v in peft_model.merge_and_unload().state_dict().items()}

    out = export_checkpoint(adapter, tmp_path / "out")
    exported = load_file(out / "model.safetensors")
    original = load_file(patched_llama / "model.safetensors")
    for name in ("model.layers.0.self_attn.q_proj.weight", "lm_head.weight", "model.embed_tokens.weight"):
        torch.testing.assert_close(exported[name], expected[name])
    q_proj = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(exported[q_proj], original[q_proj])
    assert json.loads((out / "config.json").read_text())["openchat_model_type"] == "openchat_8192"
    assert (out / "README.md").read_text() == "# model card\n"
    assert not list(tmp_path.glob(".merged-*"))


def test_custom_training_template_is_exported_as_trained(patched_llama, tmp_path):
    """A checkpoint whose template is not byte-identical to ours keeps it; its TGI copy drops only the markers."""
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(patched_llama, ckpt)
    custom = "{#- a comment added by hand -#}\n" + (ckpt / "chat_template.jinja").read_text()
    (ckpt / "chat_template.jinja").write_text(custom)
    out = export_checkpoint(ckpt, tmp_path / "out")
    assert (out / "chat_template.jinja").read_text() == custom
    inline = json.loads((out / "tokenizer_config.json").read_text())["chat_template"]
    assert "generation -%}" not in inline and "{%- if true -%}" in inline
    tokenizer = AutoTokenizer.from_pretrained(out)
    for messages, prompt in conversations(20, seed=11):
        expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
        assert minijinja_render(inline, tokenizer, messages, prompt) == expected

    with pytest.raises(
        FolderInfoError, match="for model type 'openchat_8192', not 'opencoder'; pass --model-type openchat_8192"
    ):
        export_checkpoint(patched_llama, tmp_path / "wrong", model_type="opencoder")
    assert not (tmp_path / "wrong").exists()
