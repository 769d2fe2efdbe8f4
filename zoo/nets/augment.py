"""SpecAugment (Park et al., 2019): frequency and time masking of features, applied by the training tasks."""
from __future__ import annotations

import torch
import torchaudio
from torch import nn


class SpecAugment(nn.Module):
    """Frequency and time masking on (B, T, F) features, independent per utterance."""

    def __init__(self, freq_masks: int = 2, freq_width: int = 15, time_masks: int = 2, time_width: float = 0.05):
        super().__init__()
        self.freq = nn.ModuleList(torchaudio.transforms.FrequencyMasking(freq_width, iid_masks=True)
                                  for _ in range(freq_masks))
        self.time_masks, self.time_width = time_masks, time_width

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = feats.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        for m in self.freq:
            x = m(x)
        if self.time_masks and x.shape[-1] > 1:
            width = max(1, int(self.time_width * x.shape[-1]))
            for _ in range(self.time_masks):
                x = torchaudio.transforms.TimeMasking(width, iid_masks=True)(x)
        return x.squeeze(1).transpose(1, 2)
