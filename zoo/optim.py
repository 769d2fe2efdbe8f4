"""Learning-rate schedules usable from LightningCLI configs (stepped every optimizer step)."""
from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class WarmupCosineLR(LambdaLR):
    """Linear warm-up for ``warmup_steps``, then cosine decay to ``min_ratio`` x peak at ``total_steps``."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int = 500, total_steps: int = 10000,
                 min_ratio: float = 0.02):
        def f(step: int) -> float:
            if step < warmup_steps:
                return (step + 1) / warmup_steps
            p = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))

        super().__init__(optimizer, f)
