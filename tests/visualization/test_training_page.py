"""`openchat-hf visualize training`: a real tiny training run (recipes/sft.py) and a real data pipeline report."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from viz_helpers import save_artifact

from openchat_hf.cli import main
from openchat_hf.visualization import VisualizationError, build_training_page
from openchat_hf.visualization.training_page import find_trainer_state, training_data

REPO_ROOT = Path(__file__).resolve().parents[2]
READY = "() => window.ocTraining !== undefined"


def _payload(page: Path) -> dict:
    return json.loads(re.search(r'id="oc-data">(.*?)</script>', page.read_text(encoding="utf-8"), re.S).group(1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def trained_run(tiny_llama_dir, tmp_path_factory):
    """`openchat-hf data run` on the bundled ShareGPT sample, then the tiny recipe for 2 epochs, logging every step."""
    from openchat_hf.data import PipelineConfig, run_pipeline
    from openchat_hf.resources import SAMPLE_SHAREGPT_DIR

    root = tmp_path_factory.mktemp("training_page")
    data = root / "data"
    run_pipeline(SAMPLE_SHAREGPT_DIR, data, PipelineConfig(model_types="openchat", tokenizer=str(tiny_llama_dir)))
    out = root / "tiny-run"
    cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--num_processes", "1", "--num_machines", "1",
           "--mixed_precision", "no", "--cpu", "--main_process_port", str(_free_port()),
           str(REPO_ROOT / "recipes" / "sft.py"), "--config", str(REPO_ROOT / "recipes/tiny/sft/config_cpu.yaml"),
           "--model_name_or_path", str(tiny_llama_dir), "--dataset_path", str(data / "openchat"),
           "--output_dir", str(out), "--num_train_epochs", "2", "--logging_steps", "1", "--save_strategy", "no"]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return data, out


@pytest.mark.slow
def test_cli_reads_the_trainers_logs_and_the_data_report(trained_run, tmp_path, capsys):
    data, out = trained_run
    assert main(["visualize", "training", str(out), str(tmp_path / "site"), "--data-report", str(data)]) == 0
    page = tmp_path / "site" / "training.html"
    assert f"wrote {page}" in capsys.readouterr().out
    payload = _payload(page)
    history = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert len(history) >= 2 and [s["step"] for s in payload["steps"]] == [h["step"] for h in history]
    for step, h in zip(payload["steps"], history):
        assert step["loss"] == pytest.approx(h["loss"])
        assert step["tokens_per_second"] == pytest.approx(h["train_tokens_per_second"])
        assert step["supervised_share"] == pytest.approx(h["supervised_tokens_per_step"] / h["tokens_per_step"])
        assert 0 < step["supervised_share"] < 1
    assert payload["logged"]["tokens_per_second"] and payload["logged"]["supervised_share"]
    report = json.loads((data / "report.json").read_text())
    drops = payload["data_report"]["drops"]
    assert payload["data_report"]["inputs"] == report["inputs"] and payload["data_report"]["kept"] == report["kept"]
    assert sum(d["count"] for d in drops) + report["kept"] == report["inputs"]
    assert {(d["step"], d["reason"]): d["count"] for d in drops} == {
        (step, reason): n for step, reasons in report["steps"].items() for reason, n in reasons.items() if n
    }
    assert payload["data_report"]["model_types"]["openchat"]["train"] == report["model_types"]["openchat"]["train"]
    assert str(tmp_path.parent) not in json.dumps(payload)  # no machine path on the page
    assert payload["run"] == "tiny-run" and payload["state_file"] == "trainer_state.json"


@pytest.mark.slow
@pytest.mark.browser
def test_training_page_in_the_browser(trained_run, served, open_page):
    data, out = trained_run
    build_training_page(out, served.root / "t.html", data_report=data / "report.json")
    watch = open_page(served.url("t.html"), READY)
    page = watch.page
    assert page.evaluate("window.ocTraining.failures") == []
    history = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    loss = page.evaluate("document.getElementById('loss-chart').data.map(t => [t.name, t.x, t.y])")
    assert loss[0][0] == "training loss" and loss[0][2] == pytest.approx([h["loss"] for h in history])
    assert loss[-1][0] == "learning rate (right axis)"
    speed = page.evaluate("document.getElementById('speed-chart').data[0].y")
    assert speed == pytest.approx([h["train_tokens_per_second"] for h in history])
    share = page.evaluate("document.getElementById('share-chart').data[0].y")
    assert share == pytest.approx([100 * h["supervised_tokens_per_step"] / h["tokens_per_step"] for h in history])
    report = json.loads((data / "report.json").read_text())
    waterfall = page.evaluate(
        "(() => { const d = document.getElementById('data-chart').data[0]; return [d.x, d.y, d.measure]; })()"
    )
    assert waterfall[0][0] == "input" and waterfall[0][-1] == "kept"
    assert waterfall[1][0] == report["inputs"] and report["inputs"] + sum(waterfall[1][1:-1]) == report["kept"]
    assert f"{report['kept']:,} (" in page.inner_text("#data-meta")
    assert len(page.locator("#drops tr[data-reason]").all()) == len(waterfall[0]) - 2
    cards = page.locator(".card .value").all_inner_texts()
    assert cards[1] == f"{history[-1]['loss']:.3f}" and "not logged" not in cards
    watch.assert_clean()
    save_artifact(page, "training.png")


def _state(tmp_path: Path, history: list[dict], name: str = "trainer_state.json") -> Path:
    """A trainer_state.json written by transformers' own TrainerState."""
    from transformers import TrainerState

    state = TrainerState(global_step=max((h.get("step", 0) for h in history), default=0), max_steps=4,
                         num_train_epochs=1, logging_steps=2)  # fmt: skip
    state.log_history = history
    tmp_path.mkdir(parents=True, exist_ok=True)
    state.save_to_json(str(tmp_path / name))
    return tmp_path / name


