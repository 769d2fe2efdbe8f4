"""``SpeechDataModule``: the one DataModule every zoo task trains on."""
from __future__ import annotations

import hashlib
import random
from typing import Callable

import lightning as L
import numpy as np
import torch
import torchaudio.functional as AF
from lhotse import CutSet
from lhotse.cut import MixedCut
from lhotse.dataset import DynamicBucketingSampler, SimpleCutSampler
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader, Dataset

from zoo.data.an4 import an4_cuts, an4_speaker_split
from zoo.data.augment import WaveAugment
from zoo.data.corpora import CORPORA, SPEAKER_RECIPES, corpus_cuts
from zoo.data.manifest import load_cuts
from zoo.data.mix import SessionMixer, cut_turns, fixed_sessions
from zoo.errors import ZooError

BATCH_TAG = "_zoo_batch"  # attribute of the CutSets a resumable sampler yields: (epoch, index in the epoch)


def seed_of(*key) -> int:
    """A 63-bit seed from any key (stable across processes and Python runs, unlike ``hash``)."""
    digest = hashlib.blake2b(":".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class AudioBatchDataset(Dataset):
    """Maps a CutSet (one sampler batch) to a padded batch dict:

    ``audio`` (B, S) float32, ``audio_lens`` (B,), ``text``, ``speaker``, ``gender``, ``id`` (lists), ``turns``
    (per cut, its supervisions as ``(speaker, start_s, end_s, text)`` in start order), and with
    ``speaker_index`` (speaker -> class) also ``speaker_index`` (B,) long, -1 for speakers not in the map; with
    ``cohort_map`` (speaker -> cohort id) also ``cohort`` (B,) long, -1 for speakers not in the map (unknown).
    ``cut_transforms`` (CutSet -> CutSet, applied per batch before loading) is where on-the-fly
    augmentation and multi-speaker mixing plug in; ``wave_augment`` ((S,) -> (S,)) runs on each waveform.

    ``wave_augment`` draws from torch's generator seeded per utterance from ``(seed, epoch, batch index,
    position, cut id)`` (the batch's ``BATCH_TAG``, set by the DataModule's samplers; without one, from the
    cut id alone): the same batch is augmented the same way in any worker process and after a resume.
    """

    def __init__(self, sample_rate: int = 16000, cut_transforms: list[Callable[[CutSet], CutSet]] | None = None,
                 speaker_index: dict[str, int] | None = None,
                 wave_augment: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0,
                 cohort_map: dict[str, int] | None = None):
        self.sample_rate = sample_rate
        self.cohort_map = cohort_map
        self.wave_augment = wave_augment
        self.cut_transforms = list(cut_transforms or [])
        self.speaker_index = speaker_index
        self.seed = seed

    def _augment(self, wav: torch.Tensor, tag, i: int, cut_id: str) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):  # leaves the global generator as it was
            torch.manual_seed(seed_of(self.seed, tag, i, cut_id))
            return self.wave_augment(wav)

    def __getitem__(self, cuts: CutSet) -> dict:
        tag = getattr(cuts, BATCH_TAG, None)
        for tf in self.cut_transforms:
            cuts = tf(cuts)
        wavs, texts, spks, genders, ids, turns = [], [], [], [], [], []
        for i, c in enumerate(cuts):
            a = torch.from_numpy(np.asarray(c.load_audio(), dtype=np.float32))
            a = a.mean(0) if a.dim() == 2 else a
            if c.sampling_rate != self.sample_rate:
                a = AF.resample(a, c.sampling_rate, self.sample_rate)
            if self.wave_augment is not None:
                a = self._augment(a, tag, i, c.id)
            wavs.append(a)
            sup = c.supervisions[0] if c.supervisions else None
            texts.append(" ".join(s.text or "" for s in c.supervisions).strip())
            spks.append(sup.speaker if sup else None)
            genders.append(getattr(sup, "gender", None) if sup else None)
            ids.append(c.id)
            turns.append(cut_turns(c))
        lens = torch.tensor([w.numel() for w in wavs])
        batch = {"audio": torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), "audio_lens": lens,
                 "text": texts, "speaker": spks, "gender": genders, "id": ids, "turns": turns}
        if self.speaker_index is not None:
            batch["speaker_index"] = torch.tensor([self.speaker_index.get(s, -1) for s in spks], dtype=torch.long)
        if self.cohort_map is not None:
            batch["cohort"] = torch.tensor([self.cohort_map.get(str(s), -1) for s in spks], dtype=torch.long)
        return batch


