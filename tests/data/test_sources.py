"""Reading ShareGPT inputs: every record is yielded once, unreadable ones with a reason."""

import json

import pytest
from data_helpers import conversation, write_dump, write_page

from openchat_hf.data import sources
from openchat_hf.data.errors import DataPipelineError
from openchat_hf.data.sources import discover_inputs, iter_json_file, iter_records, read_html_page


def test_discover_finds_pages_and_dumps_in_a_stable_order_and_skips_output(tmp_path):
    write_page(tmp_path / "ShareGPT", "b", conversation(1))
    write_page(tmp_path / "ShareGPT", "a", conversation(2))
    write_dump(tmp_path / "dump.json", [])
    write_dump(tmp_path / "out" / "x.json", [])
    (tmp_path / "notes.txt").write_text("ignored")
    found = discover_inputs(tmp_path, exclude=tmp_path / "out")
    assert [f.relative_to(tmp_path).as_posix() for f in found] == ["ShareGPT/a.html", "ShareGPT/b.html", "dump.json"]


def test_discover_errors(tmp_path):
    with pytest.raises(DataPipelineError, match="does not exist"):
        discover_inputs(tmp_path / "missing")
    with pytest.raises(DataPipelineError, match="No ShareGPT input found"):
        discover_inputs(tmp_path)
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DataPipelineError, match=r"not a ShareGPT page"):
        discover_inputs(tmp_path / "x.txt")


def test_read_page(tmp_path):
    record = read_html_page(write_page(tmp_path, "abc", conversation(1)), "abc.html")
    assert record["error"] == "" and record["id"] == "abc" and record["model"] == "Model: GPT-4"
    assert [t["from"] for t in record["turns"]] == ["human", "gpt"]
    assert "<pre>" in record["turns"][1]["value"]


def test_bad_pages_become_reasons(tmp_path):
    good = write_page(tmp_path, "good", conversation(1)).read_text()
    cases = {
        "no_next_data": "<html><body><h1>Deleted</h1></body></html>",
        "truncated_file": good[: good.index("__NEXT_DATA__") + 200],
        "invalid_json": good.replace('"items"', '"items" oops'),
        "wrong_shape": good.replace('"pageProps"', '"otherProps"'),
    }
    for reason, text in cases.items():
        path = tmp_path / f"{reason}.html"
        path.write_text(text, encoding="utf-8")
        assert read_html_page(path, path.name)["error"] == reason
    latin1 = tmp_path / "latin1.html"
    latin1.write_bytes(good.replace("Question", "Qu\u00e9stion").encode("latin-1", "replace"))
    assert read_html_page(latin1, latin1.name)["error"] == "not_utf8"


def test_json_array_streams_in_small_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "_CHUNK", 7)  # force many refills inside values
    records = [{"id": f"r{i}", "conversations": conversation(i)["items"], "model": "m", "n": 12345} for i in range(5)]
    path = write_dump(tmp_path / "d.json", records)
    out = list(iter_json_file(path, "d.json"))
    assert [r["id"] for r in out] == [f"r{i}" for i in range(5)]
    assert all(r["error"] == "" for r in out)
    assert out[3]["turns"][0]["value"] == records[3]["conversations"][0]["value"]


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_truncated_json_keeps_complete_records_and_counts_the_rest(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(sources, "_CHUNK", chunk)
    text = json.dumps([{"id": f"r{i}", "conversations": conversation(i)["items"]} for i in range(4)])
    path = tmp_path / "t.json"
    path.write_text(text[: int(len(text) * 0.7)], encoding="utf-8")
    out = list(iter_json_file(path, "t.json"))
    assert [r["error"] for r in out[:-1]] == [""] * (len(out) - 1)
    assert out[-1]["error"] == "truncated_file"
    assert 2 <= len(out) - 1 < 4


def test_invalid_json_in_the_middle(tmp_path):
    path = tmp_path / "bad.json"
    ok = json.dumps({"id": "a", "conversations": conversation(1)["items"]})
    path.write_text(f"[{ok}, {{bad json}}, {ok}]", encoding="utf-8")
    assert [r["error"] for r in iter_json_file(path, "bad.json")] == ["", "invalid_json"]


def test_non_utf8_json_keeps_what_came_before(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "_CHUNK", 64)
    ok = json.dumps({"id": "a", "conversations": conversation(1)["items"]}).encode()
    path = tmp_path / "bin.json"
    path.write_bytes(b"[" + ok + b", " + ok.replace(b"Question", b"Qu\xe9stion") + b"]")
    errors = [r["error"] for r in iter_json_file(path, "bin.json")]
    assert errors[-1] == "not_utf8" and len(errors) <= 2


@pytest.mark.parametrize(
    "payload, errors",
    [
        ("42", ["wrong_shape"]),
        ('{"data": []}', ["wrong_shape"]),
        ('[1, {"conversations": 3}, {"conversations": [{"from": "human"}]}]', ["wrong_shape", "wrong_shape", ""]),
        ("", ["truncated_file"]),
        ("[]", []),
    ],
)
def test_json_shapes(tmp_path, payload, errors):
    path = tmp_path / "s.json"
    path.write_text(payload, encoding="utf-8")
    assert [r["error"] for r in iter_json_file(path, "s.json")] == errors


def test_jsonl_and_clean_messages(tmp_path):
    path = tmp_path / "c.jsonl"
    line = {
        "id": "c1",
        "model": "Model: GPT-4",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    }
    path.write_text(json.dumps(line) + "\n{not json\n\n" + json.dumps({**line, "id": "c2"}) + "\n", encoding="utf-8")
    out = list(iter_json_file(path, "c.jsonl"))
    assert [(r["id"], r["error"], r["clean"]) for r in out] == [
        ("c1", "", True),
        ("c-1", "invalid_json", False),
        ("c2", "", True),
    ]
    assert out[0]["turns"] == [{"from": "user", "value": "hi"}, {"from": "assistant", "value": "yo"}]


def test_iter_records_names_sources_relative_to_root(tmp_path):
    write_page(tmp_path / "ShareGPT", "p", conversation(1))
    files = [str(f) for f in discover_inputs(tmp_path)]
    assert [r["source"] for r in iter_records(files, str(tmp_path))] == ["ShareGPT/p.html"]
