"""zoo.from_pretrained / push_to_hub over real HTTP against the local Hub fixture server."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants

import zoo
from zoo.errors import ModelFolderError, ModelNotFoundError


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}




def _encode(net, seconds=0.5):
    torch.manual_seed(1)
    x = torch.randn(1, int(16000 * seconds)) * 0.1
    with torch.no_grad():
        return net.encode(x, torch.tensor([x.shape[1]]))[0]


def test_local_folder_roundtrip(tiny_folder, tiny_net):
    net = zoo.from_pretrained(str(tiny_folder))
    assert torch.allclose(_encode(net), _encode(tiny_net), atol=1e-6)
    assert set(p.name for p in tiny_folder.iterdir()) == {"config.json", "model.safetensors", "README.md"}


def test_no_pickle_in_model_folder(tiny_folder):
    for p in tiny_folder.iterdir():
        assert p.suffix in {".json", ".safetensors", ".md", ".model"}, p
        assert not p.read_bytes().startswith(b"\x80"), f"{p} looks like a pickle"


def test_revision_pinning_and_offline_cache(hub, tiny_folder, tiny_net, tmp_path, monkeypatch):
    from zoo.models.base import model_config, save_pretrained

    from helpers import make_tiny_net

    sha1 = hub.add_repo("acme/tiny-asr", _files(tiny_folder))
    other = make_tiny_net(seed=7)
    f2 = save_pretrained(other, tmp_path / "v2", config=model_config(other), card="# v2\n")
    sha2 = hub.add_repo("acme/tiny-asr", _files(f2))
    assert sha1 != sha2

    old = zoo.from_pretrained("acme/tiny-asr", revision=sha1)
    new = zoo.from_pretrained("acme/tiny-asr")
    assert torch.allclose(_encode(old), _encode(tiny_net), atol=1e-6)
    assert torch.allclose(_encode(new), _encode(other), atol=1e-6)
    assert not torch.allclose(_encode(old), _encode(new), atol=1e-3)

    n = len(hub.requests)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    again = zoo.from_pretrained("acme/tiny-asr", revision=sha1)
    assert len(hub.requests) == n, "offline load hit the network"
    assert torch.allclose(_encode(again), _encode(tiny_net), atol=1e-6)


def test_offline_without_cache_is_a_clear_error(hub, tiny_folder, monkeypatch):
    hub.add_repo("acme/never-downloaded", _files(tiny_folder))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError, match="not in the local cache"):
        zoo.from_pretrained("acme/never-downloaded")
    assert hub.requests == []


def test_missing_repo_and_revision(hub, tiny_folder):
    with pytest.raises(ModelNotFoundError, match="not found"):
        zoo.from_pretrained("acme/nope")
    hub.add_repo("acme/tiny-asr", _files(tiny_folder))
    with pytest.raises(ModelNotFoundError, match="revision"):
        zoo.from_pretrained("acme/tiny-asr", revision="v9")


def test_bundled_name_makes_no_network_call(hub):
    from zoo.hub.registry import MODELS, bundled_folder

    name = next(iter(MODELS))
    if not (bundled_folder(name) / "config.json").is_file():
        pytest.skip(f"{name} not trained yet")
    zoo.from_pretrained(name)
    assert hub.requests == []


def test_push_then_download(hub, tiny_folder, tiny_net):
    url = zoo.push_to_hub(tiny_folder, "acme/pushed", endpoint=hub.url)
    assert "acme/pushed" in url
    files = hub.read_files("acme/pushed")
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
    assert files["model.safetensors"] == (tiny_folder / "model.safetensors").read_bytes()
    net = zoo.from_pretrained("acme/pushed")
    assert torch.allclose(_encode(net), _encode(tiny_net), atol=1e-6)


def test_push_refuses_folder_without_card(hub, tiny_folder):
    (tiny_folder / "README.md").unlink()
    with pytest.raises(ModelFolderError, match="README"):
        zoo.push_to_hub(tiny_folder, "acme/nocard", endpoint=hub.url)
    assert "acme/nocard" not in str(hub.requests)


def test_cli_push_over_http(hub, tiny_folder, tmp_path):
    env = {**__import__("os").environ, **hub.env(tmp_path / "hf_cli")}
    r = subprocess.run([sys.executable, "-m", "zoo", "push", str(tiny_folder), "acme/cli-pushed"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "acme/cli-pushed" in r.stdout
    assert "config.json" in hub.read_files("acme/cli-pushed")


def test_strict_loading_names_keys(tiny_folder):
    cfg = json.loads((tiny_folder / "config.json").read_text())
    cfg["model"]["encoder"]["hidden"] = 48
    (tiny_folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="shape mismatch for encoder"):
        zoo.from_pretrained(str(tiny_folder))


def test_unknown_architecture_is_refused(tiny_folder):
    cfg = json.loads((tiny_folder / "config.json").read_text())
    cfg["architecture"] = "os.system"
    (tiny_folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelNotFoundError, match="unknown architecture"):
        zoo.from_pretrained(str(tiny_folder))


def test_resolution_rules(tmp_path):
    with pytest.raises(ModelNotFoundError, match="folder not found"):
        zoo.from_pretrained("./does-not-exist")
    with pytest.raises(ModelNotFoundError, match="did you mean lstm-rnnt-an4"):
        zoo.from_pretrained("lstm-rnt-an4")
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        zoo.from_pretrained(str(f))


def test_superseded_bundled_name_loads_with_one_notice(monkeypatch, capsys):
    from zoo.hub import folder as hub
    from zoo.hub import registry

    entry = dict(registry.MODELS["lstm-rnnt-an4"], superseded_by="lstm-rnnt-new", superseded_why="recipe v2")
    monkeypatch.setitem(registry.MODELS, "lstm-rnnt-an4", entry)
    monkeypatch.setattr(hub, "_NOTICED", set())
    folder = hub.resolve("lstm-rnnt-an4")
    hub.resolve("lstm-rnnt-an4")
    err = capsys.readouterr().err.strip().splitlines()
    assert folder.name == "lstm-rnnt-an4"
    assert err == ["notice: lstm-rnnt-an4 is superseded by lstm-rnnt-new (recipe v2); it still loads, unchanged"]
