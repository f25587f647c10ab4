"""`data push` and `export --push` with the Hub unreachable (a fake Hub on loopback, stopped): one line, exit 2."""

from __future__ import annotations

import pytest
from fake_hub import FakeHub

from openchat_hf.cli import main


@pytest.fixture
def stopped_hub(monkeypatch):
    hub = FakeHub()
    hub.patch(monkeypatch)
    hub.close()  # the address is right, nothing answers: connection refused
    return hub


def test_data_push_to_an_unreachable_hub_fails_in_one_line(stopped_hub, tmp_path, capsys):
    from openchat_hf.data import PipelineConfig, run_pipeline
    from openchat_hf.resources import SAMPLE_SHAREGPT_DIR

    run_pipeline(SAMPLE_SHAREGPT_DIR, tmp_path / "out", PipelineConfig())
    capsys.readouterr()
    assert main(["data", "push", str(tmp_path / "out"), "fake-user/sample"]) == 2
    err = capsys.readouterr().err  # after the Parquet progress bars
    last = err.splitlines()[-1]
    assert last.startswith("openchat-hf data: error: Pushing to the dataset repo fake-user/sample failed: ")
    assert "Connection refused" in last and "Traceback" not in err


def test_export_push_to_an_unreachable_hub_fails_in_one_line(stopped_hub, patched_llama, tmp_path, capsys):
    assert main(["export", str(patched_llama), str(tmp_path / "out"), "--push", "fake-user/model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("openchat-hf export: error: Pushing to fake-user/model failed: ")
    assert "Connection refused" in err and err.count("\n") == 1
    assert (tmp_path / "out" / "config.json").is_file()  # the local export is kept
