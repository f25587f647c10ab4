"""A local fake of the Hugging Face Hub HTTP API, for testing uploads and downloads without the network.

A real HTTP server on 127.0.0.1 (free port, daemon thread) that implements what ``huggingface_hub`` 2.4 needs to

* authenticate: ``GET /api/whoami-v2`` (the token must be ``FakeHub.token``, else 401);
* check README metadata: ``POST /api/validate-yaml`` (400 on invalid YAML front matter);
* create a repo: ``POST /api/repos/create`` (409 when it exists, which ``create_repo(exist_ok=True)`` accepts);
* upload: ``POST /api/{type}s/{repo}/preupload/{rev}`` answers ``"regular"`` for every file, so
  ``upload_folder`` / ``upload_file`` / ``create_commit`` send contents inline (base64 in the ndjson commit,
  ``POST /api/{type}s/{repo}/commit/{rev}``) and never go to LFS / Xet storage;
* download: ``GET /api/{type}s/{repo}[/revision/{rev}]`` (repo info with ``sha`` and ``siblings``),
  ``GET /api/{type}s/{repo}/tree/{rev}[/{path}]``, ``POST /api/{type}s/{repo}/paths-info/{rev}``,
  ``GET /api/{type}s/{repo}/refs`` and ``HEAD``/``GET /[{type}s/]{repo}/resolve/{rev}/{path}``
  (``hf_hub_download``, ``snapshot_download``, ``load_dataset`` of Parquet files).

Only the ``main`` branch exists and each commit's id is the SHA-1 of its content. Usage::

    from fake_hub import FakeHub  # tests/ is on sys.path (tests/conftest.py has no package)

    with FakeHub() as hub:  # or the ``fake_hub`` pytest fixture of tests/modeling/conftest.py
        api = HfApi(endpoint=hub.url, token=hub.token)
        api.create_repo("user/model")
        api.upload_folder(folder_path=path, repo_id="user/model")
        assert hub.files("user/model")["config.json"] == (path / "config.json").read_bytes()
        hf_hub_download("user/model", "config.json", endpoint=hub.url, token=hub.token, cache_dir=tmp)

In a test, ``hub.patch(monkeypatch)`` points this process's ``huggingface_hub`` at the fake (endpoint, download URL,
token, offline mode off: ``huggingface_hub.constants`` reads ``HF_ENDPOINT`` once at import, so setting the variable
in a running test is not enough). For a subprocess, pass ``hub.env()`` (``HF_ENDPOINT``, ``HF_TOKEN``,
``HF_HUB_OFFLINE=0``). ``hub.requests`` lists ``(method, path)`` of every request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

FAKE_TOKEN = "hf_fake_token_for_tests"
FAKE_USER = "fake-user"
REPO_TYPES = ("model", "dataset", "space")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports as a regular file's ``oid``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class _Repo:
    repo_id: str
    repo_type: str
    private: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1]["id"] if self.commits else "0" * 40


class FakeHub:
    """A fake Hub server: ``.url``, ``.token``, ``.files(repo_id)``, ``.commits(repo_id)``, ``.requests``."""

    def __init__(self, token: str = FAKE_TOKEN, user: str = FAKE_USER) -> None:
        self.token = token
        self.user = user
        self.requests: list[tuple[str, str]] = []
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------------------ public
    def files(self, repo_id: str, repo_type: str = "model") -> dict[str, bytes]:
        """Path -> content of every file at the head of ``repo_id`` (KeyError if the repo does not exist)."""
        with self._lock:
            return dict(self._repos[(repo_type, repo_id)].files)

    def commits(self, repo_id: str, repo_type: str = "model") -> list[dict[str, Any]]:
        """The commits of ``repo_id``, oldest first: ``{"id", "summary", "paths"}``."""
        with self._lock:
            return [dict(c) for c in self._repos[(repo_type, repo_id)].commits]

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def env(self) -> dict[str, str]:
        """Environment variables pointing ``huggingface_hub`` (in a subprocess) at this fake."""
        return {"HF_ENDPOINT": self.url, "HF_TOKEN": self.token, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1"}

    def patch(self, monkeypatch: Any) -> FakeHub:
        """Point this process's ``huggingface_hub`` at the fake (pytest ``monkeypatch``; undone after the test).

        Sets ``constants.ENDPOINT`` and the download URL template (both read once at import), turns offline mode off
        for ``huggingface_hub`` and sets ``HF_TOKEN``, so calls without ``endpoint=`` / ``token=`` reach the fake.
        """
        import huggingface_hub.constants as constants

        monkeypatch.setattr(constants, "ENDPOINT", self.url)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", self.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_TOKEN", self.token)
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ state
    def _repo(self, repo_type: str, repo_id: str) -> _Repo | None:
        return self._repos.get((repo_type, repo_id))

    def _create(self, repo_type: str, repo_id: str, private: bool) -> bool:
        with self._lock:
            if (repo_type, repo_id) in self._repos:
                return False
            self._repos[(repo_type, repo_id)] = _Repo(repo_id, repo_type, private)
            return True

    def _commit(self, repo: _Repo, lines: list[dict[str, Any]]) -> str:
        with self._lock:
            header: dict[str, Any] = {}
            files = dict(repo.files)
            changed: list[str] = []
            for line in lines:
                key, value = line.get("key"), line.get("value", {})
                if key == "header":
                    header = value
                elif key == "file":
                    if value.get("encoding") != "base64":
                        raise _HTTPError(400, f"Unsupported encoding {value.get('encoding')!r}")
                    files[value["path"]] = base64.b64decode(value["content"])
                    changed.append(value["path"])
                elif key == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        raise _HTTPError(404, f"File {value['path']} does not exist")
                    changed.append(value["path"])
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    for path in [p for p in files if p.startswith(prefix)]:
                        del files[path]
                        changed.append(path)
                else:
                    raise _HTTPError(400, f"The fake Hub does not support commit operation {key!r} (LFS, copy)")
            parent = header.get("parentCommit")
            if parent is not None and parent != repo.sha:
                raise _HTTPError(412, "A commit has happened since the parent commit")
            digest = hashlib.sha1(repo.sha.encode() + json.dumps(lines, sort_keys=True).encode()).hexdigest()
            repo.files = files
            repo.commits.append({"id": digest, "summary": header.get("summary", ""), "paths": changed})
            return digest


class _HTTPError(Exception):
    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.headers, self.extra = status, message, headers or {}, extra or {}


def _split_repo(parts: list[str]) -> tuple[str, list[str]]:
    """``["user", "name", ...rest]`` -> ("user/name", rest); a repo id without namespace is not supported."""
    if len(parts) < 2:
        raise _HTTPError(404, "Repository not found")
    return f"{parts[0]}/{parts[1]}", parts[2:]


def _make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        # ------------------------------------------------------------------------------------ plumbing
        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            headers = {"Content-Type": "application/json", **(headers or {})}
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data).encode(), headers)

        def _body(self) -> bytes:
            return self._raw_body

        def _authorized(self) -> bool:
            return self.headers.get("Authorization", "") == f"Bearer {hub.token}"

        def _require_auth(self) -> None:
            if not self._authorized():
                raise _HTTPError(401, "Invalid credentials in Authorization header")

        def _dispatch(self) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            hub.requests.append((self.command, path))
            length = int(self.headers.get("Content-Length") or 0)
            self._raw_body = self.rfile.read(length) if length else b""  # always drain it: keep-alive connections
            try:
                self._route(path, parse_qs(url.query))
            except _HTTPError as err:
                headers = {"X-Error-Message": err.message, **err.headers}
                self._json({"error": err.message, **err.extra}, err.status, headers)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _dispatch

        # ------------------------------------------------------------------------------------ routes
        def _route(self, path: str, query: dict[str, list[str]]) -> None:
            parts = [p for p in path.split("/") if p]
            if parts[:2] == ["api", "whoami-v2"]:
                self._require_auth()
                return self._json(
                    {
                        "type": "user",
                        "name": hub.user,
                        "fullname": "Fake User",
                        "orgs": [],
                        "auth": {"type": "access_token", "accessToken": {"displayName": "fake", "role": "write"}},
                    }
                )
            if parts[:2] == ["api", "validate-yaml"] and self.command == "POST":
                return self._validate_yaml()
            if parts[:3] == ["api", "repos", "create"] and self.command == "POST":
                return self._create_repo()
            if parts and parts[0] == "api" and len(parts) >= 2 and parts[1].rstrip("s") in REPO_TYPES:
                return self._api_repo(parts[1].rstrip("s"), parts[2:], query)
            repo_type = "model"
            if parts and parts[0] in ("datasets", "spaces"):
                repo_type, parts = parts[0].rstrip("s"), parts[1:]
            repo_id, rest = _split_repo(parts)
            if len(rest) >= 3 and rest[0] == "resolve":
                return self._resolve(repo_type, repo_id, rest[1], "/".join(rest[2:]))
            raise _HTTPError(404, f"The fake Hub has no route for {self.command} {path}")

        def _validate_yaml(self) -> None:
            """Check a README's YAML front matter, as the Hub does before a commit that uploads a README.md."""
            import yaml

            content = json.loads(self._body() or b"{}").get("content", "")
            try:
                yaml.safe_load(content.split("---")[1] if content.startswith("---") else "")
            except yaml.YAMLError as err:
                raise _HTTPError(400, f"Invalid YAML metadata: {err}") from None
            return self._json({"errors": [], "warnings": []})

        def _create_repo(self) -> None:
            self._require_auth()
            payload = json.loads(self._body() or b"{}")
            name, organization = payload.get("name"), payload.get("organization")
            repo_id = f"{organization or hub.user}/{name}"
            repo_type = payload.get("type") or "model"
            private = payload.get("visibility") == "private" or bool(payload.get("private"))
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            url = f"{hub.url}/{prefix}{repo_id}"
            if not hub._create(repo_type, repo_id, private):
                raise _HTTPError(409, "You already created this repo", extra={"url": url})
            return self._json({"url": url, "name": repo_id, "id": repo_id})

        def _get_repo(self, repo_type: str, repo_id: str) -> _Repo:
            repo = hub._repo(repo_type, repo_id)
            if repo is None or (repo.private and not self._authorized()):
                raise _HTTPError(404, "Repository not found", {"X-Error-Code": "RepoNotFound"})
            return repo

        @staticmethod
        def _check_revision(repo: _Repo, revision: str) -> None:
            if revision not in ("main", repo.sha) and not any(c["id"] == revision for c in repo.commits):
                raise _HTTPError(404, f"Invalid rev id: {revision}", {"X-Error-Code": "RevisionNotFound"})

        @staticmethod
        def _entry(path: str, data: bytes, repo: _Repo) -> dict[str, Any]:
            return {
                "type": "file",
                "path": path,
                "size": len(data),
                "oid": git_blob_sha1(data),
                "lastCommit": {"id": repo.sha, "title": repo.commits[-1]["summary"], "date": "2026-01-01T00:00:00Z"}
                if repo.commits
                else None,
            }

        def _api_repo(self, repo_type: str, parts: list[str], query: dict[str, list[str]]) -> None:
            repo_id, rest = _split_repo(parts)
            action = rest[0] if rest else None
            if action == "preupload":
                self._require_auth()
                repo = self._get_repo(repo_type, repo_id)
                payload = json.loads(self._body() or b"{}")
                files = []
                for item in payload.get("files", []):
                    existing = repo.files.get(item["path"])
                    files.append(
                        {
                            "path": item["path"],
                            "uploadMode": "regular",
                            "shouldIgnore": False,
                            "oid": git_blob_sha1(existing) if existing is not None else None,
                        }
                    )
                return self._json({"files": files, "commitOid": repo.sha})
            if action == "commit":
                self._require_auth()
                repo = self._get_repo(repo_type, repo_id)
                lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
                sha = hub._commit(repo, lines)
                prefix = "" if repo_type == "model" else f"{repo_type}s/"
                return self._json(
                    {
                        "success": True,
                        "commitOid": sha,
                        "commitUrl": f"{hub.url}/{prefix}{repo_id}/commit/{sha}",
                        "pullRequestUrl": None,
                    }
                )
            repo = self._get_repo(repo_type, repo_id)
            if action is None or action == "revision":
                if action == "revision" and len(rest) > 1:
                    self._check_revision(repo, "/".join(rest[1:]))
                return self._json(
                    {
                        "id": repo_id,
                        "modelId": repo_id,
                        "sha": repo.sha,
                        "private": repo.private,
                        "disabled": False,
                        "gated": False,
                        "downloads": 0,
                        "likes": 0,
                        "tags": [],
                        "lastModified": "2026-01-01T00:00:00.000Z",
                        "siblings": [{"rfilename": p, "size": len(d)} for p, d in sorted(repo.files.items())],
                    }
                )
            if action == "refs":
                return self._json(
                    {"branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": repo.sha}], "tags": []}
                )
            if action == "tree" and len(rest) >= 2:
                self._check_revision(repo, rest[1])
                base = "/".join(rest[2:]).strip("/")
                recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                return self._json(self._tree(repo, base, recursive))
            if action == "paths-info" and len(rest) >= 2:
                self._check_revision(repo, rest[1])
                body = self._body()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    paths = json.loads(body or b"{}").get("paths", [])
                else:
                    paths = parse_qs(body.decode()).get("paths", [])
                out = []
                for path in paths:
                    if path in repo.files:
                        out.append(self._entry(path, repo.files[path], repo))
                    elif any(p.startswith(path.rstrip("/") + "/") for p in repo.files):
                        out.append({"type": "directory", "path": path, "oid": "0" * 40})
                return self._json(out)
            raise _HTTPError(404, f"The fake Hub has no route for {self.command} /api/{repo_type}s/{repo_id}/{action}")

        def _tree(self, repo: _Repo, base: str, recursive: bool) -> list[dict[str, Any]]:
            prefix = f"{base}/" if base else ""
            entries: dict[str, dict[str, Any]] = {}
            for path, data in sorted(repo.files.items()):
                if not path.startswith(prefix):
                    continue
                rest = path[len(prefix) :].split("/")
                for depth in range(1, len(rest)):
                    folder = prefix + "/".join(rest[:depth])
                    if recursive or depth == 1:
                        entries.setdefault(folder, {"type": "directory", "path": folder, "oid": "0" * 40})
                if recursive or len(rest) == 1:
                    entries[path] = self._entry(path, data, repo)
            if base and not entries:
                raise _HTTPError(404, f"{base} does not exist", {"X-Error-Code": "EntryNotFound"})
            return list(entries.values())

        def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
            repo = self._get_repo(repo_type, repo_id)
            self._check_revision(repo, revision)
            if path not in repo.files:
                raise _HTTPError(404, "Entry not found", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.sha})
            data = repo.files[path]
            etag = f'"{git_blob_sha1(data)}"'
            headers = {"Content-Type": "application/octet-stream", "ETag": etag, "X-Repo-Commit": repo.sha}
            self._send(200, data, headers)

    return Handler
