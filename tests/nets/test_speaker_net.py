"""ECAPA-TDNN shapes, masking and normalisation; SpeakerEmbedder embed/score/verify; model folders
(save_pretrained / from_pretrained round trip) for tokenizer-free nets."""
from __future__ import annotations

import json

import pytest
import torch

import zoo
from zoo.errors import ZooError
from zoo.nets.ecapa import ECAPATDNN

from helpers import TINY_SPEAKER, make_tiny_speaker


def test_ecapa_shapes_and_size():
    net = ECAPATDNN(input_dim=40, channels=32, embed_dim=24, scale=4, se_channels=8, attention_channels=8).eval()
    out = net(torch.randn(3, 57, 40), torch.tensor([57, 30, 5]))
    assert out.shape == (3, 24) and torch.isfinite(out).all()
    default = ECAPATDNN()  # the recipe size: CPU-trainable
    assert 0.5e6 <= sum(p.numel() for p in default.parameters()) <= 1.5e6
    with pytest.raises(ValueError, match="divisible"):
        ECAPATDNN(channels=30, scale=8)


def test_padding_does_not_change_embeddings(an4_wavs):
    net = make_tiny_speaker()
    e_batch = net.embed([str(p) for p in an4_wavs], batch_size=5)
    e_single = torch.cat([net.embed(str(p)) for p in an4_wavs])
    assert torch.allclose(e_batch, e_single, atol=1e-5)


def test_embed_normalised_and_score(an4_wavs):
    net = make_tiny_speaker()
    e = net.embed([str(p) for p in an4_wavs[:3]])
    assert e.shape == (3, 24)
    assert torch.allclose(e.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert net.score(e[0], e[0]) == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(net.score(e, e.flip(0)), (e * e.flip(0)).sum(-1), atol=1e-6)
    # waveforms at another rate are resampled, and need sample_rate=
    import soundfile as sf

    x, sr = sf.read(str(an4_wavs[0]), dtype="float32")
    import torchaudio.functional as AF

    x8 = AF.resample(torch.from_numpy(x), sr, 8000)
    assert net.embed(x8, sample_rate=8000).shape == (1, 24)
    with pytest.raises(ZooError, match="sample_rate"):
        net.embed(x8)
    with pytest.raises(ZooError, match="too short"):
        net.embed(torch.zeros(100) + 0.1, sample_rate=16000)


def test_verify_needs_a_threshold(an4_wavs):
    net = make_tiny_speaker()
    with pytest.raises(ZooError, match="calibrate"):
        net.verify(str(an4_wavs[0]), str(an4_wavs[1]))
    s, same = net.verify(str(an4_wavs[0]), str(an4_wavs[0]), threshold=0.99)
    assert s == pytest.approx(1.0, abs=1e-5) and same is True
    s, same = net.verify(str(an4_wavs[0]), str(an4_wavs[1]), threshold=1.01)
    assert same is False


def test_round_trip_through_from_pretrained(tiny_speaker_folder, an4_wavs):
    cfg = json.loads((tiny_speaker_folder / "config.json").read_text())
    assert cfg["architecture"] == "ecapa" and cfg["task"] == "speaker" and "tokenizer" not in cfg
    assert cfg["model"]["encoder"]["channels"] == TINY_SPEAKER["encoder"]["channels"]
    assert sorted(p.name for p in tiny_speaker_folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    m = zoo.from_pretrained(tiny_speaker_folder)
    ref = make_tiny_speaker()
    assert torch.equal(m.featurizer.mean, ref.featurizer.mean)
    paths = [str(p) for p in an4_wavs[:2]]
    assert torch.allclose(m.embed(paths), ref.embed(paths), atol=1e-6)
    assert m.threshold == 0.5
    s, same = m.verify(*paths)
    assert same == (s >= 0.5)
    assert "speaker-verification" in (tiny_speaker_folder / "README.md").read_text()
