"""FbankFeaturizer: chunked streaming == whole utterance, causality, frame counts, padding, stats."""
from __future__ import annotations

import random

import pytest
import torch

from zoo.audio import load_audio
from zoo.nets import FbankFeaturizer


def partitions(n: int, seed: int):
    """Chunk-size lists covering ``n`` samples: 1-sample pushes across the first frames, then random
    sizes; odd fixed sizes; a single whole push."""
    rng = random.Random(seed)
    ones_then_random = [1] * 1200
    while sum(ones_then_random) < n:
        ones_then_random.append(rng.choice([1, 2, 3, rng.randint(1, 400), rng.randint(1, 5000)]))
    yield "ones+random", ones_then_random
    for odd in (159, 401, 3331):
        yield f"fixed{odd}", [odd] * (n // odd + 1)
    yield "whole", [n]


def stream_feats(fb: FbankFeaturizer, wav: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    pending = wav.new_zeros(1, 0)
    out, i = [], 0
    for s in sizes:
        if i >= wav.numel():
            break
        f, pending = fb.stream_step(wav[None, i:i + s], pending)
        assert f.shape[0] == 1 and f.shape[2] == fb.dim
        out.append(f)
        i += s
    assert pending.shape[1] < fb.win  # everything that could make a frame was consumed
    return torch.cat(out, dim=1)


@pytest.fixture(scope="module")
def wav(an4_wavs):
    return load_audio(an4_wavs[3], 16000)  # the shortest of the five (0.8 s)


@pytest.fixture
def fb():
    torch.manual_seed(0)
    f = FbankFeaturizer(16000, n_mels=40)
    f.set_stats(torch.randn(40) - 5, torch.rand(40) * 3 + 0.5)
    return f.eval()


@pytest.mark.parametrize("seed", [0, 1])
def test_stream_step_equals_full(fb, wav, seed):
    full, flen = fb(wav[None])
    assert full.shape[1] == int(flen) > 0
    for name, sizes in partitions(wav.numel(), seed):
        got = stream_feats(fb, wav, sizes)
        assert got.shape == full.shape, name
        assert (got - full).abs().max() <= 1e-4, name


def test_stream_step_long_file(fb, an4_wavs):
    w = load_audio(an4_wavs[0], 16000)
    full, _ = fb(w[None])
    rng = random.Random(7)
    sizes = [rng.randint(1, 7000) for _ in range(w.numel())]
    got = stream_feats(fb, w, sizes)
    assert got.shape == full.shape and (got - full).abs().max() <= 1e-4


def test_features_are_causal(fb, wav):
    """Frames of a prefix equal the first frames of the whole utterance (no look-ahead, no centring)."""
    full, _ = fb(wav[None])
    for n in (400, 401, 559, 560, 4000, 7777):
        pre, plen = fb(wav[None, :n])
        assert pre.shape[1] == int(plen) == int(fb.num_frames(torch.tensor(n)))
        assert (pre - full[:, : pre.shape[1]]).abs().max() <= 1e-4


@pytest.mark.parametrize("n", [0, 1, 399, 400, 401, 559, 560, 561, 16000])
def test_num_frames_matches_output(fb, n):
    x = torch.randn(1, n)
    feats, flen = fb(x)
    assert feats.shape == (1, int(flen), 40)
    assert int(flen) == (0 if n < 400 else (n - 400) // 160 + 1)


def test_padding_does_not_change_frames(fb, an4_wavs):
    a = load_audio(an4_wavs[3], 16000)
    b = load_audio(an4_wavs[2], 16000)
    batch = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)
    feats, flen = fb(batch, torch.tensor([a.numel(), b.numel()]))
    for i, w in enumerate((a, b)):
        one, olen = fb(w[None])
        assert int(flen[i]) == int(olen)
        assert (feats[i, : int(olen)] - one[0]).abs().max() <= 1e-4


def test_normalisation_uses_stats(fb, wav):
    raw = fb.raw(wav[None])
    feats, _ = fb(wav[None])
    assert torch.allclose(feats, (raw - fb.mean) / fb.std, atol=1e-5)
    fb.set_stats(torch.zeros(40), torch.zeros(40))  # std is floored, never divides by 0
    assert torch.isfinite(fb(wav[None])[0]).all()


def test_config_rebuilds_same_featurizer(fb, wav):
    other = FbankFeaturizer(**fb.config())
    other.load_state_dict(fb.state_dict())
    assert other.win == fb.win and other.hop == fb.hop
    assert torch.equal(other(wav[None])[0], fb(wav[None])[0])


def test_8khz_featurizer_streams_too(wav):
    fb8 = FbankFeaturizer(8000, n_mels=23)
    assert (fb8.win, fb8.hop) == (200, 80)
    w = wav[::2].contiguous()
    full, _ = fb8(w[None])
    got = stream_feats(fb8, w, [37] * (w.numel() // 37 + 1))
    assert got.shape == full.shape and (got - full).abs().max() <= 1e-4
