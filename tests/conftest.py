"""Shared fixtures: real AN4 files, a tiny random model folder, W&B offline."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)

TINY_MODEL = {"encoder": {"name": "lstm", "stack": 4, "hidden": 32, "layers": 2, "dropout": 0.0},
              "predictor": {"embed_dim": 16, "hidden": 32, "layers": 1, "dropout": 0.0},
              "joiner": {"joint_dim": 32}, "featurizer": {"sample_rate": 16000, "n_mels": 40}}


def _data_root() -> Path:
    return Path(os.environ.get("ZOO_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def an4_root() -> Path:
    root = _data_root() / "an4"
    if not (root / "etc" / "an4_test.fileids").is_file():
        pytest.skip(f"AN4 not found at {root}; set ZOO_DATA to the folder holding an4/")
    return root


@pytest.fixture(scope="session")
def an4_wavs(an4_root) -> list[Path]:
    """Five real AN4 test utterances (sorted, deterministic)."""
    ids = (an4_root / "etc" / "an4_test.fileids").read_text().split()[:5]
    return [an4_root / "wav" / f"{i}.wav" for i in ids]


def make_tiny_net(seed: int = 0):
    from zoo.models.transducer import TransducerASR
    from zoo.text import CharTokenizer

    torch.manual_seed(seed)
    net = TransducerASR(**TINY_MODEL, tokenizer=CharTokenizer())
    # random but non-trivial normalisation stats so they are exercised
    net.featurizer.set_stats(torch.full((40,), -5.0), torch.full((40,), 3.0))
    return net.eval()


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


def stream_encoder(enc, feats: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Run ``enc.stream_step`` over consecutive pieces of ``feats`` (B, T, F) of the given sizes (multiples of
    ``enc.subsampling``; the last is cut to what is left), then ``stream_flush``; returns all outputs."""
    k, t = enc.subsampling, feats.shape[1]
    state, outs, i, sizes = enc.init_state(feats.shape[0]), [], 0, list(sizes)
    while i + k <= t:
        n = min(sizes.pop(0), (t - i) // k * k)
        y, state = enc.stream_step(feats[:, i:i + n], state)
        outs.append(y)
        i += n
    tail, state = enc.stream_flush(state)
    if tail is not None:
        outs.append(tail)
    return torch.cat(outs, 1)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A Hub-compatible server on 127.0.0.1 that the in-process huggingface_hub client talks to."""
    from hub_server import HubServer, hub_env

    with HubServer(tmp_path / "hub") as server:
        hub_env(monkeypatch, server, home=tmp_path / "hf_home")
        yield server
    assert not server.errors, server.errors[0]


def randomize_zero_init(module: torch.nn.Module, std: float = 0.1, seed: int = 0) -> torch.nn.Module:
    """Fill weight matrices that start at exactly zero (e.g. ConvRNN-T's zero-initialised fusion) with small
    random values, so tests exercise every branch of a freshly built net."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return module


# --- speaker verification -----------------------------------------------------------------------------
TINY_SPEAKER = {"featurizer": {"sample_rate": 16000, "n_mels": 40},
                "encoder": {"channels": 32, "embed_dim": 24, "scale": 4, "se_channels": 8, "attention_channels": 8}}


def make_tiny_speaker(seed: int = 0):
    from zoo.models.speaker import SpeakerEmbedder

    torch.manual_seed(seed)
    net = SpeakerEmbedder(**TINY_SPEAKER)
    net.featurizer.set_stats(torch.full((40,), -5.0), torch.full((40,), 3.0))
    return net.eval()


@pytest.fixture
def tiny_speaker_folder(tmp_path) -> Path:
    """A tiny random speaker model folder with a verification threshold in its config.json."""
    from zoo.hub.cards import render_card
    from zoo.models.base import model_config, save_pretrained

    net = make_tiny_speaker()
    cfg = model_config(net, verification={"threshold": 0.5, "calibrated_on": "test"})
    return save_pretrained(net, tmp_path / "tiny-speaker", config=cfg, card=render_card("tiny-speaker", cfg))
