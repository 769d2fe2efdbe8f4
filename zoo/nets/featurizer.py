"""Streaming log-mel filterbank featurizer that lives inside the model (so a loaded model takes raw audio)."""
from __future__ import annotations

import torch
import torchaudio
from torch import nn


class FbankFeaturizer(nn.Module):
    """Log-mel filterbank with global mean/variance normalisation stored as buffers.

    Frames are computed without centring (``center=False``) so a chunked stream yields exactly the
    frames of the full utterance: frame ``i`` covers samples ``[i*hop, i*hop + win)``.

    Args:
        sample_rate: input rate in Hz.
        n_mels: number of mel bins (feature dim F).
        win_ms, hop_ms: analysis window and shift.
    """

    mean: torch.Tensor  # (F,) buffers (register_buffer): typed here, nn.Module.__getattr__ is untyped
    std: torch.Tensor

    def __init__(self, sample_rate: int = 16000, n_mels: int = 80, win_ms: float = 25.0, hop_ms: float = 10.0):
        super().__init__()
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.win = int(round(sample_rate * win_ms / 1000))
        self.hop = int(round(sample_rate * hop_ms / 1000))
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=self.win, win_length=self.win, hop_length=self.hop,
            n_mels=n_mels, center=False, power=2.0)
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))

    @property
    def dim(self) -> int:
        return self.n_mels

    def config(self) -> dict:
        return {"sample_rate": self.sample_rate, "n_mels": self.n_mels,
                "win_ms": self.win * 1000 / self.sample_rate, "hop_ms": self.hop * 1000 / self.sample_rate}

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frames produced from ``num_samples`` samples (elementwise)."""
        return torch.clamp(torch.div(num_samples - self.win, self.hop, rounding_mode="floor") + 1, min=0)

    def raw(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, S) -> un-normalised log-mel (B, T, F)."""
        if wav.shape[-1] < self.win:
            return wav.new_zeros(wav.shape[0], 0, self.n_mels)
        return torch.log(self.mel(wav).clamp_min(1e-10)).transpose(1, 2)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None):
        """(B, S) waveform, (B,) sample counts -> (B, T, F) normalised features, (B,) frame counts."""
        if lengths is None:
            lengths = torch.full((wav.shape[0],), wav.shape[-1], dtype=torch.long, device=wav.device)
        feats = (self.raw(wav) - self.mean) / self.std
        return feats, self.num_frames(lengths)

    @torch.no_grad()
    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-3))

    # --- streaming -----------------------------------------------------------------------------
    def stream_step(self, wav: torch.Tensor, pending: torch.Tensor):
        """Consume new samples. ``wav`` (B, S_new), ``pending`` (B, S_old) leftover samples.

        Returns (B, T_new, F) normalised frames and the new leftover samples.
        """
        buf = torch.cat([pending, wav], dim=-1)
        n = int(self.num_frames(torch.tensor(buf.shape[-1])))
        if n == 0:
            return buf.new_zeros(buf.shape[0], 0, self.n_mels), buf
        used = buf[:, : (n - 1) * self.hop + self.win]
        feats, _ = self.forward(used)
        return feats, buf[:, n * self.hop:]
