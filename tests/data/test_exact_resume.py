"""Exact resume: a run killed after step 3 and resumed with ``--ckpt_path last.ckpt`` trains on exactly the batches
(and augmentation) of an uninterrupted run, so both end with the same weights.

The checkpoint is written by ``ModelCheckpoint(every_n_train_steps=3)`` in ``on_train_batch_end`` of step 3, mid
epoch, while Lightning has already prefetched batch 4: exactly the file a killed run leaves behind.
"""
from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from zoo.cli.lightning import run

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "ci" / "tiny.yaml")


class RecordBatches(L.Callback):
    """The cut ids and a checksum of the (augmented) audio of every training batch."""

    def __init__(self):
        self.batches: list[tuple[list[str], float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append((list(batch["id"]), float(batch["audio"].double().sum())))


def _fit(root: Path, data: list[str], max_steps: int, ckpt: Path | None = None, every: int = 3):
    callbacks = [{"class_path": f"{__name__}.RecordBatches"},
                 {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                  "init_args": {"dirpath": str(root / "checkpoints"), "every_n_train_steps": every,
                                "save_last": True, "save_top_k": -1, "filename": "step{step}"}}]
    args = ["fit", "--config", TINY, "--trainer.default_root_dir", str(root), *data,
            "--trainer.max_steps", str(max_steps), "--trainer.limit_val_batches", "0", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.callbacks", json.dumps(callbacks),
            # randomness on both sides of the loader: waveform augmentation in the dataset, SpecAugment in the task
            "--data.augment", json.dumps({"bandwidth_prob": 0.5, "gain_db": [-6, 6]})]
    if ckpt is not None:
        args += ["--ckpt_path", str(ckpt)]
    cli = run(args)
    rec = next(cb for cb in cli.trainer.callbacks if isinstance(cb, RecordBatches))
    return cli, rec.batches


def _five_utterances(tmp_path: Path, an4_wavs: list[Path]) -> list[str]:
    """A 5-utterance training set: 3 batches per epoch at max_duration 8 (length unknown to Lightning)."""
    import soundfile as sf

    m = tmp_path / "five.jsonl"
    m.write_text("".join(json.dumps({"audio_filepath": str(w), "duration": sf.info(str(w)).duration,
                                     "text": "HELLO"}) + "\n" for w in an4_wavs))
    return ["--data.corpus", "null", "--data.train_manifest", str(m), "--data.val_manifest", str(m),
            "--data.max_duration", "8", "--trainer.limit_train_batches", "1.0"]


# (name, kill after step, total steps, the checkpoint's SpeechDataModule state)
SCENARIOS = {
    "mid_epoch": (3, 6, {"epoch": 0, "batches": 3}),  # AN4, step 3 of a long epoch 0
    "epoch_end": (3, 6, {"epoch": 1, "batches": 0}),  # AN4 limited to 3 batches: the kill comes after epoch 0
    "later_epoch": (5, 8, {"epoch": 1, "batches": 2}),  # 3 batches per epoch: step 5 is the 2nd of epoch 1
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_resume_sees_the_batches_of_an_uninterrupted_run(tmp_path, an4_root, an4_wavs, scenario):
    kill, total, state = SCENARIOS[scenario]
    data = {"mid_epoch": ["--data.data_dir", str(an4_root), "--trainer.limit_train_batches", "1.0"],
            "epoch_end": ["--data.data_dir", str(an4_root), "--trainer.limit_train_batches", "3"],
            "later_epoch": _five_utterances(tmp_path, an4_wavs)}[scenario]
    full, full_batches = _fit(tmp_path / "full", data, total, every=kill)
    assert full.trainer.global_step == total and len(full_batches) == total

    _, first_batches = _fit(tmp_path / "killed", data, kill, every=kill)
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == kill and first_batches == full_batches[:kill]

    resumed, resumed_batches = _fit(tmp_path / "resumed", data, total, ckpt=last, every=kill)
    assert resumed.trainer.global_step == total
    assert [ids for ids, _ in resumed_batches] == [ids for ids, _ in full_batches[kill:]]  # the same cuts...
    for (_, a), (_, b) in zip(resumed_batches, full_batches[kill:]):  # ...augmented the same way
        assert a == pytest.approx(b, rel=1e-6, abs=1e-6)
    want, got = full.model.state_dict(), resumed.model.state_dict()
    assert want.keys() == got.keys()
    for k in want:
        assert torch.allclose(got[k].float(), want[k].float(), rtol=0, atol=1e-6), k
    assert ckpt["SpeechDataModule"] == state  # where the resumed run started


# --- the pieces, without training ------------------------------------------------------------------------------
def _dummy_cuts(n: int = 24):
    from lhotse import CutSet
    from lhotse.testing.dummies import dummy_cut, dummy_supervision

    cuts = []
    for i in range(n):
        sup = dummy_supervision(i, duration=1.0 + (i % 5) * 0.3)
        sup.speaker = f"spk{i % 4}"
        cuts.append(dummy_cut(i, duration=1.0 + (i % 5) * 0.3, supervisions=[sup]))
    return CutSet.from_cuts(cuts)


@pytest.mark.parametrize("kw", [{"num_buckets": 2}, {"num_buckets": 1},
                                {"sampler": "speaker_balanced", "speakers_per_batch": 2, "utts_per_speaker": 2}])
def test_train_sampler_resumes_mid_epoch(kw):
    from zoo.data import SpeechDataModule
    from zoo.data.datamodule import BATCH_TAG

    def datamodule():
        dm = SpeechDataModule(corpus=None, max_duration=4.0, seed=3, **kw)
        dm.cuts = {"train": _dummy_cuts()}
        return dm

    sampler = datamodule().train_dataloader().sampler
    sampler.set_epoch(2)
    epoch2 = [(list(b.ids), getattr(b, BATCH_TAG)) for b in sampler]
    assert len(epoch2) >= 4 and [t for _, t in epoch2] == [(2, i) for i in range(len(epoch2))]

    dm = datamodule()
    dm.load_state_dict({"epoch": 2, "batches": 3})
    resumed = dm.train_dataloader().sampler  # Lightning may iterate before it calls set_epoch(2)
    assert [(list(b.ids), getattr(b, BATCH_TAG)) for b in resumed] == epoch2[3:]
    assert [(list(b.ids), getattr(b, BATCH_TAG)) for b in resumed] == epoch2  # resuming happens once
    resumed = dm.train_dataloader().sampler
    resumed.set_epoch(3)  # another epoch than the checkpoint's: nothing is skipped
    assert [getattr(b, BATCH_TAG) for b in resumed][:4] == [(3, 0), (3, 1), (3, 2), (3, 3)]
    assert datamodule().state_dict() == {}  # not fitting: nothing to save


def test_wave_augment_does_not_depend_on_workers_or_global_rng(an4_wavs, tmp_path):
    import soundfile as sf

    from zoo.data import SpeechDataModule

    m = tmp_path / "m.jsonl"
    m.write_text("".join(json.dumps({"audio_filepath": str(w), "duration": sf.info(str(w)).duration, "text": "A"})
                         + "\n" for w in an4_wavs))

    def audio(workers: int, rng_seed: int):
        dm = SpeechDataModule(corpus=None, train_manifest=str(m), max_duration=8, num_buckets=2, num_workers=workers,
                              augment={"bandwidth_prob": 0.5, "gain_db": [-6, 6]})
        dm.setup("fit")
        torch.manual_seed(rng_seed)
        out = [b["audio"] for b in dm.train_dataloader()]
        return out, torch.rand(())

    a, after_a = audio(0, 0)
    b, _ = audio(1, 1)
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
    torch.manual_seed(0)
    torch.empty((), dtype=torch.int64).random_()  # the DataLoader's own base-seed draw
    assert torch.equal(after_a, torch.rand(()))  # augmentation left the global generator alone