def test_older_trainer_logs_are_shown_as_not_logged(tmp_path):
    history = [
        {"epoch": 0.5, "step": 2, "loss": 2.5, "grad_norm": math.nan, "learning_rate": 1e-3},
        {"epoch": 1.0, "step": 4, "loss": 2.0, "grad_norm": 1.5, "learning_rate": 5e-4},
        {"epoch": 1.0, "step": 4, "eval_loss": 2.2, "eval_runtime": 0.5},
        {"epoch": 1.0, "step": 4, "train_runtime": 12.5, "train_loss": 2.25},
    ]
    _state(tmp_path / "run", history)
    data = training_data(json.loads((tmp_path / "run" / "trainer_state.json").read_text()))
    assert [s["loss"] for s in data["steps"]] == [2.5, 2.0]
    assert data["steps"][0]["grad_norm"] is None  # NaN is no number (and would break the page's JSON)
    assert data["evals"] == [{"step": 4.0, "epoch": 1.0, "loss": 2.2}]
    assert data["summary"]["train_runtime"] == 12.5
    assert not data["logged"]["tokens_per_second"] and not data["logged"]["supervised_share"]
    assert data["mean_tokens_per_second"] is None
    page = build_training_page(tmp_path / "run", tmp_path / "site")
    assert page == tmp_path / "site" / "training.html" and _payload(page)["data_report"] is None


@pytest.mark.browser
def test_not_logged_charts_say_so(served, open_page, tmp_path):
    _state(tmp_path / "run", [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}])
    build_training_page(tmp_path / "run", served.root / "old.html")
    watch = open_page(served.url("old.html"), READY)
    page = watch.page
    assert page.evaluate("window.ocTraining.failures") == []
    assert "Not logged by this run: its trainer_state.json has no train_tokens_per_second" in page.inner_text(
        "#speed-chart"
    )
    assert "tokens_per_step and supervised_tokens_per_step" in page.inner_text("#share-chart")
    assert page.locator("#data-section").is_hidden()
    watch.assert_clean()


def test_trainer_state_is_found_in_the_newest_checkpoint(tmp_path):
    run = tmp_path / "run"
    _state(run / "checkpoint-9", [{"step": 9, "loss": 1.0}])
    _state(run / "checkpoint-10", [{"step": 10, "loss": 0.9}])
    (run / "checkpoint-11").mkdir()  # unfinished: no state yet
    assert find_trainer_state(run) == run / "checkpoint-10" / "trainer_state.json"
    _state(run, [{"step": 12, "loss": 0.8}])
    assert find_trainer_state(run) == run / "trainer_state.json"


def test_cli_training_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["visualize", "training", str(tmp_path / "empty"), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("openchat-hf visualize: error:") and "No trainer_state.json in" in err
    assert err.count("\n") == 1
    _state(tmp_path / "run", [{"step": 1, "loss": 1.0}])
    assert (
        main(["visualize", "training", str(tmp_path / "run"), str(tmp_path / "o"), "--data-report", str(tmp_path)])
        == 2
    )
    assert "report.json not found: pass the data pipeline's output folder" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "report.json").write_text('{"inputs": 3}')
    assert (
        main(
            [
                "visualize",
                "training",
                str(tmp_path / "run"),
                str(tmp_path / "o"),
                "--data-report",
                str(tmp_path / "bad"),
            ]
        )
        == 2
    )
    assert "is not a data pipeline report" in capsys.readouterr().err
    (tmp_path / "run" / "trainer_state.json").write_text("{broken")
    with pytest.raises(VisualizationError, match="not a readable trainer_state.json"):
        build_training_page(tmp_path / "run", tmp_path / "o")
    assert not (tmp_path / "o").exists()
