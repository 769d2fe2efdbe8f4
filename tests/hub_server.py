"""A small, self-contained Hugging Face Hub-compatible HTTP server for tests.

Only the standard library is used (``http.server`` + ``threading``).  The server
speaks enough of the Hub protocol for the real ``huggingface_hub`` client
(written against 2.4.0) to download and upload files over plain HTTP:
``hf_hub_download``, ``snapshot_download``, ``HfApi.model_info`` /
``repo_info``, ``HfApi.create_repo``, ``HfApi.upload_folder`` /
``upload_file`` / ``create_commit`` and a few listing calls all work.

Storage model
-------------
``root`` holds model repos as ``root/<org>/<name>/<revision>/<files...>``.

* Every ``<revision>`` directory that is not a 40-hex commit sha is a *branch*;
  its files are the tree of the branch head.  The directory is (re)read
  whenever a request touches the repo, so tests may create or edit repos on
  disk before or after ``start()``: if the content changed, a new commit is
  recorded on that branch.
* A ``<revision>`` directory named like a 40-hex sha defines a detached commit
  with exactly that sha (handy to pin a known sha in a fixture).
* Commits made through the server (``add_repo`` or the commit API) are kept in
  memory with their full history, so old commits stay resolvable, and the new
  head of the branch is mirrored back to ``root/<org>/<name>/<branch>/``.
  Tags live in memory only.
* All files are served as regular (non-LFS, non-Xet) git blobs: the ``ETag`` is
  the git blob sha1, and uploads always get ``uploadMode: "regular"``, so the
  client never needs ``hf_xet`` nor an LFS/S3 endpoint.

Only model repos are supported (``repo_type=None`` / ``"model"``); dataset and
space URLs answer ``RepoNotFound``.  Authentication is not checked.

Pointing the client at the server
---------------------------------
``huggingface_hub`` reads ``HF_ENDPOINT`` (and ``HF_HOME``, ``HF_HUB_OFFLINE``,
...) once, at import time, into ``huggingface_hub.constants``; setting the
environment variable inside an already running test process therefore has no
effect.  Either:

* in-process (the usual case), call :func:`hub_env` with pytest's
  ``monkeypatch``: it patches the constants the client reads (endpoint, URL
  template, offline flag, cache/token paths, Xet off) and the matching
  environment variables, and points the cache at a fresh temporary ``HF_HOME``.
  Everything is undone by ``monkeypatch`` at the end of the test::

      from hub_server import HubServer, hub_env

      @pytest.fixture
      def hub(tmp_path, monkeypatch):
          with HubServer(tmp_path / "hub") as server:
              hub_env(monkeypatch, server, home=tmp_path / "hf_home")
              yield server

      def test_download(hub):
          sha = hub.add_repo("acme/tiny", {"config.json": b"{}"})
          path = hf_hub_download("acme/tiny", "config.json")   # hits the server
          assert HfApi(endpoint=hub.url).model_info("acme/tiny").sha == sha

  Passing ``endpoint=server.url`` explicitly (``HfApi(endpoint=...)``,
  ``hf_hub_download(..., endpoint=...)``) also works, but the cache location and
  offline flag still come from ``huggingface_hub.constants``, so use
  :func:`hub_env` anyway.
* in a subprocess, set the environment before the interpreter starts, e.g.
  ``env = {**os.environ, **server.env(home)}`` and
  ``subprocess.run([...], env=env)``.

Request log
-----------
``server.requests`` is a list of ``(method, path)`` tuples, one per HTTP request
received, in arrival order; ``path`` is the URL path as sent (percent-encoded,
without the query string).  Tests use it to prove that a call was answered from
the local cache (``len(server.requests)`` does not change).  Unexpected
exceptions inside the server are answered with HTTP 501 (not 500, which the
client would retry for ~30 s) and recorded in ``server.errors``.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["HubServer", "hub_env", "git_blob_oid"]

_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_USER = "hub-test-user"


def git_blob_oid(data: bytes) -> str:
    """Git blob sha1 of ``data``: the ETag / blob id the Hub uses for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


@dataclass
class _Commit:
    sha: str
    parent: str | None
    tree: dict[str, str]  # path in repo -> blob oid
    title: str
    message: str
    date: str


