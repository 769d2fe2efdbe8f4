"""``ZooTask``: the plumbing every training objective shares, written once: the net (fresh, or ``init_from`` a
released model), the featurizer statistics, the optimizer + per-step scheduler, and the ``zoo_config`` stored
in each checkpoint (so ``zoo export`` can rebuild the model without the task)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from zoo.errors import ZooError
from zoo.hub import from_pretrained
from zoo.models.base import ZooModel, model_config


def fit_featurizer_stats(module: L.LightningModule, featurizer, loader, n_batches: int) -> None:
    """Set ``featurizer``'s global mean/std from the first ``n_batches`` batches of ``loader`` (valid frames only).

    Moments are summed over DDP ranks, so every rank gets the same statistics.
    """
    dev = module.device
    s = torch.zeros(featurizer.dim, dtype=torch.float64, device=dev)
    s2, n = torch.zeros_like(s), torch.zeros((), dtype=torch.float64, device=dev)
    for i, batch in enumerate(loader):
        if i >= n_batches:
            break
        feats = featurizer.raw(batch["audio"].to(dev)).double()
        nf = featurizer.num_frames(batch["audio_lens"].to(dev))
        mask = torch.arange(feats.shape[1], device=dev)[None] < nf[:, None]
        x = feats[mask]
        s += x.sum(0); s2 += (x * x).sum(0); n += x.shape[0]
    # every rank saw different batches: sum the moments over ranks so all ranks get the same stats
    s, s2, n = (module.trainer.strategy.reduce(t, reduce_op="sum") for t in (s, s2, n))
    if n <= 0:
        raise RuntimeError("no training audio frames to estimate the featurizer statistics from "
                           "(empty training set, or stats_batches: 0 when training from scratch)")
    mean = s / n
    featurizer.set_stats(mean.float(), (s2 / n - mean ** 2).clamp_min(0).sqrt().float())


def pretrained_net(init_from: str, cls: type, what: str) -> ZooModel:
    """``init_from`` (zoo name, folder or Hub id) -> its net in train mode, checked to be a ``cls`` (``what`` names it
    in the error). from_pretrained returns eval mode and Lightning keeps the modes it finds, so without
    ``.train()`` fine-tuning would silently run with dropout off."""
    net = from_pretrained(init_from).train()
    if not isinstance(net, cls):
        raise ZooError(f"{init_from!r} is not {what}; pick one from `zoo list`, a model folder or a Hub id")
    return net


class ZooTask(L.LightningModule):
    """Base of the training objectives. A subclass calls ``super().__init__(optimizer, scheduler)`` and
    ``self.init_net(init_from, build, cls, what)``; it may override ``optimizer_parameters()`` and
    ``zoo_config_extra()``. ``self.hparams.stats_batches`` (if the subclass has it) sizes the statistics pass.

    Featurizer statistics: a fresh net's log-mel mean/std are estimated from the first ``stats_batches``
    training batches when fitting starts (with a datamodule) or when training starts (dataloaders given
    directly to ``Trainer.fit``); a net from ``init_from`` or a resumed checkpoint keeps its own.
    """

    net: ZooModel

    def __init__(self, optimizer: OptimizerCallable = torch.optim.AdamW, scheduler: LRSchedulerCallable | None = None):
        super().__init__()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.stats_ready = False

    def init_net(self, init_from: str | None, build: Callable[[], ZooModel], cls: type, what: str) -> None:
        """``self.net`` = the released model ``init_from`` (checked to be a ``cls``) or ``build()``."""
        if init_from:
            self.net = pretrained_net(init_from, cls, what)
            self.stats_ready = True
        else:
            self.net = build()
            self.stats_ready = False

    # --- featurizer statistics ------------------------------------------------------------------
    def _needs_stats(self) -> bool:
        return not (self.stats_ready or bool((self.net.featurizer.mean != 0).any()))

    def _fit_stats(self, loader) -> None:
        fit_featurizer_stats(self, self.net.featurizer, loader, int(self.hparams.get("stats_batches", 50)))
        self.stats_ready = True

    def on_fit_start(self) -> None:
        dm = self.trainer.datamodule
        if dm is not None and self._needs_stats():
            self._fit_stats(dm.train_dataloader())  # a fresh loader: the trainer's own is not touched

    def on_train_start(self) -> None:
        if self._needs_stats():  # dataloaders passed to Trainer.fit directly: available from here on
            self._fit_stats(self.trainer.train_dataloader)

    # --- optimisation -----------------------------------------------------------------------------
    def optimizer_parameters(self):
        """What the (main) optimizer updates."""
        return self.parameters()

    def configure_optimizers(self):
        opt = self.optimizer_factory(self.optimizer_parameters())
        if self.scheduler_factory is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": self.scheduler_factory(opt), "interval": "step"}}

    # --- checkpoints ------------------------------------------------------------------------------
    def zoo_config_extra(self) -> dict:
        """Extra config.json fields of the net (e.g. the text normaliser)."""
        return {}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["zoo_config"] = model_config(self.net, **self.zoo_config_extra())
        tok_file = getattr(getattr(self.net, "tokenizer", None), "model_file", None)
        if tok_file is not None:
            checkpoint["zoo_tokenizer_bytes"] = Path(tok_file).read_bytes()
