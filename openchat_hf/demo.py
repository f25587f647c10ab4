"""`openchat-hf demo`: the whole OpenChat loop on the embedded tiny default, on CPU, in a few minutes.

data pipeline -> patch a tiny random-init LLaMA -> `accelerate launch recipes/sft.py` -> export -> `openchat-hf serve`
-> a chat completion through the `openai` client -> `eval answers` / `judge` / `report` -> the two web pages.

Every step is the same command a user would type (run as a subprocess, output streamed), so the demo exercises the
real entry points. Outputs go under one folder; a step whose output is already complete is skipped on the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from openchat_hf.errors import OpenChatError

DEFAULT_PORT = 18888
SERVED_MODEL_NAME = "openchat-tiny-demo"
REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_RECIPE = REPO_ROOT / "recipes" / "tiny" / "sft" / "config_cpu.yaml"
SFT_SCRIPT = REPO_ROOT / "recipes" / "sft.py"


class DemoError(OpenChatError):
    """A demo step failed."""


def _say(message: str) -> None:
    print(f"\n\033[1m==> {message}\033[0m", flush=True)


def _bin(name: str) -> str:
    """An executable of this virtualenv (so the demo works without activating it)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _run(cmd: list[str], *, env: dict[str, str] | None = None) -> None:
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], env=env)
    if result.returncode != 0:
        raise DemoError(f"step failed (exit {result.returncode}): {' '.join(str(c) for c in cmd)}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"the server exited with code {process.returncode} before it was ready")
        try:
            if httpx.get(url + "/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise DemoError(f"the server at {url} was not healthy after {timeout:.0f} s")


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_demo(output_dir: str | Path, *, port: int = DEFAULT_PORT, questions: int = 3, fresh: bool = False) -> dict:
    """Run every step; return a summary dict (also written to ``OUTPUT/demo_summary.json``)."""
    from openchat_hf.resources import SAMPLE_SHAREGPT_DIR
    from openchat_hf.tiny import save_tiny_base

    out = Path(output_dir).resolve()
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cli = _bin("openchat-hf")
    summary: dict = {"output_dir": str(out)}

    _say("1/7 Data pipeline on the bundled ShareGPT sample")
    base = out / "base"
    save_tiny_base(base, "llama")
    data = out / "data"
    if (data / "report.json").exists():
        print(f"reusing {data}")
    else:
        _run(
            # the sample is made of the Vicuna-bench / MT-bench questions: decontamination would drop all of it
            [cli, "data", "run", SAMPLE_SHAREGPT_DIR, data, "--model-types", "openchat", "--tokenizer", base]
            + ["--no-decontaminate"],
            env=env,
        )
    report = json.loads((data / "report.json").read_text())
    summary["data"] = {"dir": str(data), "report": str(data / "report.json"), "kept": report.get("kept")}

    _say("2/7 Patch a tiny random-init LLaMA base (add <|end_of_turn|>)")
    patched = out / "patched"
    if (patched / "config.json").exists():
        print(f"reusing {patched}")
    else:
        _run([cli, "patch", base, patched, "--model-type", "openchat"], env=env)
    summary["patched"] = str(patched)

    _say("3/7 Train with accelerate launch recipes/sft.py (CPU)")
    checkpoint = out / "checkpoint"
    if (checkpoint / "model.safetensors").exists():
        print(f"reusing {checkpoint}")
    else:
        train_env = {**env, "ACCELERATE_USE_CPU": "true"}
        _run(
            [
                _bin("accelerate"), "launch", "--num_processes", "1", "--cpu", SFT_SCRIPT,
                "--config", TINY_RECIPE,
                "--model_name_or_path", patched,
                "--dataset_path", data / "openchat",
                "--output_dir", checkpoint,
            ],
            env=train_env,
        )  # fmt: skip
    summary["checkpoint"] = str(checkpoint)

    _say("4/7 Export a serving-ready checkpoint (TGI / vLLM / embedded)")
    exported = out / "export"
    if (exported / "chat_template.json").exists():
        print(f"reusing {exported}")
    else:
        _run([cli, "export", checkpoint, exported], env=env)
    summary["export"] = str(exported)

    host = "127.0.0.1"
    if not _port_free(host, port):
        new_port = _free_port(host)
        print(f"port {port} is busy; using {new_port}")
        port = new_port
    base_url = f"http://{host}:{port}"
    _say(f"5/7 Serve it: openchat-hf serve {exported} --port {port}")
    server = subprocess.Popen(
        [cli, "serve", str(exported), "--host", host, "--port", str(port), "--model-name", SERVED_MODEL_NAME], env=env
    )
    try:
        _wait_healthy(base_url, server)
        from openai import OpenAI

        client = OpenAI(base_url=base_url + "/v1", api_key="not-needed")
        model_name = client.models.list().data[0].id
        reply = client.chat.completions.create(
            model=model_name,
            messages=[{"role": "user", "content": "How can I improve my time management skills?"}],
            max_tokens=32,
            temperature=0,
        )
        text = reply.choices[0].message.content
        print(f"model {model_name!r} answered ({reply.usage.completion_tokens} tokens): {text!r}")
        summary["completion"] = text
        summary["served_model"] = model_name

        _say("6/7 Evaluate: Vicuna-bench answers -> pairwise judge (EC + BPC) -> report")
        summary["eval"] = _evaluate(cli, out, base_url, model_name, questions, env)
    finally:
        _stop(server)

    _say("7/7 Web pages: conversation explorer and evaluation results")
    viz = out / "viz"
    pages = {"embeddings": viz / "openchat.embeddings.html", "eval": viz / "eval.html"}
    if not pages["embeddings"].exists():
        _run([cli, "visualize", "embeddings", data / "clean", viz], env=env)
    if not pages["eval"].exists():
        _run([cli, "visualize", "eval", summary["eval"]["report_dir"], viz], env=env)
    summary["pages"] = {k: str(v) for k, v in pages.items()}

    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    _say("Done. Outputs:")
    for key in ("data", "checkpoint", "export"):
        value = summary[key]["dir"] if isinstance(summary[key], dict) else summary[key]
        print(f"  {key:<11} {value}")
    print(f"  {'report':<11} {summary['eval']['report_dir']}/report.md")
    for key, page in summary["pages"].items():
        print(f"  {key + ' page':<11} {page}")
    return summary


def _evaluate(cli: str, out: Path, base_url: str, model_name: str, questions: int, env: dict[str, str]) -> dict:
    from openchat_hf.resources import VICUNA_ANSWERS_DIR

    eval_dir = out / "eval"
    judge_url = os.environ.get("OPENCHAT_JUDGE_BASE_URL")
    judge_model = os.environ.get("OPENCHAT_JUDGE_MODEL", "gpt-4")
    note = None
    judge_extra: list[str] = []
    if not judge_url:
        judge_url, judge_model = base_url + "/v1", model_name
        note = (
            "The judge is the tiny random-init demo model itself (no OPENCHAT_JUDGE_BASE_URL configured): its "
            "judgments are meaningless and only show the mechanics. Set OPENCHAT_JUDGE_BASE_URL, "
            "OPENCHAT_JUDGE_MODEL and OPENAI_API_KEY to judge with a real model."
        )
        print(note)
        # A random model writes no parseable review: keep its reviews short and don't retry them.
        judge_extra = ["--max-tokens", "32", "--parse-retries", "0"]
    ids = [str(i) for i in range(1, questions + 1)]
    answers_dir, judge_dir, report_dir = eval_dir / "answers", eval_dir / "judge", eval_dir / "report"
    _run(
        [cli, "eval", "answers", "--bench", "vicuna", "--base-url", base_url + "/v1", "--model", model_name,
         "--out", answers_dir, "--question-ids", *ids, "--max-tokens", "48", "--temperature", "0"],
        env=env,
    )  # fmt: skip
    answers_file = answers_dir / f"{model_name}.jsonl"
    _run(
        [cli, "eval", "judge", "--answers", answers_file, "--baseline", VICUNA_ANSWERS_DIR / "answer_gpt35.jsonl",
         "--judge-base-url", judge_url, "--judge-model", judge_model, "--out", judge_dir, "--question-ids", *ids, *judge_extra],
        env=env,
    )  # fmt: skip
    report_cmd = [cli, "eval", "report", judge_dir, "--out", report_dir]
    if note:
        report_cmd += ["--note", note]
    _run(report_cmd, env=env)
    report = json.loads((report_dir / "report.json").read_text())
    return {"report_dir": str(report_dir), "judge_model": judge_model, "note": note, "models": len(report["models"])}


def add_subcommands(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole OpenChat loop on the embedded tiny default (CPU)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output-dir", default="demo_output", help="where every step writes (default: demo_output)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="server port (a free one if busy)")
    parser.add_argument("--questions", type=int, default=3, help="Vicuna-bench questions to evaluate (default 3)")
    parser.add_argument("--fresh", action="store_true", help="delete the output folder first instead of reusing it")
    parser.set_defaults(func=lambda a: run_demo(a.output_dir, port=a.port, questions=a.questions, fresh=a.fresh) and 0)