class SpeakerBalancedSampler(torch.utils.data.Sampler):
    """Batches of ``speakers_per_batch`` (P) distinct speakers x ``utts_per_speaker`` (K) utterances each, as
    CutSets (for metric learning: every utterance has K-1 same-speaker partners in its batch).

    An epoch has ``len(cuts) // (P*K)`` batches. Each batch draws P speakers uniformly without replacement;
    each speaker's utterances are served from its own shuffled queue (reshuffled when used up), so every
    utterance is seen before any repeats. Speakers with fewer than 2 utterances are left out. Deterministic
    in ``(seed, epoch)``; under DDP each rank takes every ``world_size``-th batch.
    """

    def __init__(self, cuts: CutSet, speakers_per_batch: int = 8, utts_per_speaker: int = 4, seed: int = 0,
                 world_size: int | None = None, rank: int | None = None):
        super().__init__()
        self.by_spk: dict[str, list] = {}
        for c in cuts:
            self.by_spk.setdefault(c.supervisions[0].speaker, []).append(c)
        self.speakers = sorted(s for s, cs in self.by_spk.items() if len(cs) >= 2)
        self.p, self.k, self.seed = speakers_per_batch, utts_per_speaker, seed
        if self.k < 2 or self.p < 2:
            raise ValueError("speaker-balanced batches need at least 2 speakers x 2 utterances")
        if len(self.speakers) < self.p:
            raise ValueError(f"only {len(self.speakers)} speakers with >= 2 utterances; "
                             f"cannot draw {self.p} per batch")
        self.world, self.rank = world_size or 1, rank or 0
        n = sum(len(self.by_spk[s]) for s in self.speakers)
        self.num_batches = max(self.world, n // (self.p * self.k)) // self.world * self.world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches // self.world

    def __iter__(self):
        rng = random.Random(f"{self.seed}-{self.epoch}")
        queues: dict[str, list] = {}
        for b in range(self.num_batches):
            batch = []
            for spk in rng.sample(self.speakers, self.p):
                for _ in range(self.k):
                    if not queues.get(spk):
                        queues[spk] = rng.sample(self.by_spk[spk], len(self.by_spk[spk]))
                    batch.append(queues[spk].pop())
            if b % self.world == self.rank:
                yield CutSet.from_cuts(batch)


# --- resumable samplers ------------------------------------------------------------------------------
class _Resumable:
    """Sampler mixin: every batch (a CutSet) is tagged ``BATCH_TAG = (epoch, index)``, and after
    :meth:`resume_at` the next iteration of that epoch skips the batches a checkpointed run already trained on
    (by drawing them from the sampler, without loading any audio). The epoch is read when iteration starts."""

    _zoo_resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, batches: int) -> None:
        """The next iteration, if it is of ``epoch``, starts at batch ``batches`` (once)."""
        self.set_epoch(epoch)
        self._zoo_resume = (int(epoch), int(batches))

    def __iter__(self):
        epoch = int(getattr(self, "epoch", 0))
        resume, self._zoo_resume = self._zoo_resume, None
        skip = resume[1] if resume is not None and resume[0] == epoch else 0
        it = super().__iter__()  # lhotse samplers return themselves: advance with next(), never iter() again
        i = 0
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            if i >= skip:
                setattr(batch, BATCH_TAG, (epoch, i))
                yield batch
            i += 1


class ResumableDynamicBucketingSampler(_Resumable, DynamicBucketingSampler):
    """lhotse's DynamicBucketingSampler + :class:`_Resumable`."""


class ResumableSimpleCutSampler(_Resumable, SimpleCutSampler):
    """lhotse's SimpleCutSampler + :class:`_Resumable`."""


class ResumableSpeakerBalancedSampler(_Resumable, SpeakerBalancedSampler):
    """:class:`SpeakerBalancedSampler` + :class:`_Resumable`."""


