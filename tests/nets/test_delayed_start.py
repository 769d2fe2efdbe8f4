"""TransducerTask.delayed_start: the encoder's delayed parameters (ConvRNN-T's CNN branches and fusion) stay
frozen for the first steps of a real Lightning fit on AN4, while the rest trains; afterwards they train too."""
from __future__ import annotations

import lightning as L
import torch

from helpers import TINY_ENCODERS, TINY_MODEL


class Snapshots(L.Callback):
    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, task, *args):
        enc = task.net.encoder
        self.rows.append({"fuse": enc.fuse.weight.detach().clone(), "local": enc.local[0].conv.weight.detach().clone(),
                          "lstm": enc.lstm.weight_ih_l0.detach().clone()})


def test_delayed_parameters_are_frozen_then_trained(an4_root, tmp_path):
    from zoo.data import SpeechDataModule
    from zoo.tasks import TransducerTask

    torch.manual_seed(0)
    task = TransducerTask(encoder=TINY_ENCODERS["convrnnt"], predictor=TINY_MODEL["predictor"],
                          joiner=TINY_MODEL["joiner"], featurizer=TINY_MODEL["featurizer"], stats_batches=2,
                          spec_augment=None, delayed_start=2,
                          optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.01))
    enc = task.net.encoder
    init = {"fuse": enc.fuse.weight.detach().clone(), "local": enc.local[0].conv.weight.detach().clone(),
            "lstm": enc.lstm.weight_ih_l0.detach().clone()}
    assert not init["fuse"].any()  # zero-initialised fusion
    dm = SpeechDataModule(corpus="an4", data_dir=str(an4_root.parent), max_duration=8, num_buckets=1,
                          max_cut_duration=4.0)
    snaps = Snapshots()
    L.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0, callbacks=[snaps],
              default_root_dir=tmp_path).fit(task, datamodule=dm)
    rows = snaps.rows
    assert len(rows) == 4
    for r in rows[:2]:  # steps 0 and 1: branches untouched (no weight decay either), LSTM trains
        assert torch.equal(r["fuse"], init["fuse"]) and torch.equal(r["local"], init["local"])
        assert not torch.equal(r["lstm"], init["lstm"])
    assert rows[3]["fuse"].abs().sum() > 0  # from step 2 on the fusion trains ...
    assert not torch.equal(rows[3]["local"], init["local"])  # ... and, through it, the local CNN
