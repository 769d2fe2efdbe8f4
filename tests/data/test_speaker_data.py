"""The AN4 speaker-verification split, trials files, `zoo data an4-sv`, speaker labels and the
speaker-balanced sampler of the shared SpeechDataModule."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from zoo.cli.main import main
from zoo.data import an4_speaker_split, make_trials, read_trials, write_trials
from zoo.errors import ManifestError


def _spk(cuts):
    return {c.supervisions[0].speaker for c in cuts}


@pytest.fixture(scope="module")
def split(an4_root):
    return an4_speaker_split(an4_root.parent)


def test_split_is_speaker_disjoint_and_gender_balanced(split, an4_root):
    tr, dev, ev = (_spk(split[k]) for k in ("train", "dev", "eval"))
    assert not (tr & dev) and not (tr & ev) and not (dev & ev)
    assert len(tr | dev | ev) == 84 and (len(tr), len(dev), len(ev)) == (54, 10, 20)
    test_spk = {i.split("/")[1] for i in (an4_root / "etc" / "an4_test.fileids").read_text().split()}
    assert test_spk <= ev
    for s in (dev, ev):
        g = Counter(x[0] for x in s)
        assert g["f"] == g["m"] == len(s) // 2  # both genders, balanced
    for c in split["eval"]:
        assert c.supervisions[0].gender == c.supervisions[0].speaker[0]
    # deterministic
    again = an4_speaker_split(an4_root.parent)
    assert [c.id for c in again["dev"]] == [c.id for c in split["dev"]]


def test_make_trials_all_pairs_and_subsampling():
    utts = [("u1", "a"), ("u2", "a"), ("u3", "b"), ("u4", "b"), ("u5", "c")]
    t = make_trials(reversed(utts))
    assert len(t) == 10 and t[0] == ("u1", "u2", True)
    assert sum(x[2] for x in t) == 2 and all(a < b for a, b, _ in t)
    sub = make_trials(utts, max_nontarget=3, seed=1)
    assert sum(x[2] for x in sub) == 2 and sum(not x[2] for x in sub) == 3
    assert sub == make_trials(utts, max_nontarget=3, seed=1)
    assert set(sub) <= set(t)


def test_trials_file_round_trip_and_errors(tmp_path):
    t = [("a", "b", True), ("a", "c", False)]
    p = write_trials(t, tmp_path / "trials.txt")
    assert p.read_text() == "a b target\na c nontarget\n"
    assert read_trials(p) == t
    (tmp_path / "bad.txt").write_text("a b target\na c maybe\n")
    with pytest.raises(ManifestError, match=r"bad.txt:2: expected"):
        read_trials(tmp_path / "bad.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ManifestError, match="no trials"):
        read_trials(tmp_path / "empty.txt")


def test_zoo_data_an4_sv(tmp_path, an4_root, split):
    assert main(["data", "an4-sv", "--out", str(tmp_path), "--data-dir", str(an4_root.parent)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["dev.jsonl", "dev_trials.txt", "eval.jsonl", "eval_trials.txt", "train.jsonl"]
    entries = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    ids = {e["id"]: e for e in entries}
    assert {e["gender"] for e in entries} == {"f", "m"} and all((tmp_path / e["audio_filepath"]).is_file()
                                                                for e in entries)
    trials = read_trials(tmp_path / "eval_trials.txt")
    n = len(entries)
    assert len(trials) == n * (n - 1) // 2
    for a, b, tgt in trials[:500]:
        assert tgt == (ids[a]["speaker"] == ids[b]["speaker"])


def test_datamodule_speaker_labels_and_balanced_sampler(an4_root):
    from zoo.data import SpeechDataModule

    dm = SpeechDataModule(corpus="an4_spk", data_dir=str(an4_root.parent), sampler="speaker_balanced",
                          speakers_per_batch=4, utts_per_speaker=3, seed=5)
    dm.setup()
    assert dm.num_speakers == 54
    loader = dm.train_dataloader()
    sampler = loader.sampler
    batches = [[c.supervisions[0].speaker for c in b] for b in sampler]
    assert len(batches) == len(sampler) == sum(1 for _ in dm.cuts["train"]) // 12
    for b in batches:
        assert sorted(Counter(b).values()) == [3, 3, 3, 3]
    s2 = dm.train_dataloader().sampler
    e0 = [c.id for c in next(iter(s2))]
    s2.set_epoch(1)
    assert [c.id for c in next(iter(s2))] != e0
    s2.set_epoch(0)
    assert [c.id for c in next(iter(s2))] == e0
    batch = next(iter(loader))
    assert batch["speaker_index"].shape == (12,)
    inv = {i: s for s, i in dm.speaker_index.items()}
    assert [inv[int(i)] for i in batch["speaker_index"]] == batch["speaker"]
    val = next(iter(dm.val_dataloader()))
    assert (val["speaker_index"] == -1).all()  # dev speakers are not training classes
    assert set(val["speaker"]) <= _spk(dm.cuts["val"])
