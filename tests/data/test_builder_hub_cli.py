"""The datasets builder, the Hub push round trip (no network), the bundled sample, and the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from huggingface_hub import HfApi

from openchat_hf.data import push_dataset
from openchat_hf.data.builder import ShareGPTBuilder
from openchat_hf.data.errors import DataPipelineError
from openchat_hf.data.sample import write_sample
from openchat_hf.resources import SAMPLE_SHAREGPT_DIR


def test_builder_raw_counts_every_record(tmp_path, sample_run):
    _, report = sample_run
    builder = ShareGPTBuilder(cache_dir=str(tmp_path), data_dir=str(SAMPLE_SHAREGPT_DIR), stage="raw")
    builder.download_and_prepare()
    raw = builder.as_dataset("train")
    assert len(raw) == report["inputs"]
    assert sum(1 for e in raw["error"] if e) == sum(report["steps"]["read"].values())
    assert raw.features["turns"].feature["from"].dtype == "string"


def test_builder_clean_stage(tmp_path, sample_run):
    out, report = sample_run
    builder = ShareGPTBuilder(cache_dir=str(tmp_path), data_dir=str(SAMPLE_SHAREGPT_DIR), stage="clean")
    builder.download_and_prepare()
    ds = builder.as_dataset("train")
    assert ds.column_names == ["id", "model", "messages", "source"]
    # The builder does no cross-file dedup: pipeline output + the duplicates of GPT-4 conversations.
    clean_ids = set(datasets.load_from_disk(str(out / "clean"))["id"])
    assert clean_ids < set(ds["id"])
    assert len(ds) - len(clean_ids) <= report["steps"]["dedup"]["duplicate"]
    with pytest.raises(DataPipelineError, match="stage"):
        ShareGPTBuilder(cache_dir=str(tmp_path), data_dir=str(SAMPLE_SHAREGPT_DIR), stage="nope")


def test_push_round_trip_through_the_uploaded_files(sample_run, tmp_path, monkeypatch):
    """Capture what push_dataset sends at HfApi's HTTP-boundary methods, then load it back with load_dataset."""
    out, _ = sample_run
    remote = tmp_path / "remote"
    calls = []

    def fake_create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs.get("repo_type")))

    def fake_create_commit(self, repo_id, operations, **kwargs):
        calls.append(("create_commit", repo_id, kwargs.get("repo_type")))
        for op in operations:
            target = remote / op.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(Path(op.path_or_fileobj).read_bytes())
        return "commit"

    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(HfApi, "create_commit", fake_create_commit)
    assert push_dataset(out, "user/openchat-sample") == "commit"
    assert calls == [
        ("create_repo", "user/openchat-sample", "dataset"),
        ("create_commit", "user/openchat-sample", "dataset"),
    ]
    assert (remote / "README.md").exists() and any((remote / "clean").glob("*.parquet"))
    clean = datasets.load_dataset(str(remote), cache_dir=str(tmp_path / "c1"))
    assert clean["train"].to_list() == datasets.load_from_disk(str(out / "clean")).to_list()
    for name in ("openchat", "opencoder"):
        loaded = datasets.load_dataset(str(remote), name, cache_dir=str(tmp_path / "c2"))
        local = datasets.load_from_disk(str(out / name))
        for split in ("train", "eval"):
            assert loaded[split].to_list() == local[split].to_list()
    with pytest.raises(DataPipelineError, match="user/name"):
        push_dataset(out, "no-slash")
    with pytest.raises(DataPipelineError, match="not a pipeline output folder"):
        push_dataset(tmp_path, "user/x")


def test_bundled_sample_is_the_generator_output(tmp_path):
    counts = write_sample(tmp_path)
    bundled = sorted(
        p.relative_to(SAMPLE_SHAREGPT_DIR) for p in SAMPLE_SHAREGPT_DIR.rglob("*") if p.suffix in (".html", ".json")
    )
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert bundled == fresh and counts["records"] == counts["pages"] + counts["dump"]
    for rel in fresh:
        assert (tmp_path / rel).read_bytes() == (SAMPLE_SHAREGPT_DIR / rel).read_bytes(), rel
    assert sum(p.stat().st_size for p in SAMPLE_SHAREGPT_DIR.rglob("*") if p.is_file()) < 1_000_000
    assert "Apache" in (SAMPLE_SHAREGPT_DIR / "README.md").read_text()


