"""One huge conversation: memory and time of the convert step and of the whole pipeline, cut vs. uncut.

The issue: a 50 MB ShareGPT page took 4.8 GB and 55 s because the whole text was tokenized before the cut to the
context. Now a conversation is cut to ``(max_length + 64) * max_token_chars`` characters before tokenizing, and
records above ``--max-record-mb`` (default 16) are dropped as ``too_large`` before cleaning. The baseline is the same
code in the same run with the cut disabled (the old behaviour: tokenize everything, then truncate).

    python benchmarks/bench_huge_record.py [--mb 20] [--tokenizer DIR]

Each case runs in its own process; its CPU time (``time.process_time``, all threads: wall time on a loaded VM says
little), wall time and peak RSS (``ru_maxrss``) are printed as a ratio table.
Default tokenizer: the real Llama-3 tokenizer when ``openchat_hf.assets`` can provide it, else the tiny test one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("convert-uncut", "convert-cut", "pipeline-uncut", "pipeline-cut", "pipeline-limit")


def _answer_text(chars: int) -> str:
    from openchat_hf.resources import MT_BENCH_DIR, VICUNA_ANSWERS_DIR, read_jsonl

    texts = [t for r in read_jsonl(MT_BENCH_DIR / "reference_answer_gpt-4.jsonl") for t in r["choices"][0]["turns"]]
    for path in sorted(VICUNA_ANSWERS_DIR.glob("*.jsonl")):
        texts += [r["text"] for r in read_jsonl(path)]
    block = "\n\n".join(texts)
    return (block * (chars // len(block) + 1))[:chars]


def _tokenizer_dir(arg: str | None, workdir: Path) -> str:
    if arg:
        return arg
    try:
        from openchat_hf.assets import fetch_asset

        return str(fetch_asset("llama3-tokenizer", progress=False))
    except Exception:  # noqa: BLE001 - no asset module / offline: the tiny tokenizer
        from openchat_hf.tiny import build_tiny_tokenizer

        path = workdir / "tiny-tokenizer"
        build_tiny_tokenizer("llama").save_pretrained(path)
        return str(path)


def _run_case(case: str, mb: float, tokenizer_dir: str, workdir: Path) -> dict:
    """One case, in this process: returns seconds and the result summary."""
    from openchat_hf.data import convert

    if case.endswith("uncut"):
        convert.max_token_chars = lambda tokenizer: 1 << 40  # budget never reached: tokenize everything
    answer = _answer_text(int(mb * 1_000_000))
    messages = [{"role": "user", "content": "Summarise this."}, {"role": "assistant", "content": answer}]
    if case.startswith("convert"):
        from openchat_hf.templates import setup_tokenizer

        template = setup_tokenizer(convert.load_tokenizer(tokenizer_dir), "openchat")
        started, cpu = time.perf_counter(), time.process_time()
        table = convert.convert_batch(
            {"messages": [messages]}, template=template, max_length=2048, overflow="truncate"
        )
        row = table.to_pylist()[0]
        ids_sha = hashlib.sha256(json.dumps(row["input_ids"] + row["supervise_mask"]).encode()).hexdigest()[:16]
        summary = {"length": row["length"], "truncated": row["truncated"], "ids_sha": ids_sha}
    else:
        from openchat_hf.data import PipelineConfig, run_pipeline
        from openchat_hf.data.sample import markdown_to_chatgpt_html, page_html

        src = workdir / f"in-{case}" / "ShareGPT"
        src.mkdir(parents=True)
        content = {
            "items": [
                {"from": "human", "value": "Summarise this."},
                {"from": "gpt", "value": markdown_to_chatgpt_html(answer)},
            ],
            "model": "Model: GPT-4",
        }
        (src / "huge.html").write_text(page_html("huge", content), encoding="utf-8")
        small = {"items": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "<p>Hello!</p>"}]}
        (src / "small.html").write_text(page_html("small", {**small, "model": "Model: GPT-4"}), encoding="utf-8")
        started, cpu = time.perf_counter(), time.process_time()  # the page is written; time the run
        limit = 16.0 if case == "pipeline-limit" else None
        config = PipelineConfig(tokenizer=tokenizer_dir, eval_ratio=0, max_record_mb=limit, legacy=False)
        report = run_pipeline(src.parent, workdir / f"out-{case}", config)
        mt = report["model_types"]["openchat"]
        summary = {"kept": report["kept"], "read": report["steps"]["read"], "train_tokens": mt["tokens"]["train"]}
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu, **summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="size of the huge answer in MB (default 20)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: Llama-3 asset or tiny)")
    parser.add_argument("--case", choices=CASES, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-huge-"))
    if args.case:  # a child process: one case, one JSON line
        out = _run_case(args.case, args.mb, args.tokenizer, workdir)
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    tokenizer_dir = _tokenizer_dir(args.tokenizer, workdir)
    print(f"huge answer: {args.mb:g} MB of real answer text; tokenizer: {tokenizer_dir}")
    results = {}
    for case in CASES:
        cmd = [sys.executable, __file__, "--case", case, "--mb", str(args.mb), "--tokenizer", tokenizer_dir]
        res = subprocess.run([*cmd, "--workdir", str(workdir)], capture_output=True, text=True, check=False)
        if res.returncode:
            sys.exit(f"{case} failed:\n{res.stderr[-3000:]}")
        results[case] = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"  {case}: {results[case]}", flush=True)
    conv_same = results["convert-cut"]["ids_sha"] == results["convert-uncut"]["ids_sha"]
    pipe_same = results["pipeline-cut"]["train_tokens"] == results["pipeline-uncut"]["train_tokens"]
    print()
    print("| step | case | CPU s | wall s | peak RSS (MB) | ratio CPU (uncut / this) | ratio memory |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for step, base in (("convert", "convert-uncut"), ("pipeline", "pipeline-uncut")):
        for case in [c for c in CASES if c.startswith(step)]:
            r, b = results[case], results[base]
            print(
                f"| {step} | {case.split('-', 1)[1]} | {r['cpu_seconds']:.2f} | {r['seconds']:.2f} | "
                f"{r['peak_rss_mb']:.0f} | {b['cpu_seconds'] / r['cpu_seconds']:.1f}x | "
                f"{b['peak_rss_mb'] / r['peak_rss_mb']:.1f}x |"
            )
    print()
    print(f"same ids cut vs uncut (convert): {conv_same}; same train tokens (pipeline): {pipe_same}")
    print(f"with the default --max-record-mb 16: read drops {results['pipeline-limit']['read']}")


if __name__ == "__main__":
    main()
