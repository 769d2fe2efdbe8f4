"""Shared test helpers (tiny random models, streaming drivers, synthetic fairness data). Fixtures live in
conftest.py; test modules import these with ``from helpers import ...``."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from zoo.models.decoding import greedy_search
from zoo.models.speaker import SpeakerEmbedder
from zoo.models.sts import STSASR, sts_tokenizer
from zoo.models.transducer import TransducerASR
from zoo.text import CharTokenizer

REPO = Path(__file__).resolve().parent.parent


TINY_MODEL = {"encoder": {"name": "lstm", "stack": 4, "hidden": 32, "layers": 2, "dropout": 0.0},
              "predictor": {"embed_dim": 16, "hidden": 32, "layers": 1, "dropout": 0.0},
              "joiner": {"joint_dim": 32}, "featurizer": {"sample_rate": 16000, "n_mels": 40}}


def load_script(rel: str):
    """A repository script or benchmark (not a package module) imported by path, e.g. ``benchmarks/sv.py``."""
    import importlib.util

    path = REPO / rel
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def data_root() -> Path:
    return Path(os.environ.get("ZOO_DATA") or REPO.parent / "shared" / "data")


def make_tiny_net(seed: int = 0):
    torch.manual_seed(seed)
    net = TransducerASR(**TINY_MODEL, tokenizer=CharTokenizer())
    # random but non-trivial normalisation stats so they are exercised
    net.featurizer.set_stats(torch.full((40,), -5.0), torch.full((40,), 3.0))
    return net.eval()


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


def randomize_zero_init(module: torch.nn.Module, std: float = 0.1, seed: int = 0) -> torch.nn.Module:
    """Fill weight matrices that start at exactly zero (e.g. ConvRNN-T's zero-initialised fusion) with small
    random values, so tests exercise every branch of a freshly built net."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return module


TINY_SPEAKER = {"featurizer": {"sample_rate": 16000, "n_mels": 40},
                "encoder": {"channels": 32, "embed_dim": 24, "scale": 4, "se_channels": 8, "attention_channels": 8}}


def make_tiny_speaker(seed: int = 0):
    torch.manual_seed(seed)
    net = SpeakerEmbedder(**TINY_SPEAKER)
    net.featurizer.set_stats(torch.full((40,), -5.0), torch.full((40,), 3.0))
    return net.eval()


# tiny configs of every registered encoder (a new encoder must be added here: see the guard test)
TINY_ENCODERS = {
    "lstm": TINY_MODEL["encoder"],
    "convrnnt": {"name": "convrnnt", "stack": 4, "local_channels": [4, 8], "local_dim": 16, "global_channels": 16,
                 "global_blocks": 2, "fused_dim": 24, "hidden": 32, "layers": 1, "dropout": 0.0},
    "emformer": {"name": "emformer", "stack": 4, "d_model": 32, "num_heads": 2, "ffn_dim": 64, "layers": 2,
                 "segment_length": 4, "left_context_length": 8, "dropout": 0.0},
    "cca_transformer": {"name": "cca_transformer", "stack": 4, "d_model": 32, "heads": 2, "ffn_dim": 64,
                        "layers": 2, "left_context": 8, "dropout": 0.0},
}


def lively_net(wav: torch.Tensor, seed: int = 0, encoder: str = "lstm"):
    """The tiny random model, made to emit varied tokens between blanks. A random joiner is driven by its
    biases, emitting either nothing or ``max_symbols`` copies of one letter per frame, which makes
    comparisons weak. So: standardise the encoder and predictor inputs of the joiner (on ``wav``), then
    bisect the blank bias until ``wav`` yields about one token per two frames."""
    if encoder == "lstm":
        net = make_tiny_net(seed)
    else:
        torch.manual_seed(seed)
        net = randomize_zero_init(TransducerASR(**{**TINY_MODEL, "encoder": TINY_ENCODERS[encoder]},
                                                tokenizer=CharTokenizer()).eval())
        net.featurizer.set_stats(torch.full((40,), -5.0), torch.full((40,), 3.0))
    with torch.no_grad():
        enc, elen = net.encode(wav[None], torch.tensor([wav.numel()]))
        # let the audio drive the joiner: standardise each encoder dim over time inside enc_proj
        mu, sd = enc[0].mean(0), enc[0].std(0).clamp_min(1e-6)
        w = net.joiner.enc_proj.weight / sd
        net.joiner.enc_proj.bias.sub_(w @ mu)
        net.joiner.enc_proj.weight.copy_(w)
        # ... and the label history: standardise the predictor output over the possible last tokens
        v = net.tokenizer.vocab_size
        out, _ = net.predictor.step(torch.arange(v), net.predictor.init_state(v))
        mu, sd = out.mean(0), out.std(0).clamp_min(1e-6)
        w = net.joiner.pred_proj.weight / sd
        net.joiner.pred_proj.bias.sub_(w @ mu)
        net.joiner.pred_proj.weight.copy_(w)
        base, target = net.joiner.out.bias[0].item(), int(elen[0]) // 2
        lo, hi, best = -60.0, 60.0, (float("inf"), 0.0)
        for _ in range(20):
            mid = (lo + hi) / 2
            net.joiner.out.bias[0] = base + mid
            n = len(greedy_search(net, enc, elen).hyps[0])
            if n:
                best = min(best, (abs(n - target), mid))
            lo, hi = (mid, hi) if n > target else (lo, mid)
        net.joiner.out.bias[0] = base + best[1]
        # decode the letter with the most separate runs as a space, so texts have words (and collapsible
        # double spaces)
        hyp = greedy_search(net, enc, elen).hyps[0]
        v = net.tokenizer.vocab
        starts = [c for i, c in enumerate(hyp) if i == 0 or hyp[i - 1] != c]
        top = max(set(v) - {" "}, key=lambda c: starts.count(v.index(c) + 1))
        net.tokenizer = CharTokenizer(v.translate(str.maketrans({top: " ", " ": top})))
    return net


def recs(spec):
    """[(speaker, errors, words, extra dict)] -> records."""
    return [{"id": f"u{i}", "audio": "x.wav", "speaker": s, "errors": e, "words": w, "ref": "", "hyp": "", **x}
            for i, (s, e, w, x) in enumerate(spec)]


def geo_world(seed=0, n=240, p_in=0.40, p_out=0.10):
    """Speakers uniform over a US-sized box; those with lat > 40 and lon < -100 (~23%) have 4x the error rate."""
    rng = np.random.default_rng(seed)
    spec, planted = [], set()
    for i in range(n):
        lat, lon = rng.uniform(25, 50), rng.uniform(-125, -65)
        hot = lat > 40 and lon < -100
        if hot:
            planted.add(f"s{i}")
        for _ in range(5):
            spec.append((f"s{i}", int(rng.binomial(10, p_in if hot else p_out)), 10, {"lat": lat, "lon": lon}))
    return recs(spec), planted


# --- two-speaker STS ----------------------------------------------------------------------------------
TINY_STS = {"encoder": {"mixture": {"name": "lstm", "stack": 4, "hidden": 32, "layers": 1, "dropout": 0.0},
                        "recognition": {"name": "lstm", "stack": 1, "hidden": 24, "layers": 1, "dropout": 0.0}},
            "predictor": {"embed_dim": 16, "hidden": 32, "layers": 1, "dropout": 0.0},
            "joiner": {"joint_dim": 32}, "featurizer": {"sample_rate": 16000, "n_mels": 40}}


def make_sts(turn_tokens=True, seed=0) -> STSASR:
    torch.manual_seed(seed)
    net = STSASR(**TINY_STS, tokenizer=sts_tokenizer(turn_tokens), turn_tokens=turn_tokens)
    net.featurizer.set_stats(torch.full((40,), -5.0), torch.full((40,), 3.0))
    return net.eval()


def biased_sts(net):
    """Make a random net emit turn tokens and letters now and then (so parsing is exercised)."""
    with torch.no_grad():
        net.joiner.out.bias.zero_()
        net.joiner.out.bias[0] = 0.25
    return net
