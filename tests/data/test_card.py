"""The dataset card: huggingface_hub's DatasetCard with YAML metadata on tokenizer, template, mask, filters, counts."""

from huggingface_hub import DatasetCard
from transformers import AutoTokenizer

from openchat_hf.data import push_dataset
from openchat_hf.data.hub import export_parquet


def test_card_metadata_describes_the_data(sample_run, tokenizer_dirs, tmp_path):
    out, report = sample_run
    export_parquet(out, tmp_path / "export", license="cc-by-nc-4.0")
    card = DatasetCard.load(tmp_path / "export" / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "cc-by-nc-4.0" and data["task_categories"] == ["text-generation"]
    assert data["size_categories"] == ["n<1K"]
    assert [c["config_name"] for c in data["configs"]] == ["default", "openchat", "opencoder"]
    meta = data["openchat_hf"]
    llama = AutoTokenizer.from_pretrained(str(tokenizer_dirs["llama"]))
    openchat = meta["model_types"]["openchat"]
    assert openchat["tokenizer"]["vocab_size"] == len(llama) + 1  # + the EOT token
    assert openchat["tokenizer"]["eot_token"] == "<|end_of_turn|>" and len(openchat["tokenizer"]["sha256"]) == 64
    assert openchat["template"]["example"] == "<s>Human: Hi<|end_of_turn|>Assistant: Hello!<|end_of_turn|>"
    assert meta["model_types"]["opencoder"]["template"]["example"].startswith("User:Hi<|end_of_turn|>")
    assert openchat["max_length"] == 2048 and openchat["tokenization"] == "joint"
    assert "supervise_mask[i] is 1 when token i belongs to an assistant turn" in meta["mask"]
    assert meta["filters"]["model_filter"] == ["Model: GPT-4"] and meta["filters"]["blocked_words"] == ["openai"]
    assert meta["counts"]["kept"] == report["kept"] and meta["counts"]["dropped"] == report["steps"]
    assert meta["counts"]["openchat"]["train"] == report["model_types"]["openchat"]["train"]
    for section in ("## Loading", "## Model type `openchat`", "## Mask", "## Filters", "## License"):
        assert section in card.text
    assert "Human: Hi<|end_of_turn|>" in card.text and "| **kept** |" in card.text


def test_card_is_accepted_by_the_hub_metadata_check(sample_run, monkeypatch):
    from fake_hub import FakeHub

    out, _ = sample_run
    with FakeHub() as hub:
        hub.patch(monkeypatch)
        push_dataset(out, f"{hub.user}/carded")
        card = DatasetCard(hub.files(f"{hub.user}/carded", "dataset")["README.md"].decode())
        assert card.data.license == "other" and "carry no license" in card.text
        card.validate(repo_type="dataset")  # POST /api/validate-yaml, as the Hub checks a README