@dataclass
class _Repo:
    repo_id: str
    created_at: str
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # revision dir name -> signature of its content when last read or written
    disk_sig: dict[str, tuple] = field(default_factory=dict)


class _HubError(Exception):
    """An error answered the way the Hub does: status + X-Error-Code/X-Error-Message."""

    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict | None = None, body: dict | None = None
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.extra_headers = headers or {}
        self.body = body or {"error": message}


def _repo_not_found(repo_id: str) -> _HubError:
    return _HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")


class HubServer:
    """Hub-compatible HTTP server on ``127.0.0.1:<free port>``; see the module docstring.

    Public API: ``start()``, ``stop()``, ``url``, context manager, ``add_repo``,
    ``add_tag``, ``resolve``, ``read_files``, ``history``, ``env``, ``requests``,
    ``errors``.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self._lock = threading.RLock()
        self._repos: dict[str, _Repo] = {}
        self._blobs: dict[str, bytes] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> HubServer:
        if self._httpd is not None:
            return self
        handler = type("_BoundHubHandler", (_HubHandler,), {"hub": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="HubServer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("HubServer is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def env(self, home: str | Path) -> dict[str, str]:
        """Environment variables that make a *new* Python process use this server
        with ``home`` as ``HF_HOME`` (for ``subprocess.run(..., env={**os.environ, **env})``)."""
        home = Path(home)
        return {
            "HF_ENDPOINT": self.url,
            "HF_HOME": str(home),
            "HF_HUB_CACHE": str(home / "hub"),
            "HF_XET_CACHE": str(home / "xet"),
            "HF_ASSETS_CACHE": str(home / "assets"),
            "HF_TOKEN_PATH": str(home / "token"),
            "HF_HUB_OFFLINE": "0",
            "TRANSFORMERS_OFFLINE": "0",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    # ------------------------------------------------------------------ test helpers
    def add_repo(
        self, repo_id: str, files: dict[str, bytes], revision: str = "main", message: str | None = None
    ) -> str:
        """Commit ``files`` (the *complete* tree of the new commit, not merged with
        the parent) on branch ``revision`` of ``repo_id``; create the repo and/or
        branch if needed.  Returns the new 40-hex commit sha."""
        with self._lock:
            repo = self._get_or_create_repo(repo_id)
            if _SHA_RE.match(revision) or revision in repo.tags:
                raise ValueError(f"add_repo: revision must be a branch name, got {revision!r}")
            tree = {self._check_path(p): self._store_blob(bytes(data)) for p, data in files.items()}
            sha = self._new_commit(repo, revision, tree, message or f"Add {len(tree)} file(s)")
            self._write_branch_to_disk(repo, revision)
            return sha

    def add_tag(self, repo_id: str, tag: str, revision: str = "main") -> str:
        """Point tag ``tag`` at ``revision``; returns the tagged commit sha."""
        with self._lock:
            repo = self._load_repo(repo_id)
            sha = self._resolve(repo, revision)
            if tag in repo.branches or tag in repo.tags:
                raise ValueError(f"ref {tag!r} already exists in {repo_id}")
            repo.tags[tag] = sha
            return sha

    def resolve(self, repo_id: str, revision: str = "main") -> str:
        """Commit sha that ``revision`` (branch, tag or sha) points to."""
        with self._lock:
            return self._resolve(self._load_repo(repo_id), revision)

    def read_files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Full content of ``repo_id`` at ``revision``, as the server sees it."""
        with self._lock:
            repo = self._load_repo(repo_id)
            tree = repo.commits[self._resolve(repo, revision)].tree
            return {path: self._blobs[oid] for path, oid in sorted(tree.items())}

    def history(self, repo_id: str, revision: str = "main") -> list[str]:
        """Commit shas reachable from ``revision``, newest first."""
        with self._lock:
            repo = self._load_repo(repo_id)
            return [c.sha for c in self._walk(repo, self._resolve(repo, revision))]

    # ------------------------------------------------------------------ storage
    @staticmethod
    def _check_repo_id(repo_id: str) -> tuple[str, str]:
        parts = repo_id.split("/")
        if len(parts) != 2 or not all(_NAME_RE.match(p) and ".." not in p for p in parts):
            raise _repo_not_found(repo_id)
        return parts[0], parts[1]

    @staticmethod
    def _check_path(path: str) -> str:
        parts = path.split("/")
        if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise _HubError(400, f"Invalid path in repo: {path!r}")
        return path

    def _repo_dir(self, repo_id: str) -> Path:
        org, name = self._check_repo_id(repo_id)
        return self.root / org / name

    def _store_blob(self, data: bytes) -> str:
        oid = git_blob_oid(data)
        self._blobs.setdefault(oid, data)
        return oid

    def _new_commit(self, repo: _Repo, branch: str, tree: dict[str, str], title: str, message: str = "") -> str:
        parent = repo.branches.get(branch)
        h = hashlib.sha1(f"{repo.repo_id}\0{branch}\0{parent or ''}\0{title}\0{message}\0".encode())
        for path in sorted(tree):
            h.update(f"{path}\0{tree[path]}\0".encode())
        sha = h.hexdigest()
        repo.commits.setdefault(sha, _Commit(sha, parent, dict(tree), title, message, _now()))
        repo.branches[branch] = sha
        return sha

    @staticmethod
    def _signature(directory: Path) -> tuple:
        entries = []
        for p in directory.rglob("*"):
            if p.is_file():
                st = p.stat()
                entries.append((p.relative_to(directory).as_posix(), st.st_size, st.st_mtime_ns))
        return tuple(sorted(entries))

    def _sync_from_disk(self, repo_id: str) -> _Repo | None:
        """Load/refresh ``repo_id`` from ``root``; returns None if it exists nowhere."""
        repo_dir = self._repo_dir(repo_id)
        repo = self._repos.get(repo_id)
        if not repo_dir.is_dir():
            return repo
        if repo is None:
            repo = self._repos[repo_id] = _Repo(repo_id, _now())
        for rev_dir in sorted(repo_dir.iterdir()):
            name = rev_dir.name
            if not rev_dir.is_dir() or name.startswith("."):
                continue
            sig = self._signature(rev_dir)
            if repo.disk_sig.get(name) == sig:
                continue
            tree = {
                p.relative_to(rev_dir).as_posix(): self._store_blob(p.read_bytes())
                for p in rev_dir.rglob("*")
                if p.is_file()
            }
            if _SHA_RE.match(name):
                repo.commits.setdefault(name, _Commit(name, None, tree, f"Snapshot {name} from disk", "", _now()))
            elif name not in repo.tags:
                head = repo.branches.get(name)
                if head is None or repo.commits[head].tree != tree:
                    self._new_commit(repo, name, tree, f"Sync branch '{name}' from disk")
            repo.disk_sig[name] = sig
        return repo

    def _write_branch_to_disk(self, repo: _Repo, branch: str) -> None:
        if "/" in branch or branch.startswith(".") or _SHA_RE.match(branch):
            return  # not representable as a single directory name: memory only
        repo_dir = self._repo_dir(repo.repo_id)
        repo_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=repo_dir))
        for path, oid in repo.commits[repo.branches[branch]].tree.items():
            target = tmp / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self._blobs[oid])
        final = repo_dir / branch
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        repo.disk_sig[branch] = self._signature(final)

    def _get_or_create_repo(self, repo_id: str) -> _Repo:
        repo = self._sync_from_disk(repo_id)
        if repo is None:
            repo = self._repos[repo_id] = _Repo(repo_id, _now())
        return repo

    def _load_repo(self, repo_id: str) -> _Repo:
        repo = self._sync_from_disk(repo_id)
        if repo is None:
            raise _repo_not_found(repo_id)
        return repo

    @staticmethod
    def _resolve(repo: _Repo, revision: str) -> str:
        rev = revision
        for prefix in ("refs/heads/", "refs/tags/"):
            if rev.startswith(prefix):
                rev = rev[len(prefix):]
        if rev in repo.branches:
            return repo.branches[rev]
        if rev in repo.tags:
            return repo.tags[rev]
        if _SHA_RE.match(rev) and rev in repo.commits:
            return rev
        raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    @staticmethod
    def _walk(repo: _Repo, sha: str | None):
        while sha is not None:
            commit = repo.commits[sha]
            yield commit
            sha = commit.parent

    # ------------------------------------------------------------------ routing
    def _handle(self, method: str, path: str, query: dict, headers: Any, body: bytes, base: str):
        """Returns ``(status, headers, body_bytes)``; raises _HubError for Hub errors."""
        segs = [unquote(s) for s in path.split("/")[1:]]
        with self._lock:
            if segs[:1] == ["api"]:
                return self._handle_api(method, segs[1:], query, headers, body, base)
            if len(segs) >= 5 and segs[2] == "resolve":
                if method not in ("GET", "HEAD"):
                    raise _HubError(405, "Method not allowed")
                return self._resolve_file(method, f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:]), headers)
            if len(segs) >= 6 and segs[0] in ("datasets", "spaces") and segs[3] == "resolve":
                raise _repo_not_found("/".join(segs[:3]))
            raise _HubError(404, f"Not found: {path}")

    def _handle_api(self, method: str, segs: list[str], query: dict, headers: Any, body: bytes, base: str):
        route = (method, "/".join(segs[:2]))
        if route == ("POST", "repos/create"):
            return self._api_create_repo(_json_body(body), base)
        if route == ("DELETE", "repos/delete"):
            return self._api_delete_repo(_json_body(body))
        if route == ("POST", "validate-yaml"):
            return _json(200, {"errors": [], "warnings": []})
        if route[1] == "whoami-v2" and method == "GET":
            return _json(200, {"type": "user", "name": _USER, "fullname": _USER, "orgs": [], "auth": {}})
        if len(segs) >= 3 and segs[0] in ("datasets", "spaces", "kernels"):
            raise _repo_not_found(f"{segs[1]}/{segs[2]}")
        if len(segs) < 3 or segs[0] != "models":
            raise _HubError(404, f"Not found: /api/{'/'.join(segs)}")

        repo_id = f"{segs[1]}/{segs[2]}"
        rest = segs[3:]
        action = rest[0] if rest else ""
        arg = "/".join(rest[1:])  # revision / branch (client quotes '/' as %2F)
        repo = self._load_repo(repo_id)
        if method == "GET" and action == "":
            return self._api_info(repo, "main", query)
        if method == "GET" and action == "revision" and arg:
            return self._api_info(repo, arg, query)
        if method == "GET" and action == "tree" and len(rest) >= 2:
            return self._api_tree(repo, rest[1], "/".join(rest[2:]), query)
        if method == "POST" and action == "paths-info" and len(rest) == 2:
            return self._api_paths_info(repo, rest[1], body)
        if method == "GET" and action == "refs":
            return self._api_refs(repo)
        if method == "GET" and action == "commits" and arg:
            return self._api_commits(repo, arg)
        if method == "POST" and action == "preupload" and arg:
            return self._api_preupload(repo, arg, _json_body(body))
        if method == "POST" and action == "commit" and arg:
            return self._api_commit(repo, arg, query, body, base)
        if action == "branch" and arg and method in ("POST", "DELETE"):
            return self._api_branch(repo, method, arg, _json_body(body) if method == "POST" else {})
        if action == "tag" and arg and method in ("POST", "DELETE"):
            return self._api_tag(repo, method, arg, _json_body(body) if method == "POST" else {})
        raise _HubError(404, f"Not found: /api/{'/'.join(segs)}")

    # ------------------------------------------------------------------ endpoints
    def _resolve_file(self, method: str, repo_id: str, revision: str, filename: str, req_headers: Any):
        repo = self._load_repo(repo_id)
        sha = self._resolve(repo, revision)
        oid = repo.commits[sha].tree.get(filename)
        if oid is None:
            raise _HubError(
                404, f"{filename} does not exist on \"{revision}\"", "EntryNotFound", {"X-Repo-Commit": sha}
            )
        data = self._blobs[oid]
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{oid}"',
            "X-Repo-Commit": sha,
            "Accept-Ranges": "bytes",
        }
        range_header = req_headers.get("Range") if method == "GET" else None
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header or "")
        if m and (m.group(1) or m.group(2)):
            size = len(data)
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # suffix range: last N bytes
                start, end = max(size - int(m.group(2)), 0), size - 1
            if start >= size or start > end:
                return 416, {**headers, "Content-Range": f"bytes */{size}"}, b""
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            return 206, headers, data[start : end + 1]
        return 200, headers, data

    def _api_info(self, repo: _Repo, revision: str, query: dict):
        sha = self._resolve(repo, revision)
        commit = repo.commits[sha]
        with_blobs = _truthy(query.get("blobs"))
        siblings = []
        for path, oid in sorted(commit.tree.items()):
            entry: dict[str, Any] = {"rfilename": path}
            if with_blobs:
                entry.update(size=len(self._blobs[oid]), blobId=oid)
            siblings.append(entry)
        return _json(
            200,
            {
                "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": sha,
                "lastModified": commit.date,
                "createdAt": repo.created_at,
                "private": False,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
                "spaces": [],
                "usedStorage": sum(len(self._blobs[o]) for o in set(commit.tree.values())),
            },
        )

    def _tree_entries(self, tree: dict[str, str]) -> dict[str, dict]:
        """path -> tree-API entry, for files and (implicit) directories."""
        entries: dict[str, dict] = {}
        dir_children: dict[str, list[str]] = {}
        for path, oid in tree.items():
            entries[path] = {"type": "file", "oid": oid, "size": len(self._blobs[oid]), "path": path}
            parts = path.split("/")
            for i in range(1, len(parts)):
                dir_children.setdefault("/".join(parts[:i]), []).append(f"{path}\0{oid}")
        for d, children in dir_children.items():
            oid = hashlib.sha1("\n".join(sorted(children)).encode()).hexdigest()
            entries[d] = {"type": "directory", "oid": oid, "size": 0, "path": d}
        return entries

    def _api_tree(self, repo: _Repo, revision: str, subpath: str, query: dict):
        sha = self._resolve(repo, revision)
        entries = self._tree_entries(repo.commits[sha].tree)
        subpath = subpath.strip("/")
        if subpath and entries.get(subpath, {}).get("type") != "directory":
            raise _HubError(404, f"{subpath} does not exist on \"{revision}\"", "EntryNotFound", {"X-Repo-Commit": sha})
        prefix = f"{subpath}/" if subpath else ""
        recursive = _truthy(query.get("recursive"))
        out = [
            e
            for p, e in sorted(entries.items())
            if p.startswith(prefix) and (recursive or "/" not in p[len(prefix):])
        ]
        return _json(200, out, {"X-Repo-Commit": sha})

    def _api_paths_info(self, repo: _Repo, revision: str, body: bytes):
        sha = self._resolve(repo, revision)
        entries = self._tree_entries(repo.commits[sha].tree)
        form = parse_qs(body.decode(), keep_blank_values=True)
        paths = form.get("paths", [])
        return _json(200, [entries[p.strip("/")] for p in paths if p.strip("/") in entries])

    def _api_refs(self, repo: _Repo):
        def ref(kind: str, name: str, sha: str) -> dict:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": sha}

        return _json(
            200,
            {
                "branches": [ref("heads", n, s) for n, s in sorted(repo.branches.items())],
                "tags": [ref("tags", n, s) for n, s in sorted(repo.tags.items())],
                "converts": [],
                "pullRequests": [],
            },
        )

    def _api_commits(self, repo: _Repo, revision: str):
        sha = self._resolve(repo, revision)
        out = [
            {
                "id": c.sha,
                "title": c.title,
                "message": c.message,
                "authors": [{"user": _USER}],
                "date": c.date,
                "formatted": {"title": c.title, "message": c.message},
            }
            for c in self._walk(repo, sha)
        ]
        return _json(200, out)

    def _writable_branch(self, repo: _Repo, revision: str) -> str:
        if revision not in repo.branches:
            self._resolve(repo, revision)  # RevisionNotFound if it does not exist at all
            raise _HubError(400, f"Revision {revision!r} is not a branch")
        return revision

    def _api_preupload(self, repo: _Repo, revision: str, payload: dict):
        branch = self._writable_branch(repo, revision)
        tree = repo.commits[repo.branches[branch]].tree
        files = payload.get("files")
        if not isinstance(files, list):
            raise _HubError(400, "Expected a 'files' list")
        out = [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": tree.get(f["path"])}
            for f in files
        ]
        return _json(200, {"files": out, "commitOid": repo.branches[branch]})

    def _api_commit(self, repo: _Repo, revision: str, query: dict, body: bytes, base: str):
        if _truthy(query.get("create_pr")):
            raise _HubError(400, "create_pr is not supported by the test Hub server")
        branch = self._writable_branch(repo, revision)
        head = repo.branches[branch]
        tree = dict(repo.commits[head].tree)
        header: dict = {}
        try:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        except ValueError as e:
            raise _HubError(400, f"Invalid NDJSON commit payload: {e}") from None
        for item in lines:
            key, value = item.get("key"), item.get("value") or {}
            if key == "header":
                header = value
            elif key == "file":
                content = value.get("content", "")
                data = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                tree[self._check_path(value["path"])] = self._store_blob(data)
            elif key == "deletedFile":
                if tree.pop(value["path"], None) is None:
                    raise _HubError(404, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for p in [p for p in tree if p.startswith(prefix)]:
                    del tree[p]
            elif key == "lfsFile":
                raise _HubError(400, "LFS files are not supported: preupload always answers 'regular'")
            else:
                raise _HubError(400, f"Unknown commit operation {key!r}")
        parent = header.get("parentCommit")
        if parent and parent != head:
            raise _HubError(412, f"Parent commit {parent} is not the head of {branch} ({head})")
        summary = header.get("summary") or "Upload files"
        sha = self._new_commit(repo, branch, tree, summary, header.get("description") or "")
        self._write_branch_to_disk(repo, branch)
        return _json(
            200,
            {
                "success": True,
                "commitOid": sha,
                "commitUrl": f"{base}/{repo.repo_id}/commit/{sha}",
                "hookOutput": "",
                "pullRequestUrl": None,
            },
        )

    def _api_create_repo(self, payload: dict, base: str):
        repo_type = payload.get("type") or "model"
        if repo_type != "model":
            raise _HubError(400, f"Only model repos are supported, got type={repo_type!r}")
        name = payload.get("name") or ""
        repo_id = f"{payload.get('organization') or _USER}/{name}"
        self._check_repo_id(repo_id)
        url = f"{base}/{repo_id}"
        if self._sync_from_disk(repo_id) is not None:
            msg = "You already created this model repo"
            raise _HubError(409, msg, body={"error": msg, "url": url})
        repo = self._repos[repo_id] = _Repo(repo_id, _now())
        self._new_commit(repo, "main", {}, "initial commit")
        self._write_branch_to_disk(repo, "main")
        return _json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _api_delete_repo(self, payload: dict):
        repo_id = f"{payload.get('organization') or _USER}/{payload.get('name') or ''}"
        self._load_repo(repo_id)
        self._repos.pop(repo_id, None)
        shutil.rmtree(self._repo_dir(repo_id), ignore_errors=True)
        return _json(200, {})

    def _api_branch(self, repo: _Repo, method: str, branch: str, payload: dict):
        if method == "DELETE":
            if branch not in repo.branches:
                raise _HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            del repo.branches[branch]
            if "/" not in branch:
                shutil.rmtree(self._repo_dir(repo.repo_id) / branch, ignore_errors=True)
                repo.disk_sig.pop(branch, None)
            return _json(200, {})
        if branch in repo.branches or branch in repo.tags:
            raise _HubError(409, f"Reference {branch} already exists")
        start = payload.get("startingPoint") or "main"
        repo.branches[branch] = self._resolve(repo, start)
        self._write_branch_to_disk(repo, branch)
        return _json(200, {})

    def _api_tag(self, repo: _Repo, method: str, arg: str, payload: dict):
        if method == "DELETE":
            if arg not in repo.tags:
                raise _HubError(404, f"Invalid rev id: {arg}", "RevisionNotFound")
            del repo.tags[arg]
            return _json(200, {})
        tag = payload.get("tag")
        if not tag:
            raise _HubError(400, "Missing 'tag'")
        if tag in repo.tags or tag in repo.branches:
            raise _HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = self._resolve(repo, arg)
        return _json(200, {})


def _header_safe(text: str) -> str:
    """Single-line, ASCII-only version of ``text`` usable as an HTTP header value."""
    return " ".join(text.encode("ascii", "backslashreplace").decode().split())[:500]


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[-1].lower() in ("1", "true", "yes")


def _json_body(body: bytes) -> dict:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError as e:
        raise _HubError(400, f"Invalid JSON body: {e}") from None
    if not isinstance(data, dict):
        raise _HubError(400, "Expected a JSON object")
    return data


def _json(status: int, payload: Any, headers: dict | None = None):
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, json.dumps(payload).encode()


class _HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TestHubServer/1.0"
    hub: HubServer  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        method = self.command
        split = urlsplit(self.path)
        self.hub.requests.append((method, split.path))
        body = self._read_body()
        base = f"http://{self.headers.get('Host') or self.hub.url[len('http://'):]}"
        try:
            status, headers, payload = self.hub._handle(
                method, split.path, parse_qs(split.query, keep_blank_values=True), self.headers, body, base
            )
        except _HubError as e:
            status = e.status
            headers = {"Content-Type": "application/json; charset=utf-8", "X-Error-Message": _header_safe(e.message)}
            if e.code:
                headers["X-Error-Code"] = e.code
            headers.update(e.extra_headers)
            payload = json.dumps(e.body).encode()
        except Exception as e:  # a bug in this server: 501 so that the client does not retry
            tb = traceback.format_exc()
            self.hub.errors.append(tb)
            status = 501
            headers = {"Content-Type": "text/plain", "X-Error-Message": _header_safe(f"HubServer internal error: {e!r}")}
            payload = tb.encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if method != "HEAD" and payload:
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch


def hub_env(monkeypatch: Any, server: HubServer, home: str | Path | None = None) -> Path:
    """Make the in-process ``huggingface_hub`` client use ``server`` for the
    rest of the test (undone by ``monkeypatch``).

    Patches ``huggingface_hub.constants`` (``ENDPOINT``,
    ``HUGGINGFACE_CO_URL_TEMPLATE``, ``HF_HUB_OFFLINE=False``, ``HF_HOME`` and the
    cache/token/xet/assets paths under it, ``HF_HUB_DISABLE_XET=True``,
    implicit token/telemetry off), the module-level ``HfApi`` behind
    ``huggingface_hub.model_info`` & co., copies of the cache paths held by
    ``huggingface_hub.utils``, and the matching environment variables (for code
    that reads the env or spawns subprocesses).  ``HF_TOKEN`` is removed and the
    client's shared HTTP session is reset so that it sees ``NO_PROXY``.

    ``home`` becomes ``HF_HOME`` (created if needed; a temporary directory if
    omitted).  Returns it.  To simulate offline mode afterwards use
    ``monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)``.
    """
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    if home is None:
        home = Path(tempfile.mkdtemp(prefix="hf-home-"))
        atexit.register(shutil.rmtree, home, True)
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    url = server.url

    for key, value in server.env(home).items():
        monkeypatch.setenv(key, value)
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_CO_STAGING"):
        monkeypatch.delenv(key, raising=False)

    patches = {
        "ENDPOINT": url,
        "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_OFFLINE": False,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "CHECK_FOR_UPDATE_DONE_PATH": str(home / ".check_for_update_done"),
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
    }
    for name, value in patches.items():
        monkeypatch.setattr(constants, name, value, raising=False)

    # Objects / copies created at import time from the old constants.
    from huggingface_hub import hf_api

    monkeypatch.setattr(hf_api.api, "endpoint", url)
    for module_name, attr, value in (
        ("huggingface_hub.utils._cache_manager", "HF_HUB_CACHE", str(home / "hub")),
        ("huggingface_hub.utils._cache_assets", "HF_ASSETS_CACHE", str(home / "assets")),
    ):
        module = __import__(module_name, fromlist=[attr])
        if hasattr(module, attr):
            monkeypatch.setattr(module, attr, value)
    if hasattr(huggingface_hub, "HUGGINGFACE_CO_URL_TEMPLATE"):
        monkeypatch.setattr(huggingface_hub, "HUGGINGFACE_CO_URL_TEMPLATE", patches["HUGGINGFACE_CO_URL_TEMPLATE"])

    _http.close_session()  # recreated on next use, with the patched environment
    return home
