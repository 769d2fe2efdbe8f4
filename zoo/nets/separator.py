"""The STS separator encoder (Sklyar et al., Interspeech 2022): mixture encoder -> C-channel separator ->
shared recognition encoder. The inference model that decodes it is :class:`zoo.models.sts.STSASR`."""
from __future__ import annotations

import torch
from torch import nn

from zoo.nets.encoder import StreamingEncoder, build_encoder


class SeparatorEncoder(StreamingEncoder):
    """Mixture encoder -> ``channels``-way separator -> shared recognition encoder.

    ``forward`` / ``stream_step`` return (B * C, T', D): the C channels of each input, channel-interleaved
    (row ``b * C + c``), so a transducer decodes every channel as its own utterance.

    Args:
        input_dim: feature dim.
        mixture: ``{"name": <zoo encoder>, **kwargs}`` over the features (sets the frame rate).
        recognition: ``{"name": <zoo encoder>, **kwargs}`` over a separated channel; must not subsample
            (for ``lstm``: ``stack: 1``).
        channels: output channels (2: the two speakers).
    """

    def __init__(self, input_dim: int = 80, mixture: dict | None = None, recognition: dict | None = None,
                 channels: int = 2):
        super().__init__()
        mixture = dict(mixture or {"name": "lstm", "stack": 4, "hidden": 256, "layers": 2})
        recognition = dict(recognition or {"name": "lstm", "stack": 1, "hidden": 256, "layers": 1})
        self._cfg = {"mixture": mixture, "recognition": recognition, "channels": channels}
        self.mixture = build_encoder(mixture, input_dim)
        d = self.mixture.output_dim
        self.channels = channels
        self.separator = nn.Linear(d, 2 * channels * d)  # per channel: mask logits, projection
        self.activity = nn.Linear(d, 1)                   # shared speech-activity head on each channel
        self.recognition = build_encoder(recognition, d)
        if self.recognition.subsampling != 1:
            raise ValueError("the recognition encoder must keep the frame rate (lstm: stack: 1)")
        self.subsampling = self.mixture.subsampling
        self.lookahead_frames = self.mixture.lookahead_frames + self.recognition.lookahead_frames * self.subsampling
        self.output_dim = self.recognition.output_dim

    def config(self) -> dict:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._cfg.items()}

    def separate(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T, D) mixture encoding -> (B * C, T, D) channel-interleaved separated encodings."""
        b, t, d = h.shape
        z = self.separator(h).view(b, t, self.channels, 2, d)
        s = torch.sigmoid(z[..., 0, :]) * z[..., 1, :]          # (B, T, C, D)
        return s.permute(0, 2, 1, 3).reshape(b * self.channels, t, d)

    def forward_all(self, feats: torch.Tensor, lengths: torch.Tensor):
        """-> enc (B * C, T', D), lengths (B * C,), activity logits (B, C, T')."""
        h, hl = self.mixture(feats, lengths)
        s = self.separate(h)
        sl = hl.repeat_interleave(self.channels)
        act = self.activity(s).squeeze(-1).view(h.shape[0], self.channels, h.shape[1])
        enc, el = self.recognition(s, sl)
        return enc, el, act

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        enc, el, _ = self.forward_all(feats, lengths)
        return enc, el

    def init_state(self, batch_size: int, device=None) -> dict:
        return {"mixture": self.mixture.init_state(batch_size, device),
                "recognition": self.recognition.init_state(batch_size * self.channels, device)}

    def _recognise(self, h: torch.Tensor | None, state: dict):
        if h is None or h.shape[1] == 0:
            n = (h.shape[0] if h is not None else 1) * self.channels
            return torch.zeros(n, 0, self.output_dim, device=None if h is None else h.device), state
        y, rec = self.recognition.stream_step(self.separate(h), state["recognition"])
        return y, {**state, "recognition": rec}

    def stream_step(self, feats: torch.Tensor, state: dict):
        h, mix = self.mixture.stream_step(feats, state["mixture"])
        return self._recognise(h, {**state, "mixture": mix})

    def stream_flush(self, state: dict):
        h, mix = self.mixture.stream_flush(state["mixture"])
        state = {**state, "mixture": mix}
        outs = []
        if h is not None and h.shape[1]:
            y, state = self._recognise(h, state)
            outs.append(y)
        tail, rec = self.recognition.stream_flush(state["recognition"])
        state = {**state, "recognition": rec}
        if tail is not None and tail.shape[1]:
            outs.append(tail)
        return (torch.cat(outs, 1) if outs else None), state
