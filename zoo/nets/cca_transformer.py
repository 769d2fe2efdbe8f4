"""Compute-cost-amortized Transformer encoder (Xie et al., Interspeech 2022): per-frame arbitrators
switch each layer's MHA and FFN sub-blocks on or off.

Design (our choices where the paper is silent, see ../shared/notes/papers.md §2):
- Causal pre-LN Transformer over 4x stacked frames; attention sees at most ``left_context`` past frames
  (``window`` > 0 turns it into the sliding-window baseline: ``left_context = window``, gates off).
- Arbitrator of layer l: a linear map of the block input h_t (D -> 2 logits: MHA, FFN), i.e. it looks
  at the frame as the layer sees it; cost 2D MACs per frame, negligible next to a sub-block.
- Training: Gumbel-sigmoid with a straight-through hard sample (forward uses {0, 1}, backward the
  relaxed sigmoid), temperature ``tau`` annealed by the task; eval: gate = 1[logit > 0].
- A skipped MHA frame writes no key/value at that layer: later frames do not attend to it. So a skipped
  frame costs nothing at that layer, and inference can drop it entirely.
- Every inference path of a gated model skips the work of off gates (gather the active frames of each
  sub-block, run it on those rows only, index-add back):
  * batch ``forward`` in eval mode (``TransducerASR.encode``, transcription, evaluation, validation):
    ``_forward_skip`` packs the valid frames of the batch, (B, T', .) -> (N, .); padding frames never run
    (their output and ``last_gates`` are 0); attention re-pads each utterance's active frames to (B, Na, D);
  * ``infer`` / ``stream_step`` (streaming, per stream): active frames only, key/value cache of active frames.
  Training (``self.training``) runs ``_forward_masked``: every frame (padding included) through every
  sub-block, outputs multiplied by the (straight-through) gates, differentiable. In eval the three paths give
  the same output and gate decisions on valid frames (float rounding aside).
- ``gated: false`` is the all-on Transformer baseline (arbitrators exist but are never run; ``forward`` is the
  masked path with every gate on); ``infer(force_all_on=True, left=left_context)`` and
  ``forward(..., force_all_on=True, left=left_context)`` run any of these models' weights as that dense
  reference (every gate on, full attention span), for FLOP and wall-clock ratios on the same weights.

Encoder FLOPs (counted by ``infer`` from the actual gate decisions, and analytically by ``dense_flops``;
a multiply-add = 2 FLOPs; LayerNorm, softmax and activations are O(D) per frame and not counted):
  input projection 2*(stack*F)*D per frame, plus per layer and frame: arbitrator 2*D*2 (gated models only);
  MHA, if on: 2*4*D^2 (QKV and output projections) + 2*2*D*K (scores and weighted sum over its K
  attended keys: active frames j with t - left <= j <= t); FFN, if on: 2*2*D*ffn_dim.
  Dense (all on, every key present): K_t = min(t + 1, left + 1) for output frame t of the utterance.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.nets.encoder import StreamingEncoder, register_encoder, stack_frames


def gumbel_sigmoid_st(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Hard {0,1} sample in the forward pass, relaxed Gumbel-sigmoid gradient in the backward pass."""
    u = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
    soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / tau)
    hard = (soft > 0.5).to(soft.dtype)
    return hard + soft - soft.detach()


