"""Two-speaker session mixing (zoo.data.mix), the fixed AN4 mixture set, the DataModule's ``mix`` option and
``zoo mix``."""
from __future__ import annotations

import random

import numpy as np
import pytest
import soundfile as sf

from zoo.cli.main import main
from zoo.data.mix import (
    OVERLAP_BINS,
    SessionMixer,
    cut_turns,
    make_sessions,
    read_mix_manifest,
    write_an4_mix,
    write_mix_manifest,
)
from zoo.errors import ManifestError
from zoo.metrics.multitalker import overlap_ratio


@pytest.fixture(scope="module")
def test_cuts(an4_root):
    from zoo.data.an4 import an4_cuts

    return an4_cuts(an4_root.parent)["test"]


def _transitions(turns):
    """(overlap s, shorter turn s, gap s) of each consecutive pair of turns."""
    out = []
    for (_, s0, e0, _), (_, s1, e1, _) in zip(turns, turns[1:]):
        out.append((max(0.0, e0 - s1), min(e0 - s0, e1 - s1), s1 - e0))
    return out


def test_sessions_two_alternating_speakers_and_turn_counts(test_cuts):
    mixer = SessionMixer(test_cuts, min_turns=2, max_turns=4, seed=3)
    rng = random.Random(0)
    counts = set()
    for c in list(test_cuts)[:30]:
        s = mixer.session(c, rng)
        turns = cut_turns(s)
        spk = [t[0] for t in turns]
        assert len(set(spk)) == 2, spk
        assert all(a != b for a, b in zip(spk, spk[1:])), spk  # alternate: A B A B
        assert spk[0] == c.supervisions[0].speaker
        assert 2 <= len(turns) <= 4
        counts.add(len(turns))
        # a speaker never overlaps their own previous turn
        for (_, _, e0, _), (_, s2, _, _) in zip(turns, turns[2:]):
            assert s2 >= e0 - 1e-6
    assert counts == {2, 3, 4}
    fixed = SessionMixer(test_cuts, min_turns=3, max_turns=3)
    assert all(len(cut_turns(fixed.session(c, rng))) == 3 for c in list(test_cuts)[:5])


@pytest.mark.parametrize("bin_name", list(OVERLAP_BINS))
def test_overlap_within_requested_range(test_cuts, bin_name):
    lo, hi = OVERLAP_BINS[bin_name]
    gap = (0.2, 0.6)
    mixer = SessionMixer(test_cuts, overlap_weights={bin_name: 1.0}, gap=gap, seed=1)
    rng = random.Random(1)
    for c in list(test_cuts)[:12]:
        s = mixer.session(c, rng)
        assert s.custom["overlap_bin"] == bin_name
        for ov, short, g in _transitions(cut_turns(s)):
            tol = 0.011 / short  # times are on a 10 ms grid
            if hi == 0:
                assert ov == 0 and gap[0] - 0.011 <= g <= gap[1] + 0.011, (ov, g)
            else:
                assert lo - tol <= ov / short <= hi + tol, (ov, short)
        r = overlap_ratio(cut_turns(s))
        assert (r == 0) == (hi == 0)


def test_bad_mixer_settings(test_cuts):
    with pytest.raises(ValueError, match="lo <= hi <= 0.5"):
        SessionMixer(test_cuts, overlap_bins={"x": (0.2, 0.9)})
    with pytest.raises(ValueError, match="unknown bins"):
        SessionMixer(test_cuts, overlap_weights={"huge": 1.0})
    with pytest.raises(ValueError, match="2 speakers"):
        SessionMixer(test_cuts.filter(lambda c: c.supervisions[0].speaker == "fcaw"))


def test_turn_times_match_audio_energy(test_cuts):
    """Silence (exact zeros) outside every turn, speech energy inside each turn."""
    mixer = SessionMixer(test_cuts, overlap_weights={"none": 1.0, "medium": 1.0}, seed=5)
    rng = random.Random(5)
    for c in list(test_cuts)[:8]:
        s = mixer.session(c, rng)
        a = s.load_audio()[0]
        sr = s.sampling_rate
        assert a.size == round(s.duration * sr)
        inside = np.zeros(a.size, bool)
        for _, st, en, _ in cut_turns(s):
            seg = a[int(round(st * sr)):int(round(en * sr))]
            inside[int(round(st * sr)):int(round(en * sr))] = True
            assert np.sqrt(np.mean(seg ** 2)) > 1e-3
            # trimmed to speech: the first and last 100 ms of a turn carry energy too
            k = int(0.1 * sr)
            assert np.abs(seg[:k]).max() > 1e-3 and np.abs(seg[-k:]).max() > 1e-3
        assert not np.any(a[~inside]), "audio outside the turns"


def test_deterministic_under_seed(test_cuts):
    batch = test_cuts.subset(first=4)
    a = SessionMixer(test_cuts, seed=7)(batch)
    b = SessionMixer(test_cuts, seed=7)(batch)
    c = SessionMixer(test_cuts, seed=8)(batch)
    ta, tb, tc = ([cut_turns(x) for x in s] for s in (a, b, c))
    assert ta == tb and ta != tc
    for x, y in zip(a, b):
        assert np.array_equal(x.load_audio(), y.load_audio())
    # the transform draws new sessions for every batch it sees
    mixer = SessionMixer(test_cuts, seed=7)
    assert [cut_turns(x) for x in mixer(batch)] != [cut_turns(x) for x in mixer(batch)]


