"""Before/after checks the demo prints: did fine-tuning do something real?

Both figures are measured on held-out data that training never saw: the data pipeline's eval split, and
Vicuna-bench questions, which the training data does not contain:

- ``eval_loss``: the mean cross-entropy over the supervised tokens (assistant turns and their end-of-turn token) of
  the eval split, in one forward pass per conversation;
- ``eot_stop_share``: the share of greedy answers to held-out prompts that end with the model type's end-of-turn
  token within ``max_new_tokens`` (what the server reports as ``finish_reason: "stop"``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from openchat_hf.errors import OpenChatError


class DemoCheckError(OpenChatError):
    """A before/after check could not run."""


def held_out_prompts(count: int = 16) -> list[str]:
    """The first ``count`` Vicuna-bench questions (never in the training data: decontamination removes them)."""
    from openchat_hf.resources import VICUNA_BENCH_DIR

    with open(Path(VICUNA_BENCH_DIR) / "question.jsonl", encoding="utf-8") as f:
        questions = [json.loads(line) for line in f if line.strip()]
    return [q["turns"][0] if "turns" in q else q["text"] for q in questions[:count]]


def _load(model_dir: str | Path) -> tuple[Any, Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from openchat_hf.folder_info import model_type_of
    from openchat_hf.templates import ChatTemplate

    model_type = model_type_of(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    return model, tokenizer, ChatTemplate(model_type, tokenizer)


def eval_loss(model_dir: str | Path, dataset_dir: str | Path, *, split: str = "eval") -> float:
    """Mean cross-entropy per supervised token of ``split`` (token-weighted over the whole split)."""
    import datasets
    import torch

    model, _, _ = _load(model_dir)
    dataset = datasets.load_from_disk(str(dataset_dir))
    if split not in dataset or len(dataset[split]) == 0:
        raise DemoCheckError(f"{dataset_dir} has no {split!r} split to measure the eval loss on.")
    from tqdm.auto import tqdm

    total, count = 0.0, 0
    with torch.inference_mode():
        for row in tqdm(dataset[split], desc="eval loss", unit="conversation"):
            ids = torch.tensor([row["input_ids"]])
            mask = torch.tensor(row["supervise_mask"][1:], dtype=torch.bool)
            logits = model(input_ids=ids, use_cache=False).logits[0, :-1].float()
            losses = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
            total += float(losses[mask].sum())
            count += int(mask.sum())
    return total / max(count, 1)


def eot_stop_share(
    model_dir: str | Path, prompts: list[str], *, max_new_tokens: int = 256, batch_size: int = 8
) -> dict[str, Any]:
    """Greedy answers to ``prompts``; the share that ends with the end-of-turn token within ``max_new_tokens``."""
    import torch

    model, tokenizer, template = _load(model_dir)
    eot_id = tokenizer.convert_tokens_to_ids(template.model_type.eot_token)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eot_id
    from tqdm.auto import tqdm

    stopped, lengths, answers = 0, [], []
    with torch.inference_mode():
        for start in tqdm(range(0, len(prompts), batch_size), desc="greedy answers", unit="batch"):
            chunk = prompts[start : start + batch_size]
            encoded = [
                template.tokenize([{"role": "user", "content": p}], add_generation_prompt=True).input_ids
                for p in chunk
            ]
            width = max(len(e) for e in encoded)
            input_ids = torch.tensor([[pad_id] * (width - len(e)) + e for e in encoded])
            attention = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
            out = model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=[eot_id],
                pad_token_id=pad_id,
            )
            for row in out[:, width:].tolist():
                ended = eot_id in row
                stopped += ended
                row = row[: row.index(eot_id)] if ended else row
                lengths.append(len(row))
                answers.append(template.strip_completion(tokenizer.decode(row, skip_special_tokens=True)))
    n = len(prompts)
    return {
        "prompts": n,
        "stopped": stopped,
        "share": stopped / n if n else math.nan,
        "mean_tokens": sum(lengths) / n if n else math.nan,
        "answers": answers,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m openchat_hf.demo_checks MODEL DATASET OUT.json``: both figures for one model, as JSON."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model folder (patched, trained or exported)")
    parser.add_argument("dataset", help="tokenized dataset folder of the data pipeline (OUT/<model_type>)")
    parser.add_argument("out", help="JSON file to write")
    parser.add_argument("--prompts", type=int, default=16, help="held-out Vicuna-bench prompts (default 16)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args(argv)
    loss = eval_loss(args.model, args.dataset)
    stop = eot_stop_share(args.model, held_out_prompts(args.prompts), max_new_tokens=args.max_new_tokens)
    result = {"model": str(args.model), "eval_loss": loss, "eot_stop": stop}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"eval loss {loss:.3f}; {stop['stopped']}/{stop['prompts']} greedy answers end with <|end_of_turn|>")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
