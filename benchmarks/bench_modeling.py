"""Time `patch_model` and `export_checkpoint` on a LLaMA-shaped model against a plain load + save_pretrained.

    python benchmarks/bench_modeling.py [--hidden 1024] [--layers 12] [--dtype bfloat16] [--repeat 3]

The baseline is what a user would do by hand (load the model, save it again); patching adds the EOT token and the
context extension on top of that, exporting copies the safetensors without loading the model.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from openchat_hf.modeling import export_checkpoint, patch_model
from openchat_hf.tiny import build_tiny_tokenizer


def build_base(folder: Path, hidden: int, layers: int, dtype: torch.dtype) -> int:
    tokenizer = build_tiny_tokenizer("llama")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 11 // 4,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n_params = build_base(root / "base", args.hidden, args.layers, dtype)

        def baseline() -> None:
            AutoModelForCausalLM.from_pretrained(root / "base", dtype="auto").save_pretrained(root / "copy")
            shutil.rmtree(root / "copy")

        def patch() -> None:
            patch_model(root / "base", root / "patched", "openchat_8192", overwrite=True)

        def export() -> None:
            export_checkpoint(root / "patched", root / "exported", overwrite=True)

        rows = [("load + save_pretrained (baseline)", timed(baseline, args.repeat))]
        rows.append(("patch_model (EOT + extend to 8192)", timed(patch, args.repeat)))
        rows.append(("export_checkpoint", timed(export, args.repeat)))
    size = n_params * torch.finfo(dtype).bits / 8 / 2**20
    print(
        f"LLaMA-shaped model: {n_params / 1e6:.0f}M parameters, {args.dtype}, {size:.0f} MiB; median of {args.repeat}"
    )
    print("| step | seconds | ratio vs baseline |\n|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / rows[0][1]:.2f}x |")


if __name__ == "__main__":
    main()
