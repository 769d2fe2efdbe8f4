"""LSTM RNN-T encoder (the baseline of ConvRNN-T), frame-stacked to a lower frame rate."""
from __future__ import annotations

import torch
from torch import nn

from zoo.nets.encoder import StreamingEncoder, register_encoder, stack_frames


@register_encoder("lstm")
@register_encoder("lstm")
class LSTMEncoder(StreamingEncoder):
    """Stack ``stack`` feature frames, then a unidirectional LSTM stack.

    Args:
        input_dim: feature dim F.
        stack: frames stacked per output frame (10 ms features, stack 4 -> 40 ms).
        hidden: LSTM width (= output dim D).
        layers: LSTM layers.
        dropout: between LSTM layers.
    """

    def __init__(self, input_dim: int = 80, stack: int = 4, hidden: int = 256, layers: int = 3, dropout: float = 0.1):
        super().__init__()
        self._cfg = dict(input_dim=input_dim, stack=stack, hidden=hidden, layers=layers, dropout=dropout)
        self.subsampling = stack
        self.output_dim = hidden
        self.norm = nn.LayerNorm(input_dim * stack)
        self.lstm = nn.LSTM(input_dim * stack, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0,
                            batch_first=True)

    def config(self) -> dict:
        return dict(self._cfg)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        x, lengths = stack_frames(feats, lengths, self.subsampling)
        if x.shape[1] == 0:  # shorter than one output frame: nn.LSTM rejects empty sequences
            return x.new_zeros(x.shape[0], 0, self.output_dim), lengths
        y, _ = self.lstm(self.norm(x))
        return y, lengths

    def init_state(self, batch_size: int, device=None) -> dict:
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return {"h": torch.zeros(shape, device=device), "c": torch.zeros(shape, device=device)}

    def stream_step(self, feats: torch.Tensor, state: dict):
        x, _ = stack_frames(feats, torch.zeros(feats.shape[0], dtype=torch.long), self.subsampling)
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], 0, self.output_dim), state
        y, (h, c) = self.lstm(self.norm(x), (state["h"], state["c"]))
        return y, {"h": h, "c": c}
