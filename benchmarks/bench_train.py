#!/usr/bin/env python
"""Training throughput: real (non-pad) tokens per second on the same conversations, one run, several batching modes.

Modes (each trains one epoch over the same conversations from the same initial weights):

* ``padded-random``: padded micro-batches of ``--batch-size`` conversations in random order (the naive baseline);
* ``length-grouped``: padded micro-batches, ``train_sampling_strategy="group_by_length"``;
* ``padding-free``: multipack token-budget micro-batches flattened into one row (``--budget`` tokens);
* ``trl-default``: TRL's own ``SFTTrainer`` set-up (its collator, padded, random order) on the same tokens;
* ``trl-best``: TRL's fastest set-up, ``padding_free=True`` + ``packing=True`` (BFD packing into ``--budget``-token
  rows, one packed row per micro-batch), on the same tokens.

Each run also reports the fill (real tokens over the token slots of the micro-batches it ran).

CPU (default): a tiny LLaMA-shaped model and the bundled Vicuna-bench conversations, fp32, sdpa.
``--gpu``: a ~1B LLaMA-shaped model from config, bf16, flex_attention, ShareGPT-like lengths at ``--context`` 2048
and 8192; also reports MFU (6·N·tokens + attention FLOPs over the card's dense bf16 peak) and peak GPU memory.

    python benchmarks/bench_train.py                   # CPU
    python benchmarks/bench_train.py --gpu --context 2048 8192
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

import datasets
import torch

REPO = Path(__file__).resolve().parents[1]
H100_BF16_DENSE_FLOPS = 989e12  # H100 SXM; use --peak-flops for other cards


def cpu_rows(tokenizer, n: int, max_len: int, seed: int = 0) -> list[dict]:
    """The bundled conversations (Vicuna-bench questions with five models' answers), tokenized, cut to max_len."""
    from openchat_hf.resources import VICUNA_ANSWERS_DIR, VICUNA_BENCH_DIR, read_jsonl
    from openchat_hf.templates import ChatTemplate

    questions = {r["question_id"]: r["turns"][0] for r in read_jsonl(VICUNA_BENCH_DIR / "question.jsonl")}
    chats = [
        [{"role": "user", "content": questions[r["question_id"]]}, {"role": "assistant", "content": r["text"]}]
        for path in sorted(VICUNA_ANSWERS_DIR.glob("*.jsonl"))
        for r in read_jsonl(path)
    ]
    random.Random(seed).shuffle(chats)
    # two-turn chats too, for a ShareGPT-like spread of lengths
    chats = chats + [a + b for a, b in zip(chats[::2], chats[1::2])][: len(chats) // 3]
    rows = []
    for c in ChatTemplate("openchat", tokenizer).tokenize_batch(chats, max_length=max_len):
        if sum(c.supervise_mask[1:]):
            rows.append({"input_ids": c.input_ids, "supervise_mask": c.supervise_mask, "length": len(c.input_ids)})
    random.Random(seed).shuffle(rows)
    return rows[:n]


def synthetic_rows(vocab: int, n: int, context: int, seed: int = 0) -> list[dict]:
    """ShareGPT-like lengths (log-normal, median ~700 tokens, long tail cut at the context), random ids."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        length = int(min(context, max(32, rng.lognormvariate(6.55, 0.9))))
        prompt = rng.randint(8, max(9, length // 4))
        ids = [rng.randrange(3, vocab) for _ in range(length)]
        rows.append({"input_ids": ids, "supervise_mask": [0] * prompt + [1] * (length - prompt), "length": length})
    return rows


def build_model(args, tokenizer_len: int):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    if args.gpu:
        config = LlamaConfig(
            vocab_size=32000,
            hidden_size=2048,
            intermediate_size=5632,
            num_hidden_layers=22,
            num_attention_heads=32,
            num_key_value_heads=4,
            max_position_embeddings=max(args.context),
            tie_word_embeddings=False,
        )  # fmt: skip  (TinyLlama-1.1B shape)
        return AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation=args.attn)
    config = LlamaConfig(
        vocab_size=tokenizer_len, hidden_size=args.hidden, intermediate_size=args.hidden * 3,
        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
    )  # fmt: skip
    return AutoModelForCausalLM.from_config(config, attn_implementation=args.attn)


def train_once(mode: str, args, rows, tokenizer, state_dict, tmp: str) -> dict:
    from trl import SFTConfig, SFTTrainer

    from openchat_hf.training.config import OpenChatSFTConfig
    from openchat_hf.training.trainer import OpenChatSFTTrainer

    model = build_model(args, len(tokenizer))
    model.load_state_dict(state_dict)
    if args.gpu:
        model.cuda()
    common = dict(
        output_dir=tmp, num_train_epochs=1, learning_rate=1e-4, report_to="none", save_strategy="no",
        logging_steps=10_000, bf16=args.gpu, use_cpu=not args.gpu, per_device_train_batch_size=args.batch_size,
        dataloader_num_workers=0, seed=0, disable_tqdm=True, max_steps=-1,
    )  # fmt: skip
    if mode.startswith("trl-"):
        data = datasets.Dataset.from_list(
            [{"input_ids": r["input_ids"], "completion_mask": r["supervise_mask"]} for r in rows]
        )
        trl_args = {"max_length": None}
        if mode == "trl-best":  # BFD packing forces padding-free; budget-token rows, one per micro-batch
            trl_args = {"max_length": args.budget, "packing": True, "packing_strategy": "bfd", "padding_free": True}
            common = {**common, "per_device_train_batch_size": 1}
        trainer = SFTTrainer(
            model=model, args=SFTConfig(**trl_args, **common), train_dataset=data, processing_class=tokenizer
        )
    else:
        extra = {
            "padded-random": {"padding_free": False},
            "length-grouped": {"padding_free": False, "train_sampling_strategy": "group_by_length"},
            "padding-free": {"padding_free": True, "max_tokens_per_batch": args.budget},
        }[mode]
        if "max_tokens_per_batch" in extra:  # the token budget makes the micro-batches
            common = {k: v for k, v in common.items() if k != "per_device_train_batch_size"}
        trainer = OpenChatSFTTrainer(
            model=model,
            args=OpenChatSFTConfig(**common, **extra),
            train_dataset=datasets.Dataset.from_list(rows),
            processing_class=tokenizer,
        )
    if args.gpu:
        torch.cuda.reset_peak_memory_stats()
        if args.attn == "flex_attention" and mode != "trl-default":
            trainer.train()  # warm-up epoch: flex_attention compiles on its first steps
    start = time.perf_counter()
    trainer.train()
    if args.gpu:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = sum(r["length"] for r in rows)
    steps = trainer.state.global_step
    slots = _token_slots(trainer, args.budget)
    out = {"mode": mode, "seconds": seconds, "tokens_per_s": tokens / seconds, "steps": steps, "fill": tokens / slots}
    if args.gpu:
        out["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        out["mfu"] = model_flops(model.config, rows) / seconds / args.peak_flops
    del trainer, model
    gc.collect()
    if args.gpu:
        torch.cuda.empty_cache()
    return out


def _token_slots(trainer, budget: int) -> int:
    """Token slots of one epoch of micro-batches: padded positions, or the budget of each padding-free row."""
    return sum(
        batch["input_ids"].numel() if "attention_mask" in batch else max(batch["input_ids"].numel(), budget)
        for batch in trainer.get_train_dataloader()
    )


def model_flops(config, rows) -> float:
    """Training FLOPs: 6 x non-embedding params x tokens + causal attention 6 x layers x hidden x length^2 per chat."""
    h, layers = config.hidden_size, config.num_hidden_layers
    kv = h // config.num_attention_heads * config.num_key_value_heads
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * config.intermediate_size
    params = layers * per_layer + h * config.vocab_size  # LM head counts, the embedding lookup does not
    tokens = sum(r["length"] for r in rows)
    attention = sum(6 * layers * h * r["length"] ** 2 for r in rows)  # 12·L·h·s² halved for the causal mask
    return 6 * params * tokens + attention


def table(results: list[dict], gpu: bool) -> str:
    base = next(r for r in results if r["mode"] == "padded-random")["tokens_per_s"]
    trl_best = next((r["tokens_per_s"] for r in results if r["mode"] == "trl-best"), None)
    head = "| mode | real tokens/s | x padded-random | x trl-best | fill | optimizer steps | seconds |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    if gpu:
        head += " MFU | peak GiB |"
        sep += "---:|---:|"
    lines = [head, sep]
    for r in results:
        line = (
            f"| {r['mode']} | {r['tokens_per_s']:,.0f} | {r['tokens_per_s'] / base:.2f} "
            f"| {r['tokens_per_s'] / trl_best if trl_best else float('nan'):.2f} | {100 * r['fill']:.1f} % "
            f"| {r['steps']} | {r['seconds']:.1f} |"
        )
        if gpu:
            line += f" {100 * r['mfu']:.1f} % | {r['peak_gib']:.1f} |"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="~1B model on a CUDA GPU, bf16")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["padded-random", "length-grouped", "padding-free", "trl-default", "trl-best"],
    )
    parser.add_argument("--conversations", type=int, default=None, help="default: 320 (CPU), 2048 (GPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="conversations per padded micro-batch")
    parser.add_argument("--budget", type=int, default=None, help="padding-free tokens per micro-batch")
    parser.add_argument("--context", type=int, nargs="+", default=None, help="max conversation length(s)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--attn", default=None, help="sdpa (CPU default) / flex_attention (GPU default) / ...")
    parser.add_argument("--peak-flops", type=float, default=H100_BF16_DENSE_FLOPS)
    parser.add_argument("--rounds", type=int, default=2, help="modes run round-robin this often; best run kept")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.gpu and not torch.cuda.is_available():
        parser.error("--gpu needs a CUDA GPU")
    args.attn = args.attn or ("flex_attention" if args.gpu else "sdpa")
    args.context = args.context or ([2048, 8192] if args.gpu else [1024])
    args.conversations = args.conversations or (2048 if args.gpu else 320)
    if not args.gpu:
        torch.set_num_threads(args.threads)

    from openchat_hf.templates import setup_tokenizer
    from openchat_hf.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer("llama")
    setup_tokenizer(tokenizer, "openchat")
    device = torch.cuda.get_device_name() if args.gpu else "CPU"
    report = {"device": device, "runs": []}
    for context in args.context:
        run_args = argparse.Namespace(**vars(args))
        default_batch = (8 if context <= 2048 else 2) if args.gpu else 8
        run_args.batch_size = batch_size = args.batch_size or default_batch
        run_args.budget = max(args.budget or (16384 if args.gpu else context), context)
        rows = (
            synthetic_rows(32000, args.conversations, context)
            if args.gpu
            else cpu_rows(tokenizer, args.conversations, context)
        )
        state = build_model(args, len(tokenizer)).state_dict()
        best: dict[str, dict] = {}
        with tempfile.TemporaryDirectory() as tmp:
            train_once(args.modes[0], run_args, rows[: max(8, len(rows) // 8)], tokenizer, state, tmp)  # warm-up
            for _ in range(args.rounds):  # round-robin, so load from other jobs hits every mode alike
                for mode in args.modes:
                    result = train_once(mode, run_args, rows, tokenizer, state, tmp)
                    print(f"  {mode}: {result['tokens_per_s']:,.0f} tokens/s", file=sys.stderr, flush=True)
                    if mode not in best or result["tokens_per_s"] > best[mode]["tokens_per_s"]:
                        best[mode] = result
        results = [best[m] for m in args.modes]
        lengths = [r["length"] for r in rows]
        print(
            f"\n{device}, context {context}: {len(rows)} conversations, {sum(lengths):,} tokens "
            f"(mean {sum(lengths) / len(rows):.0f}, max {max(lengths)}), batch {batch_size}, budget {run_args.budget}, "
            f"attention {args.attn}\n"
        )
        print(table(results, args.gpu))
        report["runs"].append(
            {"context": context, "batch_size": batch_size, "budget": run_args.budget, "results": results}
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
