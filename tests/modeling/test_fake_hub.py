"""The fake Hub speaks enough of the Hub API for huggingface_hub's upload and download functions."""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError


def test_upload_download_roundtrip(fake_hub, tmp_path):
    api = HfApi()
    assert api.whoami()["name"] == fake_hub.user
    api.create_repo("fake-user/data", repo_type="dataset")
    api.create_repo("fake-user/data", repo_type="dataset", exist_ok=True)
    with pytest.raises(HfHubHTTPError):
        api.create_repo("fake-user/data", repo_type="dataset")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 10)
    api.upload_folder(folder_path=folder, repo_id="fake-user/data", repo_type="dataset", commit_message="first")
    assert fake_hub.files("fake-user/data", "dataset") == {"a.txt": b"alpha", "sub/b.bin": bytes(range(256)) * 10}

    api.create_commit(
        "fake-user/data",
        [CommitOperationAdd("c.txt", b"gamma"), CommitOperationDelete("a.txt")],
        commit_message="second",
        repo_type="dataset",
    )
    assert sorted(fake_hub.files("fake-user/data", "dataset")) == ["c.txt", "sub/b.bin"]
    assert [c["summary"] for c in fake_hub.commits("fake-user/data", "dataset")] == ["first", "second"]

    path = hf_hub_download("fake-user/data", "sub/b.bin", repo_type="dataset", cache_dir=tmp_path / "cache")
    assert open(path, "rb").read() == bytes(range(256)) * 10
    tree = sorted(f.path for f in api.list_repo_tree("fake-user/data", repo_type="dataset", recursive=True))
    assert tree == ["c.txt", "sub", "sub/b.bin"]
    info = api.get_paths_info("fake-user/data", ["c.txt", "sub", "missing"], repo_type="dataset")
    assert [(i.path, type(i).__name__) for i in info] == [("c.txt", "RepoFile"), ("sub", "RepoFolder")]
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("fake-user/data", "missing.txt", repo_type="dataset", cache_dir=tmp_path / "cache")


def test_auth_and_privacy(fake_hub, tmp_path):
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(token="hf_wrong").create_repo("fake-user/nope")
    assert err.value.response.status_code == 401
    assert not fake_hub.repo_exists("fake-user/nope")
    api = HfApi()
    api.create_repo("fake-user/secret", private=True)
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="fake-user/secret")
    assert hf_hub_download("fake-user/secret", "x.txt", cache_dir=tmp_path / "a")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("fake-user/secret", "x.txt", cache_dir=tmp_path / "b", token=False)
