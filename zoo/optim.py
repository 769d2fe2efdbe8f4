"""Learning-rate schedules usable from LightningCLI configs (stepped every optimizer step)."""
from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class WarmupCosineLR(LambdaLR):
    """Linear warm-up for ``warmup_steps``, then cosine decay to ``min_ratio`` x peak at ``total_steps``.

    The lr of optimizer step ``i`` (0-based) is ``peak * (i + 1) / warmup_steps`` during warm-up, the peak at
    ``i = warmup_steps``, then ``peak * (min_ratio + (1 - min_ratio) * (1 + cos(pi * p)) / 2)`` with ``p`` the
    fraction of the decay done, and ``min_ratio * peak`` from ``total_steps`` on.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int = 500, total_steps: int = 10000,
                 min_ratio: float = 0.02):
        if warmup_steps < 0 or total_steps < 1 or total_steps < warmup_steps:
            raise ValueError(f"WarmupCosineLR needs 0 <= warmup_steps <= total_steps and total_steps >= 1, "
                             f"got warmup_steps={warmup_steps}, total_steps={total_steps}")
        if not 0.0 <= min_ratio <= 1.0:
            raise ValueError(f"WarmupCosineLR min_ratio must be in [0, 1], got {min_ratio}")

        def f(step: int) -> float:
            if step < warmup_steps:
                return (step + 1) / warmup_steps
            p = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))

        super().__init__(optimizer, f)