class GatedLayer(nn.Module):
    """Pre-LN causal MHA + FFN with per-frame gates. Shapes: h (B, T, D), gates (B, T) each."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.heads, self.d = heads, d
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, ffn), nn.SiLU(), nn.Dropout(dropout), nn.Linear(ffn, d))
        self.drop = nn.Dropout(dropout)
        self.arbitrator = nn.Linear(d, 2)

    @property
    def ffn_dim(self) -> int:
        """Hidden size of the FFN sub-block."""
        first = self.ff[0]
        assert isinstance(first, nn.Linear)  # nn.Sequential indexing is typed as plain nn.Module
        return first.out_features

    def _attend(self, q, k, v, mask):
        """q (B, Tq, D), k/v (B, Tk, D), mask (B, Tq, Tk) bool (True = may attend) -> (B, Tq, D)."""
        b, tq, _ = q.shape
        sh = lambda x: x.view(b, x.shape[1], self.heads, self.d // self.heads).transpose(1, 2)  # noqa: E731
        y = F.scaled_dot_product_attention(sh(q), sh(k), sh(v), attn_mask=mask.unsqueeze(1))
        return y.transpose(1, 2).reshape(b, tq, self.d)


@register_encoder("cca_transformer")
class CCATransformerEncoder(StreamingEncoder):
    """Gated causal Transformer encoder.

    Args:
        input_dim, stack: features and frame stacking. d_model, heads, ffn_dim, layers: sizes.
        left_context: past frames each frame may attend to (streaming cache length).
        gated: learn per-frame gates (False = the all-on Transformer baseline).
        window: if > 0, the sliding-window baseline (attention to ``window`` past frames, no gates).
        window_gates: with ``window`` > 0 and ``gated``, keep the gates too: CCA on a sliding-window encoder.
    Shapes: forward(feats (B, T, F), lengths (B,)) -> (B, T // stack, d_model), (B,);
    ``last_gates`` holds the (B, T', layers, 2) gate values of the latest call (0 on padding frames in eval).
    """

    def __init__(self, input_dim: int = 80, stack: int = 4, d_model: int = 144, heads: int = 4, ffn_dim: int = 576,
                 layers: int = 6, left_context: int = 64, gated: bool = True, window: int = 0, dropout: float = 0.1,
                 window_gates: bool = False):
        super().__init__()
        stack, d_model, heads, ffn_dim, layers = int(stack), int(d_model), int(heads), int(ffn_dim), int(layers)
        left_context, window, dropout = int(left_context), int(window), float(dropout)
        self._cfg = dict(input_dim=input_dim, stack=stack, d_model=d_model, heads=heads, ffn_dim=ffn_dim,
                         layers=layers, left_context=left_context, gated=gated, window=window, dropout=dropout)
        if window_gates:  # only written when set, so older configs stay byte-identical
            self._cfg["window_gates"] = True
        self.subsampling = stack
        self.output_dim = d_model
        self.left = window if window > 0 else left_context
        self.left_context, self.window = left_context, window
        self.gated = gated and (window == 0 or window_gates)
        self.tau = 1.0
        self.inp = nn.Sequential(nn.LayerNorm(input_dim * stack), nn.Linear(input_dim * stack, d_model))
        self.layers = nn.ModuleList(GatedLayer(d_model, heads, ffn_dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.last_gates: torch.Tensor | None = None

    def config(self) -> dict:
        return dict(self._cfg)

    def _gated_layers(self) -> list[GatedLayer]:
        """``self.layers`` typed (iterating an ``nn.ModuleList`` yields plain ``nn.Module``)."""
        out = []
        for layer in self.layers:
            assert isinstance(layer, GatedLayer)
            out.append(layer)
        return out

    # --- gates ---------------------------------------------------------------------------------
    def _gates(self, layer: GatedLayer, h: torch.Tensor, force_all_on: bool = False) -> torch.Tensor:
        """(B, T, D) -> (B, T, 2) gates for (MHA, FFN)."""
        if not self.gated or force_all_on:
            return h.new_ones(h.shape[0], h.shape[1], 2)
        logits = layer.arbitrator(h)
        if self.training:
            return gumbel_sigmoid_st(logits, self.tau)
        return (logits > 0).to(h.dtype)

    def gate_probs(self) -> torch.Tensor | None:
        """Differentiable P(gate on) of the latest forward, (B, T', layers, 2), for the compute loss."""
        return getattr(self, "_probs", None)

    # --- full-utterance forward ------------------------------------------------------------------
    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, force_all_on: bool = False, left: int | None = None):
        """feats (B, T, F), lengths (B,) -> (B, T', D), (B,) with T' = T // stack.

        Eval mode on a gated model: ``_forward_skip`` (each sub-block runs on its active valid frames only);
        training, ungated models and ``force_all_on``: ``_forward_masked`` (every frame computed, gates as
        multipliers). ``force_all_on`` / ``left``: as in ``infer`` (the dense reference on these weights)."""
        if self.gated and not self.training and not force_all_on and (left is None or int(left) == self.left):
            return self._forward_skip(feats, lengths)
        return self._forward_masked(feats, lengths, force_all_on, left)

    def _forward_masked(self, feats: torch.Tensor, lengths: torch.Tensor, force_all_on: bool = False,
                        left: int | None = None):
        """Differentiable path: every frame (padding included) through every sub-block, output multiplied by
        its gate. Same shapes as ``forward``; same output as ``_forward_skip`` on valid frames."""
        left = self.left if left is None else int(left)
        x, lengths = stack_frames(feats, lengths, self.subsampling)
        b, t, _ = x.shape
        h = self.inp(x)
        idx = torch.arange(t, device=x.device)
        band = (idx[None, :] <= idx[:, None]) & (idx[:, None] - idx[None, :] <= left)  # (T, T)
        gates, probs = [], []
        for layer in self._gated_layers():
            g = self._gates(layer, h, force_all_on)
            gates.append(g)
            if self.gated and not force_all_on:
                probs.append(torch.sigmoid(layer.arbitrator(h)))
            ga, gf = g[..., 0], g[..., 1]
            q, k, v = layer.qkv(layer.ln1(h)).chunk(3, dim=-1)
            # keys: frames whose MHA is on, plus each query itself (so a row is never empty)
            key_on = ga.detach() > 0.5
            mask = band[None] & (key_on[:, None, :] | torch.eye(t, dtype=torch.bool, device=x.device)[None])
            h = h + ga.unsqueeze(-1) * layer.drop(layer.out(layer._attend(q, k, v, mask)))
            h = h + gf.unsqueeze(-1) * layer.drop(layer.ff(layer.ln2(h)))
        self.last_gates = torch.stack(gates, 2).detach()
        self._probs = torch.stack(probs, 2) if probs else None
        return self.norm(h), lengths

    def _forward_skip(self, feats: torch.Tensor, lengths: torch.Tensor):
        """Eval batch path (gated models): the N valid frames of the batch are packed into (N, D); each layer's
        MHA (QKV, attention, output projection) and FFN run on the rows whose gate is on only, results
        index-added back. Attention re-pads the active frames per utterance to (B, Na_max, D) and masks:
        causal band of ``left`` frames, same utterance, active keys only. Padding frames never run anywhere:
        their output is 0 and their ``last_gates`` / ``gate_probs`` entries are 0."""
        x, lengths = stack_frames(feats, lengths, self.subsampling)
        b, t, _ = x.shape
        n_layers, d = len(self.layers), self.output_dim
        valid = torch.arange(t, device=x.device)[None, :] < lengths[:, None]  # (B, T)
        bi, ti = valid.nonzero(as_tuple=True)  # (N,) each, utterance-major, time-sorted
        h = self.inp(x[bi, ti])  # (N, D)
        gates = h.new_zeros(h.shape[0], n_layers, 2)
        probs = []
        for i, layer in enumerate(self._gated_layers()):
            logits = layer.arbitrator(h)  # (N, 2)
            probs.append(torch.sigmoid(logits))
            g = logits > 0
            gates[:, i] = g.to(h.dtype)
            a = g[:, 0].nonzero().flatten()  # (Na,) active MHA rows
            if a.numel():
                q, k, v = layer.qkv(layer.ln1(h[a])).chunk(3, dim=-1)  # (Na, D) each
                ab, at = bi[a], ti[a]
                counts = torch.bincount(ab, minlength=b)
                slot = torch.arange(a.numel(), device=x.device) - (counts.cumsum(0) - counts)[ab]  # rank in utt
                na = int(counts.max())
                occ = torch.zeros(b, na, dtype=torch.bool, device=x.device)
                occ[ab, slot] = True
                tp = torch.zeros(b, na, dtype=torch.long, device=x.device)
                tp[ab, slot] = at
                dt = tp[:, :, None] - tp[:, None, :]  # (B, Na, Na) query time - key time
                mask = (dt >= 0) & (dt <= self.left) & occ[:, None, :]
                mask = mask | torch.eye(na, dtype=torch.bool, device=x.device)[None]  # padded query rows: not empty

                def pad(z):  # (Na, D) -> (B, Na_max, D)
                    return z.new_zeros(b, na, d).index_put((ab, slot), z)

                y = layer._attend(pad(q), pad(k), pad(v), mask)[ab, slot]  # (Na, D)
                h = h.index_add(0, a, layer.out(y).to(h.dtype))
            f_ = g[:, 1].nonzero().flatten()  # active FFN rows
            if f_.numel():
                h = h.index_add(0, f_, layer.ff(layer.ln2(h[f_])).to(h.dtype))
        y = self.norm(h)
        out = y.new_zeros(b, t, d).index_put((bi, ti), y)
        self.last_gates = h.new_zeros(b, t, n_layers, 2).index_put((bi, ti), gates).detach()
        pr = torch.stack(probs, 1)  # (N, L, 2)
        self._probs = pr.new_zeros(b, t, n_layers, 2).index_put((bi, ti), pr)
        return out, lengths

    # --- inference: run sub-blocks on active frames only ----------------------------------------
    def init_state(self, batch_size: int, device=None) -> dict:
        d = self.output_dim
        st = {"t": torch.zeros((), dtype=torch.long, device=device)}
        for i in range(len(self.layers)):
            st[f"k{i}"] = torch.zeros(batch_size, 0, d, device=device)
            st[f"v{i}"] = torch.zeros(batch_size, 0, d, device=device)
            st[f"pos{i}"] = torch.zeros(batch_size, 0, dtype=torch.long, device=device)
        return st

    @torch.no_grad()
    def infer(self, x: torch.Tensor, state: dict, force_all_on: bool = False, left: int | None = None):
        """Stacked frames x (1, T, stack*F) -> (1, T, D), new state, and counted FLOPs of this call.

        Batch size 1: each stream has its own set of active frames. ``force_all_on``: every gate on and no
        arbitrator run (the all-on model on these weights); ``left``: attention span override (e.g.
        ``left_context`` to run a sliding-window model at full span). Keep both fixed over a stream.
        """
        assert x.shape[0] == 1, "infer() gathers per stream; call it per stream"
        left = self.left if left is None else int(left)
        run_arb = self.gated and not force_all_on
        h = self.inp(x)[0]  # (T, D)
        t = h.shape[0]
        pos = state["t"] + torch.arange(t, device=h.device)
        new = {"t": state["t"] + t}
        d = self.output_dim
        flops, gates = 2 * t * x.shape[-1] * d, []  # input projection
        for i, layer in enumerate(self._gated_layers()):
            g = self._gates(layer, h[None], force_all_on)[0] > 0.5  # (T, 2)
            gates.append(g)
            flops += 2 * t * d * 2 * int(run_arb)  # arbitrators
            a = g[:, 0].nonzero().flatten()
            k_c, v_c, p_c = state[f"k{i}"][0], state[f"v{i}"][0], state[f"pos{i}"][0]
            if a.numel():
                q, k, v = layer.qkv(layer.ln1(h[a])).chunk(3, dim=-1)
                keys, vals, kpos = torch.cat([k_c, k]), torch.cat([v_c, v]), torch.cat([p_c, pos[a]])
                qpos = pos[a]
                mask = (kpos[None, :] <= qpos[:, None]) & (qpos[:, None] - kpos[None, :] <= left)
                y = layer.out(layer._attend(q[None], keys[None], vals[None], mask[None])[0])
                h = h.index_add(0, a, y)
                n_keys = mask.sum().item()
                flops += 2 * a.numel() * (3 * d * d + d * d) + 2 * 2 * n_keys * d
                keep = kpos > (pos[-1] - left)
                k_c, v_c, p_c = keys[keep], vals[keep], kpos[keep]
            new[f"k{i}"], new[f"v{i}"], new[f"pos{i}"] = k_c[None], v_c[None], p_c[None]
            f_ = g[:, 1].nonzero().flatten()
            if f_.numel():
                h = h.index_add(0, f_, layer.ff(layer.ln2(h[f_])))
                flops += 2 * f_.numel() * 2 * d * layer.ffn_dim
        self.last_gates = torch.stack(gates, 1)[None].float()
        return self.norm(h)[None], new, flops

    def stream_step(self, feats: torch.Tensor, state: dict):
        x, _ = stack_frames(feats, torch.zeros(feats.shape[0], dtype=torch.long), self.subsampling)
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], 0, self.output_dim), state
        outs, states = [], []
        for b in range(x.shape[0]):
            sb = {k: (v[b:b + 1] if v.dim() else v) for k, v in state.items()} if x.shape[0] > 1 else state
            y, sb, _ = self.infer(x[b:b + 1], sb)
            outs.append(y)
            states.append(sb)
        if len(states) == 1:
            return outs[0], states[0]
        return torch.cat(outs), _merge(states)

    def set_gate_temperature(self, tau: float) -> None:
        self.tau = float(tau)

    def expected_compute(self, lengths: torch.Tensor) -> torch.Tensor:
        """Cost-weighted expected fraction of MHA/FFN compute that stays on (differentiable), over the
        valid frames of the latest ``forward``; lengths (B,) in output frames. 1.0 when ungated."""
        probs = self.gate_probs()
        if probs is None:
            return torch.ones(())
        d, ffn = self.output_dim, self._gated_layers()[0].ffn_dim
        cost = probs.new_tensor([8 * d * d + 4 * self.left * d, 4 * d * ffn])  # MHA (full window), FFN
        valid = (torch.arange(probs.shape[1], device=probs.device)[None] < lengths[:, None]).to(probs.dtype)
        used = (probs * cost).sum(-1).mean(-1)  # (B, T') cost fraction per frame, averaged over layers
        return (used * valid).sum() / (valid.sum() * cost.sum()).clamp_min(1)

    def dense_flops(self, t: int, left: int | None = None, arbitrators: bool = False) -> int:
        """Analytic encoder FLOPs of a T-output-frame utterance with every gate on (the formula in the module
        docstring): attention span ``left`` (default: this model's; ``left_context`` for the full-span
        reference, ``window`` for a sliding-window model). Equals ``infer``'s count with all gates on."""
        left = self.left if left is None else int(left)
        d, ffn, n_layers = self.output_dim, self._gated_layers()[0].ffn_dim, len(self.layers)
        proj = self.inp[1]
        assert isinstance(proj, nn.Linear)  # nn.Sequential indexing is typed as plain nn.Module
        in_dim = proj.in_features
        keys = sum(min(i + 1, left + 1) for i in range(t))
        per_layer = t * (8 * d * d + 4 * d * ffn + 4 * d * int(arbitrators)) + 4 * d * keys
        return 2 * t * in_dim * d + n_layers * per_layer


def _merge(states: list[dict]) -> dict:
    """Stack per-stream states whose caches may differ in length (padding is never read: 'pos' = -inf)."""
    out = {"t": states[0]["t"]}
    for key in states[0]:
        if key == "t":
            continue
        if any(s[key].shape[1] != states[0][key].shape[1] for s in states):
            raise ValueError("batched CCA streams must be stepped per stream (active-frame caches differ)")
        out[key] = torch.cat([s[key] for s in states])
    return out
