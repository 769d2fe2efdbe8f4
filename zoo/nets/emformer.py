"""Emformer encoder (torchaudio.models.Emformer) as a streaming peer baseline for ConvRNN-T."""
from __future__ import annotations

import torch
from torch import nn
from torchaudio.models import Emformer

from zoo.nets.encoder import StreamingEncoder, register_encoder, stack_frames


@register_encoder("emformer")
class EmformerEncoder(StreamingEncoder):
    """Frame stacking -> linear -> torchaudio Emformer (no right context, no memory bank).

    Attention is full within a segment of ``segment_length`` output frames and sees
    ``left_context_length`` frames before it, so an output frame may depend on later frames of its own
    segment: the look-ahead is up to one segment. Streaming buffers stacked frames until a segment is
    complete; ``stream_flush`` runs the final partial segment.

    Shapes: forward(feats (B, T, F), lengths (B,)) -> (B, T // stack, d_model), (B,).
    """

    def __init__(self, input_dim: int = 80, stack: int = 4, d_model: int = 192, num_heads: int = 4,
                 ffn_dim: int = 768, layers: int = 4, segment_length: int = 4, left_context_length: int = 30,
                 dropout: float = 0.1):
        super().__init__()
        self._cfg = dict(input_dim=input_dim, stack=stack, d_model=d_model, num_heads=num_heads, ffn_dim=ffn_dim,
                         layers=layers, segment_length=segment_length, left_context_length=left_context_length,
                         dropout=dropout)
        self.subsampling = stack
        self.output_dim = d_model
        self.segment = segment_length
        self.lookahead_frames = (segment_length - 1) * stack
        self.inp = nn.Sequential(nn.LayerNorm(input_dim * stack), nn.Linear(input_dim * stack, d_model))
        self.emformer = Emformer(d_model, num_heads, ffn_dim, layers, segment_length, dropout=dropout,
                                 left_context_length=left_context_length, right_context_length=0,
                                 max_memory_size=0)

    def config(self) -> dict:
        return dict(self._cfg)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        x, lengths = stack_frames(feats, lengths, self.subsampling)
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], 0, self.output_dim), lengths
        # Zero frames past each utterance's end and pad to whole segments: the final partial segment then
        # sees exactly what streaming's ``stream_flush`` gives it, and batch results equal single ones.
        t = x.shape[1]
        h = self.inp(x) * (torch.arange(t, device=x.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        h = torch.nn.functional.pad(h, (0, 0, 0, (-t) % self.segment))
        full = torch.full_like(lengths, h.shape[1])
        y, _ = self.emformer(h, full)
        return y[:, :t], lengths

    def init_state(self, batch_size: int, device=None) -> dict:
        return {"buf": torch.zeros(batch_size, 0, self.output_dim, device=device), "emformer": None}

    def _infer(self, seg: torch.Tensor, n_valid: int, state: dict) -> torch.Tensor:
        lengths = torch.full((seg.shape[0],), n_valid, dtype=torch.long, device=seg.device)
        y, _, state["emformer"] = self.emformer.infer(seg, lengths, state["emformer"])
        return y[:, :n_valid]

    def stream_step(self, feats: torch.Tensor, state: dict):
        x, _ = stack_frames(feats, torch.zeros(feats.shape[0], dtype=torch.long), self.subsampling)
        buf = torch.cat([state["buf"], self.inp(x)], dim=1) if x.shape[1] else state["buf"]
        state = dict(state)
        outs = []
        while buf.shape[1] >= self.segment:
            outs.append(self._infer(buf[:, : self.segment], self.segment, state))
            buf = buf[:, self.segment:]
        state["buf"] = buf
        y = torch.cat(outs, 1) if outs else buf.new_zeros(buf.shape[0], 0, self.output_dim)
        return y, state

    def stream_flush(self, state: dict):
        buf = state["buf"]
        n = buf.shape[1]
        if n == 0:
            return buf.new_zeros(buf.shape[0], 0, self.output_dim), state
        state = dict(state)
        seg = torch.nn.functional.pad(buf, (0, 0, 0, self.segment - n))
        y = self._infer(seg, n, state)
        state["buf"] = buf[:, n:]
        return y, state
