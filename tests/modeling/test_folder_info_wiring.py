"""Every folder openchat-hf writes records its model type; every part refuses a model type that does not fit."""

from __future__ import annotations

import json

import pytest
from test_modeling_export import minijinja_render  # renders as TGI 3.x does

from openchat_hf.cli import main
from openchat_hf.folder_info import FolderInfoError, read_folder_info
from openchat_hf.templates import ChatTemplate


@pytest.fixture(scope="module")
def trained_dirs(tiny_chat_dir, tmp_path_factory):
    """The bundled ShareGPT sample through `data run`, one training step, the trainer's save, and an export."""
    from openchat_hf.data import PipelineConfig, run_pipeline
    from openchat_hf.modeling import export_checkpoint
    from openchat_hf.resources import SAMPLE_SHAREGPT_DIR
    from openchat_hf.training.config import OpenChatSFTConfig
    from openchat_hf.training.data import load_sft_datasets
    from openchat_hf.training.model import load_model_and_tokenizer
    from openchat_hf.training.trainer import OpenChatSFTTrainer

    root = tmp_path_factory.mktemp("wiring")
    run_pipeline(
        SAMPLE_SHAREGPT_DIR,
        root / "data",
        PipelineConfig(model_types="openchat", tokenizer=str(tiny_chat_dir), decontaminate=False),
    )
    model, tokenizer, name = load_model_and_tokenizer(str(tiny_chat_dir), dtype="float32")
    train, _ = load_sft_datasets(str(root / "data" / "openchat"), tokenizer, name)
    args = OpenChatSFTConfig(
        output_dir=str(root / "ckpt"), use_cpu=True, bf16=False, report_to="none", max_steps=1,
        max_tokens_per_batch=1024, save_strategy="no",
    )  # fmt: skip
    trainer = OpenChatSFTTrainer(
        model=model, args=args, train_dataset=train.select(range(8)), processing_class=tokenizer
    )
    trainer.train()
    trainer.save_model(str(root / "ckpt"))
    export_checkpoint(root / "ckpt", root / "export")
    return root


def test_every_folder_we_write_records_its_model_type(tiny_chat_dir, trained_dirs):
    kinds = {
        tiny_chat_dir: "patched",
        trained_dirs / "data" / "openchat": "data",
        trained_dirs / "ckpt": "checkpoint",
        trained_dirs / "export": "export",
    }
    for folder, kind in kinds.items():
        info = read_folder_info(folder)
        assert (info["model_type"], info["tokenization"], info["kind"]) == ("openchat", "joint", kind), folder


def test_trained_checkpoint_template_copies_render_in_minijinja(trained_dirs):
    """The trainer's save writes the same three template copies as patch and export (TGI reads the inline ones)."""
    from transformers import AutoTokenizer

    ckpt = trained_dirs / "ckpt"
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    inline = json.loads((ckpt / "tokenizer_config.json").read_text())["chat_template"]
    assert json.loads((ckpt / "chat_template.json").read_text())["chat_template"] == inline
    assert inline == ChatTemplate("openchat", tokenizer).jinja(generation_markers=False)
    assert "{%- generation" in (ckpt / "chat_template.jinja").read_text()
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]
    expected = ChatTemplate("openchat", tokenizer).render(messages, add_generation_prompt=True).text
    assert minijinja_render(inline, tokenizer, messages, True) == expected
    with pytest.raises(Exception, match="generation"):  # the training copy is what TGI rejects
        minijinja_render((ckpt / "chat_template.jinja").read_text(), tokenizer, messages, True)
    export = trained_dirs / "export"  # the export carries the same copies
    assert (export / "chat_template.json").read_text() == (ckpt / "chat_template.json").read_text()
    exported = json.loads((trained_dirs / "export" / "tokenizer_config.json").read_text())["chat_template"]
    assert exported == inline


def test_patch_refuses_a_model_type_of_another_architecture(tiny_llama_dir, tiny_bigcode_dir, tmp_path, capsys):
    assert main(["patch", str(tiny_llama_dir), str(tmp_path / "a"), "--model-type", "opencoder"]) == 2
    err = capsys.readouterr().err
    assert (
        "is a llama model but model type 'opencoder' is for gpt_bigcode models; use --model-type openchat or " in err
    )
    assert err.count("\n") == 1 and not (tmp_path / "a").exists()
    assert main(["patch", str(tiny_bigcode_dir), str(tmp_path / "b"), "--model-type", "openchat"]) == 2
    assert "use --model-type opencoder" in capsys.readouterr().err
    assert main(["patch", str(tiny_llama_dir), str(tmp_path / "c")]) == 2
    assert "pass --model-type (for a llama model: openchat, openchat_8192, openchat_llama3" in capsys.readouterr().err


def test_serve_refuses_a_wrong_model_type(tiny_chat_dir, tmp_path, capsys):
    assert main(["serve", str(tiny_chat_dir), "--model-type", "opencoder", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "was written for model type 'openchat', not 'opencoder'; pass --model-type openchat" in err
    for backend in ("tgi", "openai"):
        args = ["serve", str(tiny_chat_dir), "--backend", backend, "--backend-url", "http://127.0.0.1:9"]
        assert main([*args, "--model-type", "openchat_8192", "--port", "1"]) == 2
        assert "pass --model-type openchat" in capsys.readouterr().err


def test_create_app_refuses_a_wrong_model_type(tiny_chat_dir):
    from openchat_hf.serving import create_app
    from openchat_hf.serving.backends import load_backend

    backend = load_backend(tiny_chat_dir, "tgi", backend_url="http://127.0.0.1:9")
    with pytest.raises(FolderInfoError, match="The checkpoint was written for model type 'openchat', not 'opencoder'"):
        create_app(backend, model_type="opencoder")
    with pytest.raises(FolderInfoError, match="not 'opencoder'"):
        load_backend(tiny_chat_dir, "tgi", backend_url="http://127.0.0.1:9", model_type="opencoder")
