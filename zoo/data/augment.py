"""Waveform augmentation of training audio: telephone-band round trips and gain."""
from __future__ import annotations

import torch
import torchaudio.functional as AF


class WaveAugment:
    """Random per-utterance augmentation of a (S,) float waveform at ``sample_rate``.

    Args:
        bandwidth_prob: probability of a narrow-band round trip: resample to one of ``narrow_rates`` and back,
            which removes everything above half that rate (so 8 kHz telephone audio, upsampled by
            ``transcribe``, looks like training data).
        narrow_rates: the rates of that round trip (Hz).
        gain_db: (low, high) uniform gain in dB, or None.
    Randomness comes from torch's global generator (seeded by Lightning's ``seed_everything``).
    """

    def __init__(self, sample_rate: int = 16000, bandwidth_prob: float = 0.0,
                 narrow_rates: tuple[int, ...] | list[int] = (8000,), gain_db: tuple[float, float] | None = None):
        if not 0.0 <= bandwidth_prob <= 1.0:
            raise ValueError(f"bandwidth_prob must lie in [0, 1], got {bandwidth_prob}")
        if any(r >= sample_rate or r <= 0 for r in narrow_rates):
            raise ValueError(f"narrow_rates must lie below the sample rate {sample_rate}, got {list(narrow_rates)}")
        if gain_db is not None and (len(gain_db) != 2 or gain_db[0] > gain_db[1]):
            raise ValueError(f"gain_db must be [low, high], got {gain_db}")
        self.sample_rate, self.bandwidth_prob = sample_rate, bandwidth_prob
        self.narrow_rates, self.gain_db = list(narrow_rates), gain_db

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        """(S,) -> (S,) float waveform (same length)."""
        if self.bandwidth_prob > 0 and torch.rand(()) < self.bandwidth_prob:
            rate = self.narrow_rates[int(torch.randint(len(self.narrow_rates), ()))]
            narrow = AF.resample(AF.resample(wav, self.sample_rate, rate), rate, self.sample_rate)
            wav = torch.nn.functional.pad(narrow, (0, max(0, wav.numel() - narrow.numel())))[: wav.numel()]
        if self.gain_db is not None:
            lo, hi = self.gain_db
            wav = wav * 10 ** ((lo + (hi - lo) * torch.rand(())) / 20)
        return wav
