"""The dataset card of a pushed pipeline output: ``huggingface_hub.DatasetCard`` with YAML metadata.

The metadata holds the Hub's standard keys (``license``, ``configs``, ``size_categories``, ``task_categories``,
``tags``, ``pretty_name``) and an ``openchat_hf`` block: per model type the tokenizer, the template, the context and
tokenization mode, the mask semantics, the filters applied and the counts, all read from ``report.json``.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LICENSE = "other"
MASK_SEMANTICS = (
    "supervise_mask[i] is 1 when token i belongs to an assistant turn (its content and the end-of-turn token that "
    "closes it): the tokens the loss is computed on; 0 for the BOS token, the role prefixes and every system / user "
    "turn. length = len(input_ids)."
)
LICENSE_NOTE = (
    "ShareGPT conversations carry no license from their authors, and the assistant turns are outputs of the models "
    "named in the `model` column, under their providers' terms of use. Check that your use is allowed before "
    "training on or publishing this data."
)


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` value for ``n`` rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M" if n < 10_000_000 else "n>10M"


def _filters(report: dict[str, Any]) -> dict[str, Any]:
    config = report.get("config", {})
    return {
        "model_filter": config.get("filter_models") or "none (every model kept)",
        "blocked_words": config.get("blocked_words", []),
        "dedup": "exact: same roles and contents (xxh3-128), first in input order kept",
        "overflow": config.get("overflow"),
        "max_record_mb": config.get("max_record_mb"),
        "eval_ratio": config.get("eval_ratio"),
        "seed": config.get("seed"),
    }


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, Any] = {"inputs": report["inputs"], "kept": report["kept"], "dropped": report["steps"]}
    for name, mt in report.get("model_types", {}).items():
        counts[name] = {k: mt[k] for k in ("train", "eval", "dropped", "truncated", "tokens")}
    return counts


def card_metadata(report: dict[str, Any], configs: list[dict[str, Any]], license: str | None = None) -> dict[str, Any]:  # noqa: A002
    """The YAML metadata of the card, as a plain dict."""
    model_types = {}
    for name, mt in report.get("model_types", {}).items():
        model_types[name] = {
            "tokenizer": mt.get("tokenizer_info", {"path": mt.get("tokenizer")}),
            "template": mt.get("template", {}),
            "max_length": mt["max_length"],
            "tokenization": mt.get("tokenization", report.get("config", {}).get("tokenization", "joint")),
            "columns": {"input_ids": "int32 token ids", "supervise_mask": "int8, 1 = trained on", "length": "int"},
        }
    return {
        "license": license or DEFAULT_LICENSE,
        "pretty_name": "ShareGPT conversations (openchat-hf)",
        "task_categories": ["text-generation"],
        "size_categories": [size_category(report["kept"])],
        "tags": ["openchat-hf", "sharegpt", "conversational"],
        "configs": configs,
        "openchat_hf": {
            "model_types": model_types,
            "mask": MASK_SEMANTICS,
            "filters": _filters(report),
            "counts": _counts(report),
        },
    }


def _body(report: dict[str, Any], license: str | None) -> str:  # noqa: A002
    from openchat_hf.data.report import to_markdown

    lines = [
        "# ShareGPT conversations, cleaned and tokenized by openchat-hf",
        "",
        f"{report['kept']} of {report['inputs']} input conversations kept by `openchat-hf data run`.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'clean = load_dataset("REPO")  # id, model, messages [{role, content}], source, index',
    ]
    lines += [f'{name} = load_dataset("REPO", "{name}")  # train / eval' for name in report.get("model_types", {})]
    lines += ["```", ""]
    for name, mt in report.get("model_types", {}).items():
        tok = mt.get("tokenizer_info", {})
        template = mt.get("template", {})
        lines += [
            f"## Model type `{name}`",
            "",
            f"- tokenizer: `{tok.get('name_or_path') or mt.get('tokenizer')}` ({tok.get('class', '?')}, "
            f"{tok.get('vocab_size', '?')} tokens, end of turn `{tok.get('eot_token', '?')}` = id "
            f"{tok.get('eot_token_id', '?')}; tokenizer.json sha256 `{tok.get('sha256', '?')}`)",
            f"- context: {mt['max_length']} tokens; longer conversations: {report['config'].get('overflow')}",
            f"- tokenization: {mt.get('tokenization', report['config'].get('tokenization', 'joint'))}",
            "- template (a user and an assistant turn):",
            "",
            "```",
            template.get("example", "?"),
            "```",
            "",
        ]
    lines += ["## Mask", "", MASK_SEMANTICS, "", "## Filters", ""]
    for key, value in _filters(report).items():
        lines.append(f"- {key}: {value}")
    lines += ["", "## License", "", f"`{license or DEFAULT_LICENSE}`. {LICENSE_NOTE}", ""]
    lines += [to_markdown(report).replace("# Data pipeline report", "## Data pipeline report")]
    return "\n".join(lines)


def dataset_card(report: dict[str, Any], configs: list[dict[str, Any]], license: str | None = None):  # noqa: A002
    """A ``huggingface_hub.DatasetCard`` for a pipeline output (``report.json``) pushed with ``configs``."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(**card_metadata(report, configs, license))
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{_body(report, license)}")
