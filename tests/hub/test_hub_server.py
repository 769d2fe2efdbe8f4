"""End-to-end checks of tests/hub_server.py with the real huggingface_hub client over HTTP."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    constants,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

try:
    from hub_server import HubServer, git_blob_oid
except ImportError:  # tests/ turned into a package, or --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hub_server import HubServer, git_blob_oid

V1 = {"config.json": b'{"version": 1}', "weights/model.bin": bytes(range(256)) * 4}
V2 = {"config.json": b'{"version": 2}', "weights/model.bin": bytes(range(256)) * 4, "README.md": b"# tiny\n"}




@pytest.fixture
def tiny(hub):
    """acme/tiny with two commits on main; returns (sha_v1, sha_v2)."""
    return hub.add_repo("acme/tiny", V1), hub.add_repo("acme/tiny", V2)


def _read(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def _new_requests(hub: HubServer, before: int) -> list[tuple[str, str]]:
    return hub.requests[before:]


def test_hub_env_points_client_at_server(hub, tmp_path):
    assert hub.url.startswith("http://127.0.0.1:")
    assert constants.ENDPOINT == hub.url
    assert constants.HF_HUB_OFFLINE is False
    assert Path(constants.HF_HUB_CACHE) == tmp_path / "hf_home" / "hub"


def test_hf_hub_download_main_and_old_commit(hub, tiny):
    sha1, sha2 = tiny
    assert sha1 != sha2 and len(sha2) == 40 and int(sha2, 16) >= 0

    path = hf_hub_download("acme/tiny", "config.json")
    assert _read(path) == V2["config.json"]
    assert sha2 in Path(path).parts  # cached under the snapshot of the resolved commit

    old = hf_hub_download("acme/tiny", "config.json", revision=sha1)
    assert _read(old) == V1["config.json"]
    assert sha1 in Path(old).parts

    nested = hf_hub_download("acme/tiny", "weights/model.bin", revision=sha1)
    assert _read(nested) == V1["weights/model.bin"]

    # the traffic really went over HTTP to this server, HEAD then GET on /resolve
    assert ("HEAD", "/acme/tiny/resolve/main/config.json") in hub.requests
    assert ("GET", f"/acme/tiny/resolve/{sha1}/config.json") in hub.requests


def test_tag_revision_and_on_disk_repo(hub, tiny, tmp_path):
    sha1, _ = tiny
    assert hub.add_tag("acme/tiny", "v1.0", sha1) == sha1
    assert _read(hf_hub_download("acme/tiny", "config.json", revision="v1.0")) == V1["config.json"]

    # a repo laid out on disk as root/<org>/<name>/<revision>/<files> is served as is
    disk = tmp_path / "hub" / "acme" / "on-disk" / "main" / "sub"
    disk.mkdir(parents=True)
    (disk / "a.txt").write_bytes(b"from disk")
    assert _read(hf_hub_download("acme/on-disk", "sub/a.txt")) == b"from disk"
    # add_repo mirrors the new branch head back to disk
    assert (tmp_path / "hub" / "acme" / "tiny" / "main" / "README.md").read_bytes() == V2["README.md"]


def test_resolve_headers(hub, tiny):
    import httpx2

    _, sha2 = tiny
    r = httpx2.head(f"{hub.url}/acme/tiny/resolve/main/config.json")
    assert r.status_code == 200
    assert r.headers["X-Repo-Commit"] == sha2
    assert r.headers["ETag"] == f'"{git_blob_oid(V2["config.json"])}"'
    assert int(r.headers["Content-Length"]) == len(V2["config.json"])
    assert not any(h.lower().startswith("x-xet") for h in r.headers)  # plain HTTP download, no Xet
    r = httpx2.get(f"{hub.url}/acme/tiny/resolve/main/config.json", headers={"Range": "bytes=2-"})
    assert r.status_code == 206 and r.content == V2["config.json"][2:]
    r = httpx2.head(f"{hub.url}/acme/tiny/resolve/main/nope.txt")
    assert (r.status_code, r.headers["X-Error-Code"], r.headers["X-Repo-Commit"]) == (404, "EntryNotFound", sha2)


def test_snapshot_download_gets_all_files(hub, tiny):
    sha1, sha2 = tiny
    folder = Path(snapshot_download("acme/tiny"))
    assert folder.name == sha2
    got = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert got == V2

    old = Path(snapshot_download("acme/tiny", revision=sha1))
    got = {p.relative_to(old).as_posix(): p.read_bytes() for p in old.rglob("*") if p.is_file()}
    assert got == V1


def test_second_download_is_served_from_cache(hub, tiny, monkeypatch):
    sha1, sha2 = tiny
    before = len(hub.requests)
    path = hf_hub_download("acme/tiny", "config.json")
    folder = snapshot_download("acme/tiny")
    assert _new_requests(hub, before), "first downloads must hit the server"

    # a pinned commit that is already cached is answered without any request, even online
    count = len(hub.requests)
    assert hf_hub_download("acme/tiny", "config.json", revision=sha2) == path
    assert snapshot_download("acme/tiny", revision=sha2) == folder
    assert _new_requests(hub, count) == []

    # local_files_only=True
    assert hf_hub_download("acme/tiny", "config.json", local_files_only=True) == path
    assert snapshot_download("acme/tiny", local_files_only=True) == folder

    # HF_HUB_OFFLINE=1
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert _read(hf_hub_download("acme/tiny", "config.json")) == V2["config.json"]
    assert snapshot_download("acme/tiny") == folder
    assert _new_requests(hub, count) == []
    # ...and offline really is offline: an uncached commit cannot be fetched
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download("acme/tiny", "config.json", revision=sha1)
    assert _new_requests(hub, count) == []


def test_model_info(hub, tiny):
    sha1, sha2 = tiny
    api = HfApi(endpoint=hub.url)
    info = api.model_info("acme/tiny")
    assert (info.id, info.sha) == ("acme/tiny", sha2)
    assert sorted(s.rfilename for s in info.siblings) == sorted(V2)
    old = api.model_info("acme/tiny", revision=sha1, files_metadata=True)
    assert old.sha == sha1
    assert {s.rfilename: s.size for s in old.siblings} == {k: len(v) for k, v in V1.items()}
    assert [c.commit_id for c in api.list_repo_commits("acme/tiny")] == [sha2, sha1]
    assert {f.path for f in api.list_repo_tree("acme/tiny", recursive=True)} == set(V2) | {"weights"}


def test_create_repo_and_upload_folder(hub, tmp_path):
    api = HfApi(endpoint=hub.url)
    url = api.create_repo("acme/uploaded")
    assert url.repo_id == "acme/uploaded"
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_repo("acme/uploaded")
    assert exc.value.response.status_code == 409
    assert api.create_repo("acme/uploaded", exist_ok=True).repo_id == "acme/uploaded"

    folder = tmp_path / "to_upload"
    (folder / "nested").mkdir(parents=True)
    (folder / "model.txt").write_bytes(b"model v1")
    (folder / "nested" / "extra.bin").write_bytes(b"\x01\x02\x03")
    first = api.upload_folder(repo_id="acme/uploaded", folder_path=folder, commit_message="upload v1")
    assert first.oid == hub.resolve("acme/uploaded") and len(first.oid) == 40
    assert first.commit_url == f"{hub.url}/acme/uploaded/commit/{first.oid}"
    assert ("POST", "/api/models/acme/uploaded/commit/main") in hub.requests

    expected = {"model.txt": b"model v1", "nested/extra.bin": b"\x01\x02\x03"}
    assert hub.read_files("acme/uploaded") == expected
    snap = Path(snapshot_download("acme/uploaded", revision=first.oid))
    assert {p.relative_to(snap).as_posix(): p.read_bytes() for p in snap.rglob("*") if p.is_file()} == expected

    second = api.create_commit(
        repo_id="acme/uploaded",
        operations=[
            CommitOperationAdd("model.txt", b"model v2"),
            CommitOperationDelete("nested/extra.bin"),
        ],
        commit_message="upload v2",
        parent_commit=first.oid,
    )
    assert second.oid != first.oid
    assert _read(hf_hub_download("acme/uploaded", "model.txt")) == b"model v2"
    assert _read(hf_hub_download("acme/uploaded", "model.txt", revision=first.oid)) == b"model v1"
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("acme/uploaded", "nested/extra.bin")
    assert hub.history("acme/uploaded")[:2] == [second.oid, first.oid]


def test_missing_repo_file_and_revision_raise(hub, tiny):
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("acme/does-not-exist", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url).model_info("acme/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("acme/does-not-exist")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("acme/tiny", "missing.txt")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("acme/tiny", "config.json", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        HfApi(endpoint=hub.url).model_info("acme/tiny", revision="0" * 40)


def test_subprocess_uses_server_via_env(hub, tiny, tmp_path):
    import os
    import subprocess

    _, sha2 = tiny
    code = (
        "from huggingface_hub import hf_hub_download; import sys;"
        "sys.stdout.write(open(hf_hub_download('acme/tiny', 'config.json')).read())"
    )
    env = {**os.environ, **hub.env(tmp_path / "sub_home")}
    before = len(hub.requests)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == V2["config.json"].decode()
    assert ("GET", "/acme/tiny/resolve/main/config.json") in _new_requests(hub, before)
    assert (tmp_path / "sub_home" / "hub" / "models--acme--tiny" / "snapshots" / sha2).is_dir()