def test_fixed_eval_manifest_reproduces_identical_audio(tmp_path, an4_root, test_cuts):
    p1 = write_an4_mix(tmp_path / "a", sessions=6, seed=0, data_dir=an4_root.parent)
    p2 = write_an4_mix(tmp_path / "b", sessions=6, seed=0, data_dir=an4_root.parent)
    assert p1.read_bytes() == p2.read_bytes()
    p3 = write_an4_mix(tmp_path / "c", sessions=6, seed=1, data_dir=an4_root.parent)
    assert p3.read_bytes() != p1.read_bytes()
    mem = make_sessions(test_cuts, 6, 0, prefix="an4mix-test")
    disk = read_mix_manifest(p1)
    test_speakers = {c.supervisions[0].speaker for c in test_cuts}
    for x, y in zip(mem, disk):
        assert x.id == y.id
        assert cut_turns(x) == cut_turns(y)
        assert x.load_audio().tobytes() == y.load_audio().tobytes()
        assert {t[0] for t in cut_turns(y)} <= test_speakers
    # round trip through the writer again: same bytes
    assert write_mix_manifest(disk, tmp_path / "a" / "again.jsonl").read_bytes() == p1.read_bytes()


def test_cli_an4_mix_and_load_cuts(tmp_path, an4_root):
    from zoo.data.manifest import load_cuts

    assert main(["data", "an4-mix", "--out", str(tmp_path), "--sessions", "3", "--data-dir",
                 str(an4_root.parent)]) == 0
    cuts = load_cuts(tmp_path / "test.jsonl")
    assert len(cuts) == 3 and all(len(cut_turns(c)) >= 2 for c in cuts)
    assert main(["data", "an4-mix", "--out", str(tmp_path / "x"), "--sessions", "0"]) == 2


def test_datamodule_mix_batches(an4_root):
    from zoo.data import SpeechDataModule

    dm = SpeechDataModule(data_dir=str(an4_root.parent), max_duration=10, num_buckets=1,
                          mix={"min_turns": 2, "max_turns": 2}, mix_val_sessions=4, mix_test_sessions=4)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert len(batch["turns"]) == batch["audio"].shape[0]
    for turns, n, text in zip(batch["turns"], batch["audio_lens"], batch["text"]):
        assert len(turns) == 2 and turns[0][0] != turns[1][0]
        assert abs(max(t[2] for t in turns) * 16000 - int(n)) <= 1
        assert text == " ".join(t[3] for t in turns)
    test = next(iter(dm.test_dataloader()))
    assert all(len(t) >= 2 for t in test["turns"]) and test["id"][0].startswith("an4mix-test-0-")
    from zoo.data.an4 import an4_cuts

    test_speakers = {c.supervisions[0].speaker for c in an4_cuts(an4_root.parent)["test"]}
    assert {t[0] for turns in test["turns"] for t in turns} <= test_speakers


def _tone(path, sr, n, f):
    t = np.arange(n) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr)


def test_zoo_mix(tmp_path, capsys):
    a, b, out = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "mix.wav"
    _tone(a, 16000, 16000, 220)
    _tone(b, 16000, 8000, 440)
    assert main(["mix", str(a), str(b), "--offset", "0.75", "-o", str(out)]) == 0
    y, sr = sf.read(out, dtype="float32")
    xa, _ = sf.read(a, dtype="float32")
    xb, _ = sf.read(b, dtype="float32")
    assert sr == 16000 and y.size == 12000 + 8000
    ref = np.zeros(20000, np.float32)
    ref[:16000] += xa
    ref[12000:] += xb
    assert np.abs(y - ref).max() < 1e-3
    assert "wrote" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("args, msg", [
    (["missing.wav", "b.wav", "--offset", "1"], "not found"),
    (["a.wav", "b.wav", "--offset", "-1"], "--offset"),
    (["a.wav", "notaudio.wav", "--offset", "1"], "cannot read"),
    (["a.wav", "b.wav", "--offset", "1", "-o", "out.xyz"], "unknown audio format"),
])
def test_zoo_mix_errors(tmp_path, capsys, monkeypatch, args, msg):
    monkeypatch.chdir(tmp_path)
    _tone(tmp_path / "a.wav", 16000, 16000, 220)
    _tone(tmp_path / "b.wav", 16000, 8000, 440)
    (tmp_path / "notaudio.wav").write_bytes(b"this is not audio at all" * 10)
    (tmp_path / "mix.wav").write_bytes(b"old")
    if "-o" not in args:
        args = args + ["-o", "mix.wav"]
    assert main(["mix", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and msg in err[0], err
    assert (tmp_path / "mix.wav").read_bytes() == b"old"  # no half-written output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_mix_manifest_lines(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"id": "x", "turns": [{"audio_filepath": "a.wav"}]}\n')
    with pytest.raises(ManifestError, match=r"m.jsonl:1: "):
        read_mix_manifest(p)
    p.write_text('{"id": "x", "turns": []}\n')
    with pytest.raises(ManifestError, match=r"m.jsonl:1: .*at least one turn"):
        read_mix_manifest(p)
    p.write_text('{"id": "x", "turns": [], "note": "first line decides the format"}\n{not json\n')
    with pytest.raises(ManifestError, match=r"m.jsonl:(1|2): "):
        read_mix_manifest(p)
