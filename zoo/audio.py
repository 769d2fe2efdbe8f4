"""Audio input: soundfile for I/O, torchaudio for resampling. Every failure is an AudioError."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from zoo.errors import AudioError, ZooError


def load_audio(path: str | os.PathLike, sample_rate: int, offset: float = 0.0,
               duration: float | None = None) -> torch.Tensor:
    """Read ``path`` as mono float32 at ``sample_rate``.

    Returns a (S,) tensor. Stereo is averaged to mono, other rates are resampled.
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(f"audio file not found: {p}")
    if p.is_dir():
        raise AudioError(f"{p} is a folder, not an audio file")
    try:
        with sf.SoundFile(str(p)) as f:
            sr = f.samplerate
            start = int(round(offset * sr))
            frames = -1 if duration is None else int(round(duration * sr))
            if start:
                f.seek(start)
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(f"cannot read {p} as audio ({str(e).strip() or type(e).__name__}); "
                         "give a WAV/FLAC/OGG file") from None
    except OSError as e:
        raise AudioError(f"cannot open {p}: {e.strerror or e}") from None
    _check_wav_complete(p)
    return prepare_waveform(torch.from_numpy(np.ascontiguousarray(data.T)), sr, sample_rate, name=str(p))


def load_inputs(inputs, sample_rate: int | None, target_rate: int, verb: str = "transcribing") -> list[torch.Tensor]:
    """Audio paths and/or in-memory waveforms ((S,) or (C, S), which need ``sample_rate``) -> (S,) float32
    tensors at ``target_rate``."""
    out = []
    for i, x in enumerate(inputs):
        if isinstance(x, (str, os.PathLike)):
            out.append(load_audio(x, target_rate))
        else:
            if sample_rate is None:
                raise ZooError(f"pass sample_rate= when {verb} waveforms")
            out.append(prepare_waveform(x, sample_rate, target_rate, name=f"waveform {i}"))
    return out


def prepare_waveform(wav: torch.Tensor | np.ndarray, sr: int, sample_rate: int,
                     name: str = "waveform") -> torch.Tensor:
    """Validate, downmix and resample an in-memory waveform.

    ``wav`` is (S,) or (C, S); returns (S,) float32 at ``sample_rate``.
    """
    wav = torch.as_tensor(wav, dtype=torch.float32)
    if wav.dim() == 2:
        wav = wav.mean(0) if wav.shape[0] <= 8 else wav.mean(1)
    if wav.dim() != 1:
        raise AudioError(f"{name}: expected a 1-D (samples) or 2-D (channels, samples) waveform, "
                         f"got shape {tuple(wav.shape)}")
    if wav.numel() == 0:
        raise AudioError(f"{name} is empty (0 samples)")
    if not torch.isfinite(wav).all():
        raise AudioError(f"{name} contains NaN or Inf samples; fix or re-encode the audio")
    if sr != sample_rate:
        wav = AF.resample(wav, sr, sample_rate)
    return wav


def _check_wav_complete(p: Path) -> None:
    """libsndfile silently reads a truncated RIFF WAV as shorter audio; refuse it instead."""
    try:
        with open(p, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return
            while True:
                ck = f.read(8)
                if len(ck) < 8:
                    return
                cid, size = ck[:4], struct.unpack("<I", ck[4:])[0]
                if cid == b"data":
                    if size in (0, 0xFFFFFFFF):  # size unknown (written to a pipe)
                        return
                    have = p.stat().st_size - f.tell()
                    if have < size:
                        raise AudioError(f"{p} is truncated: its header declares {size} bytes of audio but only "
                                         f"{have} are present; re-copy or re-encode the file")
                    return
                f.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return


def check_audio_files(paths) -> None:
    """Raise a one-line error for the first path that does not exist (before any output is written)."""
    for p in paths:
        if not Path(p).exists():
            raise ZooError(f"audio file not found: {p}")
