"""Audio input: soundfile for I/O, torchaudio for resampling. Every failure is an AudioError."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from zoo.errors import AudioError


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
    return prepare_waveform(torch.from_numpy(np.ascontiguousarray(data.T)), sr, sample_rate, name=str(p))


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
