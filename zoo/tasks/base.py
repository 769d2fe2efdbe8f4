"""Pieces shared by the training objectives."""
from __future__ import annotations

import lightning as L
import torch


def fit_featurizer_stats(module: L.LightningModule, featurizer, n_batches: int) -> None:
    """Set ``featurizer``'s global mean/std from the first ``n_batches`` training batches (valid frames only).

    Moments are summed over DDP ranks, so every rank gets the same statistics.
    """
    dev = module.device
    s = torch.zeros(featurizer.dim, dtype=torch.float64, device=dev)
    s2, n = torch.zeros_like(s), torch.zeros((), dtype=torch.float64, device=dev)
    trainer = module.trainer
    dm = trainer.datamodule
    loader = dm.train_dataloader() if dm is not None else trainer.fit_loop._data_source.dataloader()
    for i, batch in enumerate(loader):
        if i >= n_batches:
            break
        feats = featurizer.raw(batch["audio"].to(dev)).double()
        nf = featurizer.num_frames(batch["audio_lens"].to(dev))
        mask = torch.arange(feats.shape[1], device=dev)[None] < nf[:, None]
        x = feats[mask]
        s += x.sum(0); s2 += (x * x).sum(0); n += x.shape[0]
    # every rank saw different batches: sum the moments over ranks so all ranks get the same stats
    s, s2, n = (trainer.strategy.reduce(t, reduce_op="sum") for t in (s, s2, n))
    if n <= 0:
        raise RuntimeError("no training audio frames to estimate the featurizer statistics from "
                           "(empty training set, or stats_batches: 0 when training from scratch)")
    mean = s / n
    featurizer.set_stats(mean.float(), (s2 / n - mean ** 2).clamp_min(0).sqrt().float())


def pretrained_net(init_from: str, cls: type, what: str):
    """``init_from`` (zoo name, folder or Hub id) -> its net in train mode, checked to be a ``cls`` (``what`` names it
    in the error). from_pretrained returns eval mode and Lightning keeps the modes it finds, so without
    ``.train()`` fine-tuning would silently run with dropout off."""
    from zoo.hub import from_pretrained

    from zoo.errors import ZooError

    net = from_pretrained(init_from).train()
    if not isinstance(net, cls):
        raise ZooError(f"{init_from!r} is not {what}; pick one from `zoo list`, a model folder or a Hub id")
    return net
