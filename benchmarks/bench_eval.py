"""Judge-step throughput: the 80 Vicuna-bench questions (shipped vicuna-13b answers vs gpt35), both orders, against a
local fake judge with a fixed latency per call, at several concurrencies; then the cached re-run.

    .venv/bin/python benchmarks/bench_eval.py [--latency 0.1] [--concurrency 1 8 32]

Prints a table of wall time and calls/s, with ratios against concurrency 1 measured in the same process; then the
cost of the report's statistics (bootstrap CIs, the length-controlled GLM refitted per resample) on the same folder.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "evaluation"))

from eval_fakes import FakeOpenAI  # noqa: E402

from openchat_hf.evaluation.client import EndpointConfig  # noqa: E402
from openchat_hf.evaluation.judge import JudgeConfig, run_judge  # noqa: E402
from openchat_hf.evaluation.metrics import bootstrap_cis, length_controlled_win_rate  # noqa: E402
from openchat_hf.evaluation.report import build_report  # noqa: E402


def run(server: FakeOpenAI, out: Path, concurrency: int, cache: Path | None = None) -> tuple[float, object]:
    config = JudgeConfig(
        answers="vicuna-13b",
        baseline="gpt35",
        endpoint=EndpointConfig(base_url=server.base_url, model="fake-judge"),
        out_dir=out,
        concurrency=concurrency,
        cache_path=cache,
    )
    start = time.perf_counter()
    result = run_judge(config)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the fake judge takes per call")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI("judge", delay=args.latency) as server:
        for c in args.concurrency:
            seconds, result = run(server, Path(tmp) / f"c{c}", c)
            rows.append((f"concurrency {c}", seconds, result.stats.calls))
        seconds, result = run(server, Path(tmp) / "cached", 8, cache=Path(tmp) / "c8" / "cache.jsonl")
        assert result.stats.calls == 0
        rows.append(("re-run from cache", seconds, result.stats.cache_hits))
        report_rows = report_costs(Path(tmp) / "c8")
    base = rows[0][1]
    print(f"judge step, 80 questions x 2 orders, fake judge latency {args.latency * 1000:.0f} ms/call")
    print(f"{'run':<22}{'calls':>7}{'wall s':>9}{'calls/s':>9}{'speed-up':>10}")
    for name, seconds, calls in rows:
        print(f"{name:<22}{calls:>7}{seconds:>9.2f}{calls / seconds:>9.1f}{base / seconds:>9.1f}x")
    print("\nreport statistics on that folder, 1000 bootstrap resamples")
    print(f"{'step':<44}{'s':>8}{'vs CIs':>8}")
    for name, seconds in report_rows:
        print(f"{name:<44}{seconds:>8.3f}{seconds / report_rows[0][1]:>7.1f}x")


def report_costs(folder: Path) -> list[tuple[str, float]]:
    """Seconds of the relative-score / win-rate CIs, of the length-controlled win rate, and of the whole report."""
    entry = build_report([folder], n_resamples=10)["models"][0]
    valid = [q for q in entry["questions"] if q["outcome"] != "failed"]
    outcomes = [q["outcome"] for q in valid]
    timings = []
    start = time.perf_counter()
    bootstrap_cis([q["model_score"] for q in valid], [q["baseline_score"] for q in valid], outcomes)
    timings.append(("bootstrap CIs (relative score, win rate)", time.perf_counter() - start))
    start = time.perf_counter()
    length_controlled_win_rate(outcomes, [len(q["answer"]) for q in valid], [len(q["baseline_answer"]) for q in valid])
    timings.append(("length-controlled win rate + CI (GLM fits)", time.perf_counter() - start))
    start = time.perf_counter()
    build_report([folder])
    timings.append(("whole report (read, score, all statistics)", time.perf_counter() - start))
    return timings


if __name__ == "__main__":
    main()
