"""``SpeechDataModule``: the one DataModule every zoo task trains on."""
from __future__ import annotations

from typing import Callable

import lightning as L
import numpy as np
import torch
import torchaudio.functional as AF
from lhotse import CutSet
from lhotse.dataset import DynamicBucketingSampler, SimpleCutSampler
from torch.utils.data import DataLoader, Dataset

from zoo.data.an4 import an4_cuts
from zoo.data.manifest import load_cuts


class AudioBatchDataset(Dataset):
    """Maps a CutSet (one sampler batch) to a padded batch dict:

    ``audio`` (B, S) float32, ``audio_lens`` (B,), ``text``, ``speaker``, ``gender``, ``id`` (lists).
    ``cut_transforms`` (CutSet -> CutSet, applied per batch before loading) is where on-the-fly
    augmentation and multi-speaker mixing plug in.
    """

    def __init__(self, sample_rate: int = 16000, cut_transforms: list[Callable[[CutSet], CutSet]] | None = None):
        self.sample_rate = sample_rate
        self.cut_transforms = list(cut_transforms or [])

    def __getitem__(self, cuts: CutSet) -> dict:
        for tf in self.cut_transforms:
            cuts = tf(cuts)
        wavs, texts, spks, genders, ids = [], [], [], [], []
        for c in cuts:
            a = torch.from_numpy(np.asarray(c.load_audio(), dtype=np.float32))
            a = a.mean(0) if a.dim() == 2 else a
            if c.sampling_rate != self.sample_rate:
                a = AF.resample(a, c.sampling_rate, self.sample_rate)
            wavs.append(a)
            sup = c.supervisions[0] if c.supervisions else None
            texts.append(" ".join(s.text or "" for s in c.supervisions).strip())
            spks.append(sup.speaker if sup else None)
            genders.append(getattr(sup, "gender", None) if sup else None)
            ids.append(c.id)
        lens = torch.tensor([w.numel() for w in wavs])
        return {"audio": torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), "audio_lens": lens,
                "text": texts, "speaker": spks, "gender": genders, "id": ids}


class SpeechDataModule(L.LightningDataModule):
    """Duration-bucketed batches of audio + transcripts from a corpus recipe or manifests.

    Args:
        corpus: a built-in recipe (``"an4"``) or None to use the manifests below.
        data_dir: corpus location (default ``$ZOO_DATA`` or ``../shared/data``).
        train_manifest, val_manifest, test_manifest: NeMo JSONL or lhotse cut manifests
            (override the recipe's splits when given).
        max_duration: seconds of audio per batch (lhotse DynamicBucketingSampler).
        num_buckets: duration buckets (1: no bucketing).
        speed_perturb: e.g. ``[0.9, 1.1]``: adds speed-perturbed copies of the training cuts.
        max_cut_duration: training cuts longer than this (s) are dropped.
        lazy: read manifests lazily (corpora larger than RAM).
    """

    def __init__(self, corpus: str | None = "an4", data_dir: str | None = None,
                 train_manifest: str | None = None, val_manifest: str | None = None,
                 test_manifest: str | None = None, sample_rate: int = 16000, max_duration: float = 60.0,
                 num_buckets: int = 8, num_workers: int = 0, speed_perturb: list[float] | None = None,
                 max_cut_duration: float = 30.0, lazy: bool = False, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.cuts: dict[str, CutSet] = {}
        self.cut_transforms: list[Callable[[CutSet], CutSet]] = []

    def setup(self, stage: str | None = None) -> None:
        if self.cuts:
            return
        h = self.hparams
        if h.corpus == "an4":
            rec = an4_cuts(h.data_dir)
            self.cuts = {"train": rec["train"], "val": rec["dev"], "test": rec["test"]}
        elif h.corpus is not None:
            raise ValueError(f"unknown corpus {h.corpus!r}; use 'an4' or corpus: null with manifests")
        for split, m in (("train", h.train_manifest), ("val", h.val_manifest), ("test", h.test_manifest)):
            if m:
                self.cuts[split] = load_cuts(m, lazy=h.lazy)

    def _world(self):
        t = getattr(self, "trainer", None)
        if t is not None and t.world_size > 1:
            return t.world_size, t.global_rank
        return None, None

    def _loader(self, cuts: CutSet, shuffle: bool) -> DataLoader:
        world, rank = self._world()
        h = self.hparams
        if h.num_buckets > 1:
            sampler = DynamicBucketingSampler(cuts, max_duration=h.max_duration, shuffle=shuffle,
                                              num_buckets=h.num_buckets, seed=h.seed, world_size=world, rank=rank,
                                              drop_last=False)
        else:  # lhotse's bucketing sampler asserts num_buckets > 1
            sampler = SimpleCutSampler(cuts, max_duration=h.max_duration, shuffle=shuffle, seed=h.seed,
                                       world_size=world, rank=rank, drop_last=False)
        ds = AudioBatchDataset(self.hparams.sample_rate, self.cut_transforms if shuffle else None)
        return DataLoader(ds, sampler=sampler, batch_size=None, num_workers=self.hparams.num_workers,
                          persistent_workers=self.hparams.num_workers > 0)

    def train_cuts(self) -> CutSet:
        base = self.cuts["train"].filter(lambda c: c.duration <= self.hparams.max_cut_duration)
        if not self.hparams.speed_perturb:
            return base
        base = base.to_eager()
        parts = [base] + [base.perturb_speed(f) for f in self.hparams.speed_perturb]
        return CutSet.mux(*parts) if self.hparams.lazy else sum(parts[1:], parts[0]).to_eager()

    def train_dataloader(self):
        return self._loader(self.train_cuts(), shuffle=True)

    def val_dataloader(self):
        return self._loader(self.cuts["val"], shuffle=False)

    def test_dataloader(self):
        return self._loader(self.cuts["test"], shuffle=False)
