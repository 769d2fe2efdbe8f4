"""CCA Transformer (issue 4): FLOPs counted by ``infer`` from the gate decisions, the forced-all-on reference,
the sliding-window FLOP formula, streaming with the same gate decisions, the issue-4 configs."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import yaml

from zoo.nets import build_encoder
from zoo.nets.cca_transformer import CCATransformerEncoder

REPO = Path(__file__).resolve().parents[2]
TINY = {"name": "cca_transformer", "stack": 4, "d_model": 32, "heads": 2, "ffn_dim": 48, "layers": 3,
        "left_context": 8, "dropout": 0.0}


def tiny_encoder(seed: int = 0, **kw) -> CCATransformerEncoder:
    torch.manual_seed(seed)
    enc = build_encoder({**TINY, **kw}, 40).eval()
    with torch.no_grad():  # arbitrators centred: about half the gates of each layer on
        for layer in enc.layers:
            layer.arbitrator.bias.zero_()
            layer.arbitrator.weight.normal_(0, 1.0)
    return enc


def inputs(t: int = 30, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, t, 4 * 40, generator=g)


def flops_from_masks(gates: torch.Tensor, left: int, d: int, ffn: int, in_dim: int, gated: bool) -> int:
    """Independent count from the gate masks (T, L, 2): per layer, an on MHA frame t costs its four projections
    and scores + weighted sum over the MHA-on frames j with t - left <= j <= t; an on FFN frame its two matmuls."""
    t_len, n_layers, _ = gates.shape
    total = 2 * t_len * in_dim * d
    for layer in range(n_layers):
        mha = [bool(gates[t, layer, 0]) for t in range(t_len)]
        ffn_on = [bool(gates[t, layer, 1]) for t in range(t_len)]
        total += 4 * d * t_len if gated else 0
        for t in range(t_len):
            if mha[t]:
                keys = sum(mha[j] for j in range(max(0, t - left), t + 1))
                total += 8 * d * d + 4 * d * keys
            if ffn_on[t]:
                total += 4 * d * ffn
    return total


def chunked_infer(enc, x, sizes, **kw):
    state, ys, gates, flops, i = enc.init_state(1), [], [], 0, 0
    while i < x.shape[1]:
        n = sizes.pop(0)
        y, state, f = enc.infer(x[:, i:i + n], state, **kw)
        ys.append(y)
        gates.append(enc.last_gates)
        flops += f
        i += n
    return torch.cat(ys, 1), torch.cat(gates, 1), flops


def test_counted_flops_equal_an_independent_count_from_the_gate_masks():
    enc = tiny_encoder()
    x = inputs(40)
    y, _, flops = enc.infer(x, enc.init_state(1))
    g = enc.last_gates[0]
    frac = float(g.mean())
    assert 0.25 < frac < 0.75, frac  # mixed decisions: the count depends on which frames are on
    assert not torch.equal(g[:, :, 0], g[:, :, 1])  # MHA and FFN decide separately
    indep = flops_from_masks(g, enc.left, 32, 48, 160, gated=True)
    assert flops == indep
    # streamed in random chunks: same decisions, same total (cached keys of earlier chunks counted the same)
    rng = random.Random(0)
    ys, gs, f2 = chunked_infer(enc, x, [rng.randint(1, 7) for _ in range(40)])
    assert torch.equal(gs[0], g) and f2 == indep
    assert (ys - y).abs().max() <= 1e-4
    # and it is far below the dense count
    assert flops < 0.8 * enc.dense_flops(40)


def test_forced_all_on_is_the_dense_model_at_100_percent():
    enc = tiny_encoder()
    x = inputs(40)
    _, _, gated = enc.infer(x, enc.init_state(1))
    y_on, _, dense = enc.infer(x, enc.init_state(1), force_all_on=True, left=enc.left_context)
    assert bool((enc.last_gates == 1).all())
    assert dense == enc.dense_flops(40) == flops_from_masks(enc.last_gates[0], 8, 32, 48, 160, gated=False)
    assert gated < dense
    # the same weights in an all-on model (gated: false, as the transformer_rnnt_an4 config; from a CLI string)
    allon = build_encoder({**TINY, "gated": "false"}, 40).eval()
    assert allon.gated is False
    allon.load_state_dict(enc.state_dict())
    y_allon, _, f_allon = allon.infer(x, allon.init_state(1))
    assert f_allon == dense and f_allon / dense == 1.0
    assert (y_allon - y_on).abs().max() <= 1e-5
    assert (allon(x.view(1, -1, 40), torch.tensor([160]))[0] - y_on).abs().max() <= 1e-4  # forward agrees
    assert bool((allon.last_gates == 1).all())


def test_sliding_window_flops_follow_the_attention_span_formula():
    enc = tiny_encoder(window=3)
    assert enc.window == 3 and enc.left == 3 and not enc.gated
    x = inputs(40)
    y, _, flops = enc.infer(x, enc.init_state(1))
    d, ffn, L, t = 32, 48, 3, 40
    keys = sum(min(i + 1, 3 + 1) for i in range(t))  # 1 + 2 + 3 + 4 * 37
    assert keys == 6 + 4 * 37
    assert flops == enc.dense_flops(t) == 2 * t * 160 * d + L * (t * (8 * d * d + 4 * d * ffn) + 4 * d * keys)
    full = enc.dense_flops(t, left=enc.left_context)
    _, _, counted_full = enc.infer(x, enc.init_state(1), force_all_on=True, left=enc.left_context)
    assert counted_full == full > flops
    # the window really limits attention: the masked forward (window band) equals infer
    out, _ = enc(x.view(1, -1, 40), torch.tensor([160]))
    assert (out - y).abs().max() <= 1e-4
    y_full, _, _ = enc.infer(x, enc.init_state(1), left=enc.left_context)
    assert (y_full[:, 5:] - y[:, 5:]).abs().max() > 1e-3


def test_gated_model_streamed_equals_full_with_the_same_gate_decisions(an4_wavs):
    from zoo.audio import load_audio
    from zoo.models.transducer import TransducerASR
    from zoo.text import CharTokenizer

    torch.manual_seed(0)
    net = TransducerASR({**TINY, "left_context": 16}, {"embed_dim": 8, "hidden": 16}, {"joint_dim": 16},
                        {"n_mels": 40}, tokenizer=CharTokenizer()).eval()
    net.featurizer.set_stats(torch.full((40,), -5.0), torch.full((40,), 3.0))
    enc = net.encoder
    with torch.no_grad():
        for layer in enc.layers:
            layer.arbitrator.bias.zero_()
            layer.arbitrator.weight.normal_(0, 1.0)
    wav = load_audio(an4_wavs[0], 16000)
    with torch.no_grad():
        feats, flens = net.featurizer(wav[None], torch.tensor([wav.numel()]))
        t = int(flens[0]) // 4 * 4
        full, _ = enc(feats[:, :t], torch.tensor([t]))
        g_full = enc.last_gates.clone()
        assert 0.2 < float(g_full.mean()) < 0.8
        for seed in range(3):
            rng = random.Random(seed)
            state, outs, gates, i = enc.init_state(1), [], [], 0
            while i < t:
                n = min(4 * rng.randint(1, 10), t - i)
                y, state = enc.stream_step(feats[:, i:i + n], state)
                outs.append(y)
                gates.append(enc.last_gates)
                i += n
            assert torch.equal(torch.cat(gates, 1), g_full)
            assert (torch.cat(outs, 1) - full).abs().max() <= 1e-4


def test_build_encoder_parses_command_line_strings():
    enc = build_encoder({**TINY, "window": "8", "gated": "true", "dropout": "0.1", "layers": "2"}, 40)
    assert (enc.window, enc.gated, len(enc.layers)) == (8, False, 2)  # window > 0 switches the gates off
    assert enc.config()["window"] == 8 and enc.config()["dropout"] == 0.1
    for bad in ({"window": "8.5"}, {"gated": "maybe"}, {"layers": "two"}):
        with pytest.raises(ValueError):
            build_encoder({**TINY, **bad}, 40)


ISSUE4 = ["transformer_rnnt_an4", "cca_transformer_an4", "transformer_window_an4"]


def _task(name):
    from zoo.tasks import TransducerTask

    cfg = yaml.safe_load((REPO / f"configs/asr/{name}.yaml").read_text())
    init = {k: v for k, v in cfg["model"]["init_args"].items() if k not in ("optimizer", "scheduler")}
    return TransducerTask(**init), cfg


def test_issue4_configs_share_the_lstm_recipe_and_size():
    base_task, base = _task("lstm_rnnt_an4")
    n_base = sum(p.numel() for p in base_task.net.parameters())
    encs = {}
    for name in ISSUE4:
        task, cfg = _task(name)
        n = sum(p.numel() for p in task.net.parameters())
        assert abs(n / n_base - 1) <= 0.15, (name, n, n_base)
        enc = task.net.encoder
        assert isinstance(enc, CCATransformerEncoder)
        encs[name] = enc
        for key in ("predictor", "joiner", "featurizer", "tokenizer", "optimizer", "scheduler", "ctc_weight",
                    "spec_augment"):
            assert cfg["model"]["init_args"][key] == base["model"]["init_args"][key], (name, key)
        assert cfg["data"] == base["data"]
        assert cfg["trainer"]["max_steps"] == base["trainer"]["max_steps"]
        assert cfg["trainer"]["default_root_dir"] == f"exp/{name}"
    lam = lambda n: yaml.safe_load((REPO / f"configs/asr/{n}.yaml").read_text())["model"]["init_args"]["compute_weight"]  # noqa: E731
    base_enc, cca_enc = encs["transformer_rnnt_an4"], encs["cca_transformer_an4"]
    assert (base_enc.gated, base_enc.window, lam("transformer_rnnt_an4")) == (False, 0, 0)
    assert cca_enc.gated and cca_enc.window == 0 and lam("cca_transformer_an4") > 0
    assert encs["transformer_window_an4"].window > 0 and not encs["transformer_window_an4"].gated
    sizes = {k: {kk: v for kk, v in e.config().items() if kk not in ("gated", "window")} for k, e in encs.items()}
    assert len({str(s) for s in sizes.values()}) == 1  # one architecture, only gates / window differ


def test_cca_gates_on_a_sliding_window_encoder():
    """window_gates: the gates and the window together (issue 15's missing cell). The count follows the gate
    masks with the window's attention span, streaming keeps the decisions, and the default (no window_gates)
    still switches the gates off under a window."""
    assert not tiny_encoder(window=3).gated
    enc = tiny_encoder(window=3, window_gates=True)
    assert enc.gated and enc.left == 3 and enc.config()["window_gates"] is True
    assert "window_gates" not in tiny_encoder(window=3).config()  # older configs stay as they were
    x = inputs(40)
    y, _, flops = enc.infer(x, enc.init_state(1))
    g = enc.last_gates[0]
    assert 0.25 < float(g.mean()) < 0.75
    assert flops == flops_from_masks(g, 3, 32, 48, 160, gated=True)
    assert flops < enc.dense_flops(40) < enc.dense_flops(40, left=enc.left_context)
    out, _ = enc(x.view(1, -1, 40), torch.tensor([160]))  # eval forward: the skipping path
    assert (out - y).abs().max() <= 1e-4
    rng = random.Random(1)
    ys, gs, f2 = chunked_infer(enc, x, [rng.randint(1, 7) for _ in range(40)])
    assert torch.equal(gs[0], g) and f2 == flops and (ys - y).abs().max() <= 1e-4
    # the window still limits attention: a full-span run of the same weights differs
    y_full, _, _ = enc.infer(x, enc.init_state(1), left=enc.left_context)
    assert (y_full[:, 5:] - y[:, 5:]).abs().max() > 1e-3