class SpeechDataModule(L.LightningDataModule):
    """Duration-bucketed batches of audio + transcripts from a corpus recipe or manifests.

    Args:
        corpus: a built-in recipe (``"an4"``: ASR train/dev/test; ``"an4_spk"``: the speaker-disjoint speaker
            verification split, train / val = dev speakers / test = eval speakers; ``"an4_so762_spk"``: the
            speaker verification split over AN4 + speechocean762, ``zoo.data.corpora.sv_speaker_split``, test =
            speechocean762 test; any other ``zoo.data.corpora.CORPORA`` name: its train / dev / test) or None
            to use the manifests.
        data_dir: corpus location (default ``$ZOO_DATA`` or ``../shared/data``).
        train_manifest, val_manifest, test_manifest: NeMo JSONL or lhotse cut manifests
            (override the recipe's splits when given).
        max_duration: seconds of audio per batch (lhotse DynamicBucketingSampler).
        num_buckets: duration buckets (1: no bucketing).
        speed_perturb: e.g. ``[0.9, 1.1]``: adds speed-perturbed copies of the training cuts.
        max_cut_duration: training cuts longer than this (s) are dropped.
        lazy: read manifests lazily (corpora larger than RAM).
        sampler: ``"bucketing"`` (duration buckets, ``max_duration`` s per batch) or ``"speaker_balanced"``
            (training batches of ``speakers_per_batch`` x ``utts_per_speaker``; see SpeakerBalancedSampler).
        speaker_labels: add ``speaker_index`` (class label from the sorted training speakers) to every batch;
            None = on for the speaker recipes (``an4_spk``, ``an4_so762_spk``) and the speaker-balanced sampler.
        mix: two-speaker sessions (``zoo.data.mix.SessionMixer`` kwargs, e.g. ``{max_turns: 4, overlap_weights:
            {none: 0.4, heavy: 0.2, ...}}``): every training cut becomes the first turn of a session mixed on
            the fly from the training cuts; val / test become fixed sessions of the val / test speakers only
            (``mix_val_sessions`` / ``mix_test_sessions``, default mixer settings; a ``zoo data an4-mix``
            manifest given as ``val_manifest`` / ``test_manifest`` is used as it is). Sessions are longer
            than their first cut: lower ``max_duration`` to match.
        oversample: ``{speakers: [ids] | file, factor: n}``: training cuts of these speakers appear ``n`` times
            per epoch (copies with new ids; the same as sampling them with weight ``n``), e.g. the bottom cohort
            of a fairness audit. ``file``: one speaker per line, or JSON (a list or ``{"speakers": [...]}``).
        corpora: a weighted mix of corpus recipes instead of ``corpus``, e.g. ``{an4: 3, speechocean762: 1}``:
            each weight is the number of passes over that corpus's training cuts per epoch (fractions take a
            seeded random subset); val = the union of their dev sets, test = the union of their test sets.
        augment: waveform augmentation of training audio (``zoo.data.augment.WaveAugment`` kwargs, e.g.
            ``{bandwidth_prob: 0.3, gain_db: [-6, 6]}``).
        require_text: every manifest line needs a reference ``text`` (``zoo.data.manifest.read_manifest``);
            None = yes unless the batches carry speaker labels (speaker verification trains without text).
        cohorts: speaker -> cohort id (a JSON file, ``{speaker: id}`` or ``{"speakers": {speaker: id}, ...}`` as
            ``scripts/cohort_input.py`` writes, or a dict): every batch carries ``cohort`` (B,) long, -1 for a
            speaker not in the map (val / test speakers: the model finds their cohort from the audio). Every
            training speaker must be in the map.

    Exact resume: ``state_dict()`` (saved in every checkpoint by Lightning) holds the training epoch and the
    batches of it already trained on; after ``--ckpt_path`` the training sampler skips those batches, so the
    resumed run sees exactly the batches of an uninterrupted one. Randomness does not depend on how often a
    global generator was drawn from before the kill: samplers are seeded by ``(seed, epoch)``, waveform
    augmentation per utterance (:class:`AudioBatchDataset`), and torch's global generator (SpecAugment,
    dropout) is re-seeded before every training batch from ``(seed, epoch, batch index, rank)``.
    """

    def __init__(self, corpus: str | None = "an4", data_dir: str | None = None,
                 train_manifest: str | None = None, val_manifest: str | None = None,
                 test_manifest: str | None = None, sample_rate: int = 16000, max_duration: float = 60.0,
                 num_buckets: int = 8, num_workers: int = 0, speed_perturb: list[float] | None = None,
                 max_cut_duration: float = 30.0, lazy: bool = False, seed: int = 0, sampler: str = "bucketing",
                 speakers_per_batch: int = 8, utts_per_speaker: int = 4, speaker_labels: bool | None = None,
                 mix: dict | None = None, mix_val_sessions: int = 100, mix_test_sessions: int = 200,
                 oversample: dict | None = None, corpora: dict[str, float] | None = None,
                 augment: dict | None = None, require_text: bool | None = None,
                 cohorts: str | dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.cuts: dict[str, CutSet] = {}
        self.cut_transforms: list[Callable[[CutSet], CutSet]] = []
        self.speaker_index: dict[str, int] | None = None
        self.cohort_map: dict[str, int] | None = None
        self._resume: tuple[int, int] | None = None  # (epoch, batches trained on) from a checkpoint
        if sampler not in ("bucketing", "speaker_balanced"):
            raise ValueError(f"unknown sampler {sampler!r}; use 'bucketing' or 'speaker_balanced'")

    def setup(self, stage: str | None = None) -> None:
        if self.cuts:
            return
        h = self.hparams
        if h.corpora:
            self.cuts = mixed_corpora(h.corpora, h.data_dir, seed=h.seed)
        elif h.corpus == "an4":
            rec = an4_cuts(h.data_dir)
            self.cuts = {"train": rec["train"], "val": rec["dev"], "test": rec["test"]}
        elif h.corpus == "an4_spk":
            rec = an4_speaker_split(h.data_dir)
            self.cuts = {"train": rec["train"], "val": rec["dev"], "test": rec["eval"]}
        elif h.corpus in CORPORA:
            rec = corpus_cuts(h.corpus, h.data_dir)
            self.cuts = {split: rec[name] for split, name in (("train", "train"), ("val", "dev"), ("test", "test"))
                         if name in rec}
        elif h.corpus is not None:
            raise ValueError(f"unknown corpus {h.corpus!r}; use one of {', '.join(sorted(CORPORA))} "
                             "or corpus: null with manifests")
        labels = h.speaker_labels
        if labels is None:
            labels = h.corpus in SPEAKER_RECIPES or h.sampler == "speaker_balanced"
        require_text = not labels if h.require_text is None else h.require_text
        for split, m in (("train", h.train_manifest), ("val", h.val_manifest), ("test", h.test_manifest)):
            if m:
                self.cuts[split] = load_cuts(m, lazy=h.lazy, require_text=require_text)
        if h.mix is not None:
            self._setup_mix()
        if labels and "train" in self.cuts:
            spk = sorted({c.supervisions[0].speaker for c in self.cuts["train"] if c.supervisions}, key=str)
            self.speaker_index = {s: i for i, s in enumerate(spk)}
        if h.cohorts is not None:
            self.cohort_map = load_cohort_map(h.cohorts)
            if "train" in self.cuts:
                check_cohort_coverage(self.cuts["train"], self.cohort_map, h.cohorts)

    def _setup_mix(self) -> None:
        h = self.hparams
        if "train" in self.cuts:
            self.cut_transforms.append(SessionMixer(self.train_cuts(), seed=h.seed, **h.mix))
        for split, name, n in (("val", "dev", h.mix_val_sessions), ("test", "test", h.mix_test_sessions)):
            cuts = self.cuts.get(split)
            if cuts is not None and not isinstance(next(iter(cuts), None), MixedCut):
                self.cuts[split] = fixed_sessions(cuts, name, n)

    @property
    def num_speakers(self) -> int:
        """Training speakers (classes of ``speaker_index``); 0 without speaker labels."""
        return len(self.speaker_index or {})

    def _world(self):
        t = getattr(self, "trainer", None)
        if t is not None and t.world_size > 1:
            return t.world_size, t.global_rank
        return None, None

    def _loader(self, cuts: CutSet, shuffle: bool) -> DataLoader:
        world, rank = self._world()
        h = self.hparams
        if shuffle and h.sampler == "speaker_balanced":
            sampler = ResumableSpeakerBalancedSampler(cuts, h.speakers_per_batch, h.utts_per_speaker, seed=h.seed,
                                                      world_size=world, rank=rank)
        elif h.num_buckets > 1:
            sampler = ResumableDynamicBucketingSampler(cuts, max_duration=h.max_duration, shuffle=shuffle,
                                                       num_buckets=h.num_buckets, seed=h.seed, world_size=world,
                                                       rank=rank, drop_last=False)
        else:  # lhotse's bucketing sampler asserts num_buckets > 1
            sampler = ResumableSimpleCutSampler(cuts, max_duration=h.max_duration, shuffle=shuffle, seed=h.seed,
                                                world_size=world, rank=rank, drop_last=False)
        if shuffle and self._resume is not None:
            # set the epoch now too: Lightning may fetch the first batch before it calls set_epoch
            sampler.resume_at(*self._resume)
        wave_augment = WaveAugment(self.hparams.sample_rate, **h.augment) if shuffle and h.augment else None
        ds = AudioBatchDataset(self.hparams.sample_rate, self.cut_transforms if shuffle else None,
                               speaker_index=self.speaker_index, wave_augment=wave_augment, seed=h.seed,
                               cohort_map=self.cohort_map)
        return DataLoader(ds, sampler=sampler, batch_size=None, num_workers=self.hparams.num_workers,
                          persistent_workers=self.hparams.num_workers > 0)

    def train_cuts(self) -> CutSet:
        base = self.cuts["train"].filter(lambda c: c.duration <= self.hparams.max_cut_duration)
        if self.hparams.oversample:
            base = oversample_speakers(base, **self.hparams.oversample)
        if not self.hparams.speed_perturb:
            return base
        base = base.to_eager()
        parts = [base] + [base.perturb_speed(f) for f in self.hparams.speed_perturb]
        return CutSet.mux(*parts) if self.hparams.lazy else sum(parts[1:], parts[0]).to_eager()

    def train_dataloader(self):
        return self._loader(self.train_cuts(), shuffle=True)

    def plain_dataloader(self, split: str = "train"):
        """Unshuffled duration-bucketed batches of a split's cuts, no augmentation (e.g. to embed the training
        set)."""
        return self._loader(self.cuts[split], shuffle=False)

    def val_dataloader(self):
        return self._loader(self.cuts["val"], shuffle=False)

    def test_dataloader(self):
        return self._loader(self.cuts["test"], shuffle=False)

    # --- exact resume ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"epoch", "batches"}``: the training epoch and how many of its batches were trained on (Lightning
        saves this in every checkpoint written while fitting; ``{}`` otherwise). A checkpoint written after an
        epoch's last batch points at the start of the next epoch."""
        t = self.trainer
        if t is None or t.state.fn != TrainerFn.FITTING:
            return {}
        loop = t.fit_loop
        epoch = loop.epoch_progress.current.processed  # the epoch Lightning hands to sampler.set_epoch
        batches = loop.epoch_loop.batch_progress.current.processed  # includes the batch being finished
        if loop.epoch_loop.batch_progress.is_last_batch:
            epoch, batches = epoch + 1, 0
        return {"epoch": int(epoch), "batches": int(batches)}

    def load_state_dict(self, state_dict: dict) -> None:
        """Resume point from a checkpoint: the next training dataloader starts there (see ``state_dict``)."""
        if state_dict and "epoch" in state_dict:
            self._resume = (int(state_dict["epoch"]), int(state_dict["batches"]))

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        """Before every training batch: re-seed torch's global generator from ``(seed, epoch, batch index,
        rank)``, so model-side randomness (SpecAugment, dropout) is the same after a resume."""
        t = self.trainer
        if t is not None and t.training:
            loop = t.fit_loop
            torch.manual_seed(seed_of(self.hparams.seed, "step", loop.epoch_progress.current.processed,
                                      loop.epoch_loop.batch_progress.current.ready, t.global_rank))
            self._resume = None  # training is under way: later dataloaders start their epochs from the top
        return batch


