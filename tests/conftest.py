"""Shared fixtures: real AN4 files, a tiny random model folder, W&B offline."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from helpers import REPO, TINY_SPEAKER, data_root, make_tiny_net, make_tiny_speaker  # noqa: F401

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)

@pytest.fixture(scope="session")
def an4_root() -> Path:
    root = data_root() / "an4"
    if not (root / "etc" / "an4_test.fileids").is_file():
        pytest.skip(f"AN4 not found at {root}; set ZOO_DATA to the folder holding an4/")
    return root


@pytest.fixture(scope="session")
def an4_wavs(an4_root) -> list[Path]:
    """Five real AN4 test utterances (sorted, deterministic)."""
    ids = (an4_root / "etc" / "an4_test.fileids").read_text().split()[:5]
    return [an4_root / "wav" / f"{i}.wav" for i in ids]


@pytest.fixture
def tiny_net():
    return make_tiny_net()


@pytest.fixture
def tiny_folder(tmp_path, tiny_net) -> Path:
    """A complete model folder of a tiny random transducer (config.json + safetensors + card)."""
    from zoo.hub.cards import render_card
    from zoo.models.base import model_config, save_pretrained

    cfg = model_config(tiny_net)
    return save_pretrained(tiny_net, tmp_path / "tiny-model", config=cfg, card=render_card("tiny-model", cfg))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A Hub-compatible server on 127.0.0.1 that the in-process huggingface_hub client talks to."""
    from hub_server import HubServer, hub_env

    with HubServer(tmp_path / "hub") as server:
        hub_env(monkeypatch, server, home=tmp_path / "hf_home")
        yield server
    assert not server.errors, server.errors[0]


# --- speaker verification -----------------------------------------------------------------------------
@pytest.fixture
def tiny_speaker_folder(tmp_path) -> Path:
    """A tiny random speaker model folder with a verification threshold in its config.json."""
    from zoo.hub.cards import render_card
    from zoo.models.base import model_config, save_pretrained

    net = make_tiny_speaker()
    cfg = model_config(net, verification={"threshold": 0.5, "calibrated_on": "test"})
    return save_pretrained(net, tmp_path / "tiny-speaker", config=cfg, card=render_card("tiny-speaker", cfg))
