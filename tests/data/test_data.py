"""AN4 recipe, SpeechDataModule batches, NeMo JSONL manifests and ``zoo data``."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import soundfile as sf
import torch
from lhotse import CutSet

from zoo.cli.main import main
from zoo.data import SpeechDataModule, an4_cuts, load_cuts, read_manifest, write_manifest
from zoo.data.datamodule import AudioBatchDataset
from zoo.errors import ManifestError, ZooError


@pytest.fixture(scope="module")
def an4(an4_root):
    return an4_cuts(an4_root.parent)


def _sup(c):
    assert len(c.supervisions) == 1
    return c.supervisions[0]


# --- AN4 recipe ----------------------------------------------------------------------------------
def test_an4_counts(an4, an4_root):
    assert set(an4) == {"train", "dev", "test"}
    assert len(an4["train"]) + len(an4["dev"]) == 948 and len(an4["test"]) == 130
    assert 0.05 < len(an4["dev"]) / 948 < 0.2
    assert list(an4_cuts(an4_root)["test"].ids) == list(an4["test"].ids)  # the an4/ folder itself also works
    ids = [c.id for s in an4.values() for c in s]
    assert len(set(ids)) == len(ids) == 1078


def test_an4_speakers_and_gender(an4):
    spk = {k: {_sup(c).speaker for c in v} for k, v in an4.items()}
    assert len(spk["train"] | spk["dev"]) == 74 and len(spk["test"]) == 10
    assert not spk["train"] & spk["dev"] and not spk["test"] & (spk["train"] | spk["dev"])
    for cuts in an4.values():
        for c in cuts:
            s = _sup(c)
            assert s.gender == s.speaker[0] and s.gender in ("f", "m")
            assert f"-{s.speaker}-" in c.recording.id  # e.g. an251-fash-b
    genders = {_sup(c).speaker: _sup(c).gender for k in ("train", "dev") for c in an4[k]}
    assert sorted(genders.values()).count("f") == 21  # as documented in SOURCE.md
    assert {_sup(c).gender for c in an4["dev"]} == {"f", "m"}  # both genders in dev


def test_an4_transcripts_normalised(an4, an4_root):
    for cuts in an4.values():
        for c in cuts:
            t = _sup(c).text
            assert t and t == t.strip() and t.upper() == t and "  " not in t
            assert not any(x in t for x in ("<s>", "</s>", "(", ")"))
    first = an4["test"][0]
    line = (an4_root / "etc" / "an4_test.transcription").read_text().splitlines()[0]
    assert _sup(first).text == line.rsplit("(", 1)[0].strip()  # "RUBOUT G M E F THREE NINE"
    assert an4["test"][0].duration == pytest.approx(sf.info(str(first.recording.sources[0].source)).duration)


def test_an4_missing_folder(tmp_path):
    with pytest.raises(ZooError, match="AN4 not found"):
        an4_cuts(tmp_path)


def test_an4_misaligned_transcripts(tmp_path, an4_root):
    """A transcription line that belongs to another file is an error, not a silent mislabel."""
    d = tmp_path / "an4"
    (d / "etc").mkdir(parents=True)
    (d / "wav").symlink_to(an4_root / "wav")
    for s in ("train", "test"):
        for ext in ("fileids", "transcription"):
            lines = (an4_root / "etc" / f"an4_{s}.{ext}").read_text().splitlines()
            if s == "test" and ext == "transcription":
                lines[3], lines[4] = lines[4], lines[3]
            (d / "etc" / f"an4_{s}.{ext}").write_text("\n".join(lines) + "\n")
    with pytest.raises(ZooError, match="line 4"):
        an4_cuts(tmp_path)


# --- batches -------------------------------------------------------------------------------------
def _check_batch(b, by_id):
    audio, lens = b["audio"], b["audio_lens"]
    assert audio.dtype == torch.float32 and audio.dim() == 2 and lens.shape == (audio.shape[0],)
    assert int(lens.max()) == audio.shape[1]
    for i, cid in enumerate(b["id"]):
        c = by_id[cid]
        assert int(lens[i]) == c.num_samples
        ref = torch.from_numpy(c.load_audio()[0])
        assert torch.equal(audio[i, : int(lens[i])], ref)
        assert not audio[i, int(lens[i]):].any()  # zero padding
        assert b["text"][i] == _sup(c).text and b["speaker"][i] == _sup(c).speaker
        assert b["gender"][i] == _sup(c).gender


def test_datamodule_batches(an4_root):
    dm = SpeechDataModule(corpus="an4", data_dir=str(an4_root.parent), max_duration=12.0, num_buckets=2)
    dm.setup("fit")
    assert len(dm.cuts["train"]) == 835 and len(dm.cuts["val"]) == 113 and len(dm.cuts["test"]) == 130
    by_id = {c.id: c for c in dm.cuts["test"]}
    seen, n = [], 0
    for b in dm.test_dataloader():
        _check_batch(b, by_id)
        seen += b["id"]
        n += 1
    assert sorted(seen) == sorted(by_id)  # every test cut exactly once
    assert 30 < n < 130  # 6 min of audio in ~12 s batches
    b = next(iter(dm.train_dataloader()))
    assert len(b["id"]) > 1 and b["audio"].shape[0] == len(b["id"])


def test_dataset_resamples_and_applies_transforms(an4):
    cuts = an4["test"].subset(first=2)
    calls = []
    ds = AudioBatchDataset(8000, cut_transforms=[lambda cs: calls.append(len(cs)) or cs])
    b = ds[cuts]
    assert calls == [2]
    assert b["audio_lens"].tolist() == [c.num_samples // 2 for c in cuts]


# --- NeMo manifests ------------------------------------------------------------------------------
def _rel(p: Path, start: Path) -> str:
    return os.path.relpath(p, start)


@pytest.fixture
def manifest(tmp_path, an4_wavs):
    """A NeMo manifest in tmp_path/m/ with relative paths, an offset segment and extra metadata."""
    d = tmp_path / "m"
    d.mkdir()
    a, b = an4_wavs[3], an4_wavs[2]
    lines = [
        {"audio_filepath": _rel(a, d), "duration": sf.info(str(a)).duration, "text": "HELLO", "speaker": "s1",
         "gender": "f", "accent": "us"},
        {"audio_filepath": str(b), "duration": 1.0, "offset": 0.5, "text": "WORLD", "speaker": "s2"},
        {"audio_filepath": _rel(b, d), "duration": 2.0, "text": "AGAIN"},
    ]
    m = d / "test.jsonl"
    m.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")  # a blank line is skipped
    return m


def test_read_manifest_resolves_relative_paths(manifest, an4_wavs):
    entries = list(read_manifest(manifest))
    assert [e["_line"] for e in entries] == [1, 2, 3]
    assert Path(entries[0]["audio_filepath"]).resolve() == an4_wavs[3].resolve()
    assert Path(entries[2]["audio_filepath"]).resolve() == an4_wavs[2].resolve()
    assert not os.path.isabs(json.loads(manifest.read_text().splitlines()[0])["audio_filepath"])


def test_load_cuts_from_nemo_manifest(manifest, an4_wavs, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the working directory
    cuts = load_cuts(manifest)
    assert len(cuts) == 3
    c0, c1, c2 = cuts
    assert (_sup(c0).text, _sup(c0).speaker, _sup(c0).gender) == ("HELLO", "s1", "f")
    assert _sup(c0).custom == {"accent": "us"}
    assert _sup(c2).speaker is None and _sup(c2).gender is None
    assert (c1.start, c1.duration) == (0.5, 1.0)
    assert _sup(c1).start == 0.0 and _sup(c1).duration == 1.0  # relative to the cut
    full = sf.read(str(an4_wavs[2]), dtype="float32")[0]
    assert torch.equal(torch.from_numpy(c1.load_audio()[0]), torch.from_numpy(full[8000:24000]))
    assert c2.load_audio().shape == (1, 32000)
    assert len({c.id for c in cuts}) == 3


@pytest.mark.parametrize("num_buckets", [1, 2])
def test_lazy_manifest_with_sampler(manifest, an4_wavs, num_buckets):
    lazy = load_cuts(manifest, lazy=True)
    assert lazy.is_lazy and [c.id for c in lazy] == [c.id for c in load_cuts(manifest)]
    dm = SpeechDataModule(corpus=None, val_manifest=str(manifest), test_manifest=str(manifest), lazy=True,
                          max_duration=2.5, num_buckets=num_buckets)
    dm.setup("validate")
    batches = list(dm.val_dataloader())
    assert len(batches) >= 2  # 0.8 + 1 + 2 s at 2.5 s per batch
    ids = [i for b in batches for i in b["id"]]
    assert sorted(ids) == sorted(c.id for c in lazy)
    by_id = {c.id: c for c in load_cuts(manifest)}
    for b in batches:
        _check_batch(b, by_id)


def test_lhotse_cut_manifest_loads(manifest, tmp_path):
    cuts = load_cuts(manifest)
    out = tmp_path / "cuts.jsonl.gz"
    cuts.to_file(out)
    back = load_cuts(out)
    assert list(back.ids) == list(cuts.ids) and [_sup(c).text for c in back] == ["HELLO", "WORLD", "AGAIN"]
    assert list(load_cuts(out, lazy=True).ids) == list(cuts.ids)


@pytest.mark.parametrize("bad, why", [
    ('{"audio_filepath": "a.wav", "duration": 1.0', "not valid JSON"),
    ('["a.wav", 1.0]', "JSON object with 'audio_filepath'"),
    ('{"duration": 1.0, "text": "X"}', "'audio_filepath'"),
    ('{"audio_filepath": "A", "duration": "long"}', "'duration' must be a number"),
    ('{"audio_filepath": "A", "duration": 1.0, "offset": -1}', "'offset' must be a non-negative"),
    ('{"audio_filepath": "missing.wav", "duration": 1.0}', "audio file not found"),
    ('{"audio_filepath": "A"}', "'duration' is required"),
    ('{"audio_filepath": "A", "duration": 9.0, "offset": 0.5}', "outside the"),
    ('{"audio_filepath": "notes.txt", "duration": 1.0}', "cannot read"),
])
def test_malformed_manifest_line_names_the_line(manifest, bad, why):
    good = manifest.read_text().splitlines()[0]
    real = json.loads(good)["audio_filepath"]
    (manifest.parent / "notes.txt").write_text("not audio")
    manifest.write_text("\n".join([good, good, bad.replace('"A"', json.dumps(real))]) + "\n")
    with pytest.raises(ManifestError, match=why) as e:
        load_cuts(manifest)
    assert f"{manifest}:3:" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ManifestError, match=why):  # lazily: raised when iteration reaches the line
        list(load_cuts(manifest, lazy=True))


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        load_cuts(tmp_path / "nope.jsonl")


# --- writing manifests ---------------------------------------------------------------------------
def test_write_manifest_round_trip(manifest, tmp_path):
    cuts = load_cuts(manifest)
    out = write_manifest(cuts, tmp_path / "deep" / "out.jsonl")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(not os.path.isabs(x["audio_filepath"]) for x in lines)
    assert lines[1]["offset"] == 0.5 and lines[0]["gender"] == "f"
    back = load_cuts(out)
    for a, b in zip(cuts, back):
        assert (a.start, a.duration, _sup(a).text, _sup(a).speaker, _sup(a).gender) == \
               (b.start, b.duration, _sup(b).text, _sup(b).speaker, _sup(b).gender)
        assert (a.load_audio() == b.load_audio()).all()


def test_write_manifest_failure_leaves_nothing(manifest, tmp_path):
    cuts = list(load_cuts(manifest))

    def broken():
        yield cuts[0]
        yield cuts[1]
        raise OSError("disk full")

    out = tmp_path / "w" / "out.jsonl"
    with pytest.raises(OSError, match="disk full"):
        write_manifest(CutSet(broken()), out)
    assert list(out.parent.iterdir()) == []
    # an existing manifest is left untouched by a failed rewrite
    write_manifest(load_cuts(manifest), out)
    before = out.read_text()
    with pytest.raises(OSError):
        write_manifest(CutSet(broken()), out)
    assert out.read_text() == before and sorted(p.name for p in out.parent.iterdir()) == ["out.jsonl"]


def test_zoo_data_writes_manifests_that_load_back(tmp_path, an4_root, an4, capsys):
    out = tmp_path / "manifests"
    assert main(["data", "an4", "--out", str(out), "--data-dir", str(an4_root.parent)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.{ext}" for s in ("dev", "test", "train")
                                                           for ext in ("jsonl", "cuts.jsonl.gz"))
    assert len(capsys.readouterr().out.splitlines()) == 6
    for split in ("train", "dev", "test"):
        back = load_cuts(out / f"{split}.jsonl")
        ref = an4[split]
        lhotse = load_cuts(out / f"{split}.cuts.jsonl.gz")  # the lhotse manifest keeps the metadata too
        assert [_sup(c).text for c in lhotse] == [_sup(c).text for c in ref]
        assert len(back) == len(ref)
        assert [_sup(c).text for c in back] == [_sup(c).text for c in ref]
        assert [_sup(c).gender for c in back] == [_sup(c).gender for c in ref]
    c = load_cuts(out / "test.jsonl")[0]
    assert Path(c.recording.sources[0].source).resolve() == Path(an4["test"][0].recording.sources[0].source).resolve()


def test_zoo_data_failure_writes_nothing(tmp_path, capsys):
    out = tmp_path / "manifests"
    assert main(["data", "an4", "--out", str(out), "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: AN4 not found")
    assert not out.exists()