def oversample_speakers(cuts: CutSet, speakers, factor: int = 2) -> CutSet:
    """``cuts`` plus ``factor - 1`` extra copies (ids suffixed ``_os<k>``) of the cuts of ``speakers``
    (a list, or a file: one id per line, or JSON list / ``{"speakers": [...]}``)."""
    import json
    from pathlib import Path

    if isinstance(speakers, (str, Path)):
        text = Path(speakers).read_text()
        data = json.loads(text) if str(speakers).endswith(".json") else text.split()
        speakers = data.get("speakers", []) if isinstance(data, dict) else data
    want = {str(s) for s in speakers}
    if int(factor) < 1 or not want:
        raise ValueError(f"oversample needs speakers and factor >= 1 (got {len(want)} speakers, factor {factor})")
    cuts = cuts.to_eager()
    picked = cuts.filter(lambda c: bool(c.supervisions) and str(c.supervisions[0].speaker) in want).to_eager()
    if not len(picked):
        raise ValueError(f"oversample: none of the {len(want)} speakers has training cuts")
    for k in range(1, int(factor)):
        cuts = cuts + picked.modify_ids(lambda i, k=k: f"{i}_os{k}")
    return cuts


def load_cohort_map(src: str | dict) -> dict[str, int]:
    """``{speaker: cohort id}`` from a dict or a JSON file holding one (or ``{"speakers": {...}}``, the file
    ``scripts/cohort_input.py`` writes)."""
    import json
    from pathlib import Path

    what = "cohorts" if isinstance(src, dict) else str(src)
    data = src
    if not isinstance(src, dict):
        try:
            data = json.loads(Path(src).read_text())
        except FileNotFoundError:
            raise ZooError(f"cohort file not found: {src} — make it with scripts/cohort_input.py") from None
        except json.JSONDecodeError as e:
            raise ZooError(f"{src} is not valid JSON ({e.msg}) — give the file scripts/cohort_input.py "
                           "writes") from None
    if isinstance(data, dict) and isinstance(data.get("speakers"), dict):
        data = data["speakers"]
    if not isinstance(data, dict) or not data:
        raise ZooError(f"{what}: no speaker -> cohort map — give {{speaker: cohort id}} or the file "
                       "scripts/cohort_input.py writes")
    out = {}
    for spk, c in data.items():
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            raise ZooError(f"{what}: speaker {spk!r} has cohort {c!r} — cohort ids are whole numbers >= 0")
        out[str(spk)] = c
    return out


