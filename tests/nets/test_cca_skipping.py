"""The CCA Transformer skips compute on every inference path (issue 15): forward hooks count the rows (frames)
fed to each layer's QKV / output projections and first FFN Linear; in eval mode they must equal the active
frames given by ``last_gates`` (padding excluded), for batch ``forward`` and for streaming ``stream_step``."""
from __future__ import annotations

import torch

from zoo.nets import build_encoder
from zoo.nets.cca_transformer import CCATransformerEncoder
from zoo.nets.encoder import stack_frames

TINY = {"name": "cca_transformer", "stack": 4, "d_model": 32, "heads": 2, "ffn_dim": 48, "layers": 3,
        "left_context": 8, "dropout": 0.0}
LENS = [160, 100, 132]  # input frames -> 40, 25, 33 output frames; the batch pads to 40


def half_gated(seed: int = 0) -> CCATransformerEncoder:
    """Arbitrators set by hand: zero bias, random weights -> about half of the frames off in each sub-block."""
    torch.manual_seed(seed)
    enc = build_encoder(TINY, 40).eval()
    with torch.no_grad():
        for layer in enc.layers:
            layer.arbitrator.bias.zero_()
            layer.arbitrator.weight.normal_(0, 1.0)
    return enc


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(len(LENS), max(LENS), 40, generator=g)
    return feats, torch.tensor(LENS)


class RowCounter:
    """Counts the rows fed to each layer's qkv, out and ff[0] (and the input projection)."""

    def __init__(self, enc: CCATransformerEncoder):
        self.rows = {}
        self.handles = [enc.inp[1].register_forward_pre_hook(self._hook("inp"))]
        for i, layer in enumerate(enc.layers):
            for name, mod in (("qkv", layer.qkv), ("out", layer.out), ("ffn", layer.ff[0])):
                self.handles.append(mod.register_forward_pre_hook(self._hook((i, name))))

    def _hook(self, key):
        def hook(mod, args):
            x = args[0]
            self.rows[key] = self.rows.get(key, 0) + x.numel() // x.shape[-1]
        return hook

    def close(self):
        for h in self.handles:
            h.remove()


def valid_mask(lengths_out: torch.Tensor, t: int) -> torch.Tensor:
    return torch.arange(t)[None, :] < lengths_out[:, None]


def check_rows(rows: dict, gates: torch.Tensor, n_frames: int):
    """gates (N, L, 2) of the valid frames: each sub-block was fed exactly its active rows, fewer than all."""
    for i in range(gates.shape[1]):
        mha, ffn = int(gates[:, i, 0].sum()), int(gates[:, i, 1].sum())
        assert rows.get((i, "qkv"), 0) == rows.get((i, "out"), 0) == mha, (i, rows, mha)
        assert rows.get((i, "ffn"), 0) == ffn, (i, rows, ffn)
        assert 0 < mha < n_frames and 0 < ffn < n_frames, (i, mha, ffn, n_frames)


def test_eval_forward_feeds_only_active_valid_frames_and_equals_the_masked_path():
    enc = half_gated()
    feats, lens = batch()
    counter = RowCounter(enc)
    with torch.no_grad():
        y, olens = enc(feats, lens)
    counter.close()
    gates = enc.last_gates  # (B, T', L, 2)
    valid = valid_mask(olens, y.shape[1])
    assert olens.tolist() == [40, 25, 33] and not bool(valid.all())
    assert 0.25 < float(gates[valid].mean()) < 0.75
    assert bool((gates[~valid] == 0).all())  # padding frames are never active
    n_valid = int(valid.sum())
    assert counter.rows["inp"] == n_valid  # padding never even projected
    check_rows(counter.rows, gates[valid], n_valid)
    # the same output and gate decisions as the masked (training-style) path, which computes every frame
    counter = RowCounter(enc)
    with torch.no_grad():
        ref, _ = enc._forward_masked(feats, lens)
    counter.close()
    assert counter.rows[(0, "qkv")] == counter.rows[(0, "ffn")] == valid.numel()
    assert torch.equal(enc.last_gates[valid], gates[valid])
    assert (y - ref)[valid].abs().max() <= 1e-5
    assert bool((y[~valid] == 0).all())


def test_eval_compute_fraction_matches_the_masked_path():
    """Validation logs ``expected_compute`` after an eval forward: padding is excluded either way."""
    enc = half_gated()
    feats, lens = batch()
    with torch.no_grad():
        _, olens = enc(feats, lens)
        skip = enc.expected_compute(olens)
        enc._forward_masked(feats, lens)
        masked = enc.expected_compute(olens)
    assert 0.1 < float(skip) < 0.9 and abs(float(skip) - float(masked)) <= 1e-5


def test_streaming_feeds_only_active_frames():
    enc = half_gated()
    feats, lens = batch()
    for b, n in enumerate(LENS):
        x = feats[b:b + 1, :n]
        with torch.no_grad():
            full, _ = enc(x, torch.tensor([n]))
        counter = RowCounter(enc)
        state, outs, gates, i = enc.init_state(1), [], [], 0
        with torch.no_grad():
            for size in [4, 12, 8, 20] * n:
                if i >= n:
                    break
                y, state = enc.stream_step(x[:, i:i + size], state)
                outs.append(y)
                gates.append(enc.last_gates)
                i += size
        counter.close()
        g = torch.cat(gates, 1)[0]  # (T', L, 2)
        assert g.shape[0] == n // 4
        check_rows(counter.rows, g, n // 4)
        assert (torch.cat(outs, 1) - full).abs().max() <= 1e-4


def test_dense_reference_and_training_still_compute_every_frame():
    enc = half_gated()
    feats, lens = batch()
    x = feats[:1]
    with torch.no_grad():
        counter = RowCounter(enc)
        dense, _ = enc(x, lens[:1], force_all_on=True, left=enc.left_context)
        counter.close()
        assert bool((enc.last_gates == 1).all())
        assert all(counter.rows[(i, k)] == 40 for i in range(3) for k in ("qkv", "out", "ffn"))
        ref, _, _ = enc.infer(stack_frames(x, lens[:1], 4)[0], enc.init_state(1), force_all_on=True,
                              left=enc.left_context)
        assert (dense - ref).abs().max() <= 1e-5
    enc.train()
    counter = RowCounter(enc)
    y, _ = enc(feats, lens)  # training: the masked, differentiable path over the padded batch
    counter.close()
    assert counter.rows[(0, "qkv")] == counter.rows[(0, "ffn")] == 3 * 40
    enc.expected_compute(torch.tensor([40, 25, 33])).backward()
    assert enc.layers[0].arbitrator.weight.grad.abs().sum() > 0


def test_ungated_model_forward_is_the_dense_reference():
    enc = half_gated()
    allon = build_encoder({**TINY, "gated": False}, 40).eval()
    allon.load_state_dict(enc.state_dict())
    feats, lens = batch()
    with torch.no_grad():
        y, olens = allon(feats, lens)
        ref, _ = enc(feats, lens, force_all_on=True)
    assert torch.equal(y, ref) and bool((allon.last_gates == 1).all())
