"""speechocean762 and alphanumeric recipes (real files from ../shared/data), the weighted corpus mix of
SpeechDataModule, waveform augmentation, and ``zoo data`` for the new corpora."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from zoo.cli.main import main
from zoo.errors import ZooError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_root(an4_root) -> Path:
    root = an4_root.parent
    for name in ("speechocean762", "alphanumeric"):
        if not (root / name).is_dir():
            pytest.skip(f"{name} not in {root}")
    return root


@pytest.fixture(scope="module")
def so762(data_root):
    from zoo.data.corpora import speechocean762_cuts

    return speechocean762_cuts(data_root)


def _speakers(cuts) -> set:
    return {c.supervisions[0].speaker for c in cuts}


def test_speechocean762_splits_are_speaker_disjoint_with_metadata(so762):
    train, dev, test = (_speakers(so762[k]) for k in ("train", "dev", "test"))
    assert len(train) + len(dev) == 125 and len(test) == 125
    assert not (train & dev) and not (train & test) and not (dev & test)
    assert len(so762["train"]) + len(so762["dev"]) == 2500 and len(so762["test"]) == 2500
    groups = {(c.supervisions[0].custom["age_group"], c.supervisions[0].gender) for c in so762["dev"]}
    assert groups == {("child", "f"), ("child", "m"), ("adult", "f"), ("adult", "m")}
    test = so762["test"]
    s = test[0].supervisions[0] if hasattr(test, "__getitem__") else next(iter(test)).supervisions[0]
    assert s.text == s.text.upper() and s.custom["corpus"] == "speechocean762" and isinstance(s.custom["age"], int)
    audio = next(iter(so762["dev"])).load_audio()  # Ogg/Opus through lhotse + soundfile
    assert audio.shape[0] == 1 and audio.shape[1] > 1000 and abs(audio).max() > 0


def test_alphanumeric_has_prompt_references_and_geography(data_root):
    from zoo.data.corpora import alphanumeric_cuts

    cuts = alphanumeric_cuts(data_root)["test"]
    kinds = {c.supervisions[0].custom["kind"] for c in cuts}
    assert kinds == {"names", "numbers"} and len(cuts) == 140
    for c in cuts:
        s = c.supervisions[0]
        assert s.text and s.text == s.text.upper()
        assert -90 <= s.custom["lat"] <= 90 and -180 <= s.custom["lon"] <= 180
        assert s.custom["native_language"] and s.gender in ("f", "m", None)  # 2 speakers did not say


def test_malformed_kaldi_line_names_the_file(data_root, tmp_path):
    from zoo.data.corpora import speechocean762_cuts

    root = tmp_path / "speechocean762"
    for split in ("train", "test"):
        shutil.copytree(data_root / "speechocean762" / split, root / split)
    (root / "audio").symlink_to(data_root / "speechocean762" / "audio")
    (root / "train" / "spk2age").write_text("0001\n")
    with pytest.raises(ZooError, match=r"spk2age:1: expected"):
        speechocean762_cuts(tmp_path)
    with pytest.raises(ZooError, match="speechocean762 not found"):
        speechocean762_cuts(tmp_path / "nowhere")


def test_unreadable_audio_names_the_file(data_root, tmp_path):
    from zoo.data.corpora import speechocean762_cuts

    root = tmp_path / "speechocean762"
    for split in ("train", "test"):
        shutil.copytree(data_root / "speechocean762" / split, root / split)
    first = (root / "train" / "wav.scp").read_text().split()[1]
    (root / first).parent.mkdir(parents=True)
    (root / first).write_bytes(b"OggS not really opus")
    with pytest.raises(ZooError, match=f"cannot read .*{Path(first).name}"):
        speechocean762_cuts(tmp_path)


def test_mixed_corpora_weights_are_passes_per_epoch(data_root):
    from zoo.data.corpora import corpus_cuts
    from zoo.data.datamodule import mixed_corpora

    an4 = corpus_cuts("an4", data_root)
    so = corpus_cuts("speechocean762", data_root)
    mix = mixed_corpora({"an4": 2, "speechocean762": 0.5}, data_root, seed=0)
    corpus = [c.supervisions[0].custom["corpus"] for c in mix["train"]]
    assert corpus.count("an4") == 2 * len(an4["train"])
    assert corpus.count("speechocean762") == round(0.5 * len(so["train"]))
    assert len(set(mix["train"].ids)) == len(mix["train"])  # copies get new ids
    assert len(mix["val"]) == len(an4["dev"]) + len(so["dev"])
    assert len(mix["test"]) == len(an4["test"]) + len(so["test"])
    with pytest.raises(ValueError, match="non-negative"):
        mixed_corpora({"an4": -1}, data_root)


def test_datamodule_trains_on_corpus_mix_with_augmentation(data_root):
    from zoo.data import SpeechDataModule

    dm = SpeechDataModule(corpus=None, corpora={"an4": 1, "speechocean762": 1}, data_dir=str(data_root),
                          max_duration=20, augment={"bandwidth_prob": 1.0, "gain_db": [-6, 6]})
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape[0] == len(batch["text"]) > 0 and torch.isfinite(batch["audio"]).all()
    assert dm.train_dataloader().dataset.wave_augment is not None
    assert dm.val_dataloader().dataset.wave_augment is None  # never augment dev


def test_wave_augment_removes_the_upper_band_and_scales():
    from zoo.data.augment import WaveAugment

    torch.manual_seed(0)
    t = torch.arange(16000) / 16000
    wav = torch.sin(2 * torch.pi * 6000 * t) + torch.sin(2 * torch.pi * 1000 * t)
    narrow = WaveAugment(16000, bandwidth_prob=1.0)(wav)
    spec = torch.fft.rfft(narrow).abs()
    assert narrow.shape == wav.shape
    assert spec[6000] < 0.01 * spec[1000]  # 6 kHz (above the 4 kHz Nyquist of 8 kHz) is gone
    loud = WaveAugment(16000, gain_db=(6, 6))(wav)
    assert torch.allclose(loud, wav * 10 ** (6 / 20))
    assert torch.equal(WaveAugment(16000)(wav), wav)
    with pytest.raises(ValueError):
        WaveAugment(16000, narrow_rates=[16000])


def test_zoo_data_writes_lhotse_and_nemo_manifests(data_root, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["data", "alphanumeric", "--out", str(out), "--data-dir", str(data_root)]) == 0
    assert {p.name for p in out.iterdir()} == {"test.jsonl", "test.cuts.jsonl.gz"}
    first = json.loads((out / "test.jsonl").read_text().splitlines()[0])
    assert {"native_language", "lat", "lon", "nationality"} <= set(first)
    from zoo.data.manifest import load_cuts

    cuts = load_cuts(out / "test.cuts.jsonl.gz")
    assert len(cuts) == 140 and next(iter(cuts)).supervisions[0].custom["corpus"] == "alphanumeric"
    assert main(["data", "speechocean762", "--out", str(tmp_path / "x"), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: speechocean762 not found") and "\n" not in err
    assert not (tmp_path / "x").exists()