def check_cohort_coverage(cuts: CutSet, cohort_map: dict[str, int], src) -> None:
    """Every training speaker has a cohort (the data loader cannot find one from the audio)."""
    missing = sorted({str(c.supervisions[0].speaker if c.supervisions else None) for c in cuts} - set(cohort_map))
    if missing:
        where = "the cohorts map" if isinstance(src, dict) else src
        raise ZooError(f"{len(missing)} training speaker(s) have no cohort in {where} (e.g. "
                       f"{', '.join(missing[:3])}) — rebuild it over this training data with scripts/cohort_input.py")


def mixed_corpora(weights: dict[str, float], data_dir=None, seed: int = 0) -> dict[str, CutSet]:
    """{"train", "val", "test"} of several corpus recipes: train holds ``weight`` passes over each corpus's
    training cuts (whole copies with ids suffixed ``_rep<k>`` plus a seeded subset for the fraction); val / test
    are the unions of the corpora's dev / test splits (corpora without one add nothing)."""
    if not weights or any(float(w) < 0 for w in weights.values()):
        raise ValueError(f"corpora needs corpus names with non-negative weights, got {weights!r}")
    out: dict[str, list] = {"train": [], "val": [], "test": []}
    rng = random.Random(seed)
    for name in sorted(weights):
        rec = corpus_cuts(name, data_dir)
        w = float(weights[name])
        if "train" in rec and w > 0:
            train = rec["train"].to_eager()
            whole, frac = int(w), w - int(w)
            for k in range(whole):
                out["train"].append(train if k == 0 else train.modify_ids(lambda i, k=k: f"{i}_rep{k}"))
            if frac > 0:
                ids = sorted(train.ids)
                keep = set(rng.sample(ids, int(round(frac * len(ids)))))
                out["train"].append(train.filter(lambda c: c.id in keep).modify_ids(lambda i: f"{i}_rep{whole}"))
        if "dev" in rec:
            out["val"].append(rec["dev"])
        if "test" in rec:
            out["test"].append(rec["test"])
    return {k: sum(v[1:], v[0]).to_eager() for k, v in out.items() if v}
