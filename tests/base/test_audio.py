"""Audio input: other rates, stereo, FLAC, segments, and a clear AudioError for every bad file."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
import torchaudio.functional as AF

from zoo.audio import load_audio, prepare_waveform
from zoo.errors import AudioError, ZooError


@pytest.fixture(scope="module")
def src(an4_wavs):
    """(path, int16 samples, float waveform) of a real 3.3 s AN4 utterance."""
    p = an4_wavs[2]
    pcm, sr = sf.read(str(p), dtype="int16")
    assert sr == 16000 and pcm.ndim == 1
    return p, pcm, load_audio(p, 16000)


def test_reference_file(src):
    p, pcm, wav = src
    assert wav.dtype == torch.float32 and wav.shape == (len(pcm),)
    assert torch.equal(wav, torch.from_numpy(pcm.astype(np.float32) / 32768))


def test_stereo_is_downmixed(src, tmp_path, tiny_net):
    p, pcm, wav = src
    same = tmp_path / "same.wav"
    sf.write(same, np.stack([pcm, pcm], 1), 16000, subtype="PCM_16")
    assert torch.equal(load_audio(same, 16000), wav)
    assert tiny_net.transcribe(str(same)) == tiny_net.transcribe(str(p))
    half = tmp_path / "left_only.wav"
    sf.write(half, np.stack([pcm, np.zeros_like(pcm)], 1), 16000, subtype="PCM_16")
    assert torch.equal(load_audio(half, 16000), wav / 2)


def test_8khz_is_resampled(src, tmp_path):
    p, pcm, wav = src
    f8 = tmp_path / "a8k.wav"
    y8 = AF.resample(wav, 16000, 8000)
    sf.write(f8, y8.numpy(), 8000, subtype="FLOAT")
    got = load_audio(f8, 16000)
    assert got.shape == wav.shape
    assert torch.allclose(got, AF.resample(y8, 8000, 16000), atol=1e-6)
    # the same speech, band-limited to 4 kHz: the waveform and the low mel bands match the original
    assert torch.corrcoef(torch.stack([got, wav]))[0, 1] > 0.98
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=40, center=False)
    centres = (mel.mel_scale.fb * torch.linspace(0, 8000, 201)[:, None]).sum(0) / mel.mel_scale.fb.sum(0)
    low = centres < 3000
    d = (mel(got).clamp_min(1e-10).log() - mel(wav).clamp_min(1e-10).log()).abs().mean(1)
    assert low.sum() >= 20 and d[low].max() < 0.15


def test_8khz_stereo_pcm_transcribes(src, tmp_path, tiny_net):
    p, pcm, wav = src
    f = tmp_path / "a8k_stereo.wav"
    y8 = AF.resample(wav, 16000, 8000).numpy()
    sf.write(f, np.stack([y8, y8], 1), 8000, subtype="PCM_16")
    out = load_audio(f, 16000)
    assert out.shape == wav.shape and torch.isfinite(out).all()
    (text,) = tiny_net.transcribe(str(f))
    assert isinstance(text, str) and set(text) <= set(tiny_net.tokenizer.vocab)


def test_flac_is_lossless(src, tmp_path):
    p, pcm, wav = src
    f = tmp_path / "a.flac"
    sf.write(f, pcm, 16000, format="FLAC")
    assert torch.equal(load_audio(f, 16000), wav)


def test_offset_and_duration(src):
    p, pcm, wav = src
    assert torch.equal(load_audio(p, 16000, offset=0.5, duration=1.0), wav[8000:24000])
    assert torch.equal(load_audio(p, 16000, offset=3.0), wav[48000:])


def test_prepare_waveform_layouts(src):
    p, pcm, wav = src
    assert torch.equal(prepare_waveform(wav[None], 16000, 16000), wav)
    assert torch.equal(prepare_waveform(torch.stack([wav, wav], 1), 16000, 16000), wav)  # (S, C)
    assert torch.equal(prepare_waveform(wav.numpy(), 16000, 16000), wav)
    assert prepare_waveform(wav, 16000, 8000).shape == (len(pcm) // 2,)


# --- errors ---------------------------------------------------------------------------------------
def _raises(path, match):
    with pytest.raises(AudioError, match=match) as e:
        load_audio(path, 16000)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_missing_file(tmp_path):
    _raises(tmp_path / "nope.wav", "not found")


def test_folder(tmp_path):
    _raises(tmp_path, "is a folder")


def test_text_file_named_wav(tmp_path):
    f = tmp_path / "notes.wav"
    f.write_text("this is not audio\n")
    _raises(f, "cannot read .* as audio")


@pytest.mark.parametrize("keep", [44, 45, 1000, "half", "minus1"])
def test_truncated_wav(src, tmp_path, keep):
    """libsndfile reads a cut-off WAV as shorter audio without complaint; we refuse it."""
    p = src[0]
    data = p.read_bytes()
    n = {"half": len(data) // 2, "minus1": len(data) - 1}.get(keep, keep)
    f = tmp_path / "cut.wav"
    f.write_bytes(data[:n])
    with sf.SoundFile(str(f)) as h:  # the premise: soundfile opens it fine
        assert h.frames < (len(data) - 44) // 2
    _raises(f, "truncated")


def test_wav_with_broken_header(src, tmp_path):
    f = tmp_path / "hdr.wav"
    f.write_bytes(src[0].read_bytes()[:20])
    _raises(f, "cannot read")


def test_wav_with_trailing_chunk_is_fine(src, tmp_path):
    """Extra chunks after the audio (e.g. LIST metadata) are not mistaken for truncation."""
    f = tmp_path / "meta.wav"
    data = bytearray(src[0].read_bytes()) + b"LIST" + (4).to_bytes(4, "little") + b"INFO"
    data[4:8] = (len(data) - 8).to_bytes(4, "little")
    f.write_bytes(bytes(data))
    assert torch.equal(load_audio(f, 16000), src[2])


def test_empty_wav(tmp_path):
    f = tmp_path / "empty.wav"
    sf.write(f, np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    _raises(f, r"empty \(0 samples\)")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_samples(src, tmp_path, bad):
    f = tmp_path / "nan.wav"
    x = src[2].numpy().copy()
    x[1000] = bad
    sf.write(f, x, 16000, subtype="FLOAT")
    _raises(f, "NaN or Inf")


def test_in_memory_errors(tiny_net):
    with pytest.raises(AudioError, match="NaN or Inf"):
        tiny_net.transcribe(torch.tensor([0.0, float("nan")] * 800), sample_rate=16000)
    with pytest.raises(AudioError, match="empty"):
        prepare_waveform(torch.zeros(0), 16000, 16000)
    with pytest.raises(AudioError, match="shape"):
        prepare_waveform(torch.zeros(1, 2, 300), 16000, 16000)
    with pytest.raises(ZooError, match="sample_rate"):
        tiny_net.transcribe(torch.zeros(16000))