def _cli(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "openchat_hf.cli", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd
    )


def test_cli_run_prints_the_report(tmp_path, tokenizer_dirs):
    words = tmp_path / "words.txt"
    words.write_text("time management\n")
    res = _cli(
        "data",
        "run",
        SAMPLE_SHAREGPT_DIR,
        tmp_path / "out",
        "--tokenizer",
        tokenizer_dirs["llama"],
        "--eval-ratio",
        "0.2",
        "--seed",
        "1",
        "--filter-model",
        "all",
        "--blocked-words-file",
        words,
        "--num-proc",
        "1",
        "--no-decontaminate",
    )
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "| **kept** |" in res.stdout and f"**{report['kept']}**" in res.stdout
    assert report["steps"]["filter"] == {} and report["config"]["blocked_words"] == ["time management"]
    assert report["model_types"]["openchat"]["eval"] >= 0.2 * report["kept"]
    assert datasets.load_from_disk(str(tmp_path / "out" / "openchat"))["train"].num_rows > 0


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path):
    (tmp_path / "empty").mkdir()
    res = _cli("data", "run", tmp_path / "empty", tmp_path / "out")
    assert res.returncode == 2 and "No ShareGPT input found" in res.stderr and "Traceback" not in res.stderr
    res = _cli("data", "run", SAMPLE_SHAREGPT_DIR, tmp_path / "out", "--tokenizer", tmp_path / "missing")
    assert res.returncode == 2 and "Tokenizer folder" in res.stderr and "Traceback" not in res.stderr
    res = _cli("data", "push", tmp_path, "user/name")
    assert res.returncode == 2 and "not a pipeline output folder" in res.stderr
    res = _cli("data", "run", "--help")
    assert res.returncode == 0 and "--overflow" in res.stdout and "--tokenizer" in res.stdout


def test_push_then_load_dataset_through_a_fake_hub(sample_run, tmp_path, monkeypatch):
    """push_dataset to a local fake of the Hub's HTTP API, then `load_dataset("user/name")` from it (subprocess)."""
    from fake_hub import FakeHub

    out, _ = sample_run
    with FakeHub() as hub:
        hub.patch(monkeypatch)
        push_dataset(out, f"{hub.user}/sample")
        card = hub.files(f"{hub.user}/sample", "dataset")["README.md"].decode()
        assert "config_name: default" in card and "config_name: openchat" in card
        env = {**os.environ, **hub.env(), "HF_DATASETS_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf")}
        check = (
            "import datasets, sys\n"
            f"remote = datasets.load_dataset('{hub.user}/sample', cache_dir=sys.argv[2])['train']\n"
            "local = datasets.load_from_disk(sys.argv[1] + '/clean')\n"
            "assert remote.to_list() == local.to_list(), 'clean rows differ'\n"
            f"tok = datasets.load_dataset('{hub.user}/sample', 'openchat', cache_dir=sys.argv[2])\n"
            "local = datasets.load_from_disk(sys.argv[1] + '/openchat')\n"
            "assert all(tok[s].to_list() == local[s].to_list() for s in ('train', 'eval')), 'tokenized rows differ'\n"
            "print('rows', len(remote))\n"
        )
        load = subprocess.run(
            [sys.executable, "-c", check, str(out), str(tmp_path / "cache")], capture_output=True, text=True, env=env
        )
        assert load.returncode == 0, load.stderr[-3000:]
        assert load.stdout.strip() == f"rows {len(datasets.load_from_disk(str(out / 'clean')))}"


def test_cli_push_failure_is_a_one_line_error(sample_run, tmp_path):
    from fake_hub import FakeHub

    out, _ = sample_run
    with FakeHub() as hub:
        env = {**os.environ, **hub.env(), "HF_TOKEN": "wrong-token"}
        res = subprocess.run(
            [sys.executable, "-m", "openchat_hf.cli", "data", "push", str(out), f"{hub.user}/sample"],
            capture_output=True,
            text=True,
            env=env,
        )
    assert res.returncode == 2 and "Pushing to the dataset repo" in res.stderr and "Traceback" not in res.stderr
