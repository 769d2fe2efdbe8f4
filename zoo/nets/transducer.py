"""Transducer prediction and joint networks."""
from __future__ import annotations

import torch
from torch import nn


class LSTMPredictor(nn.Module):
    """Label-conditioned LSTM. Token 0 (blank) doubles as the start symbol.

    Args:
        vocab_size: V including blank; embed_dim, hidden, layers: sizes.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 128, hidden: int = 256, layers: int = 1, dropout: float = 0.1):
        super().__init__()
        self._cfg = dict(embed_dim=embed_dim, hidden=hidden, layers=layers, dropout=dropout)
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.output_dim = hidden

    def config(self) -> dict:
        return dict(self._cfg)

    def forward(self, tokens: torch.Tensor):
        """(B, U) targets -> (B, U + 1, H): outputs after <blank>, y1, ..., yU."""
        x = torch.nn.functional.pad(tokens, (1, 0), value=0)
        y, _ = self.lstm(self.drop(self.embed(x)))
        return y

    def init_state(self, batch_size: int, device=None):
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def step(self, token: torch.Tensor, state):
        """(B,) last tokens -> (B, H) output and new (h, c)."""
        y, state = self.lstm(self.embed(token).unsqueeze(1), state)
        return y.squeeze(1), state


class Joiner(nn.Module):
    """``out(tanh(W_e enc + W_p pred))``: enc (..., D_e), pred (..., D_p) broadcastable -> (..., V)."""

    def __init__(self, enc_dim: int, pred_dim: int, vocab_size: int, joint_dim: int = 256):
        super().__init__()
        self._cfg = dict(joint_dim=joint_dim)
        self.enc_proj = nn.Linear(enc_dim, joint_dim)
        self.pred_proj = nn.Linear(pred_dim, joint_dim)
        self.out = nn.Linear(joint_dim, vocab_size)

    def config(self) -> dict:
        return dict(self._cfg)

    def forward(self, enc: torch.Tensor, pred: torch.Tensor, projected: bool = False) -> torch.Tensor:
        if not projected:
            enc, pred = self.enc_proj(enc), self.pred_proj(pred)
        return self.out(torch.tanh(enc + pred))
