"""Audio input: soundfile for I/O, torchaudio for resampling. Every failure is an AudioError."""
from __future__ import annotations

import contextlib
import math
import os
import struct
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from zoo.errors import AudioError, ZooError


@contextlib.contextmanager
def _reading(p: Path):
    """Map soundfile / OS failures while opening or reading ``p`` to one-line AudioErrors."""
    try:
        yield
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(f"cannot read {p} as audio ({str(e).strip() or type(e).__name__}); "
                         "give a WAV/FLAC/OGG file") from None
    except OSError as e:
        raise AudioError(f"cannot open {p}: {e.strerror or e}") from None


def _check_path(p: Path) -> None:
    if not p.exists():
        raise AudioError(f"audio file not found: {p}")
    if p.is_dir():
        raise AudioError(f"{p} is a folder, not an audio file")


def load_audio(path: str | os.PathLike, sample_rate: int, offset: float = 0.0,
               duration: float | None = None) -> torch.Tensor:
    """Read ``path`` as mono float32 at ``sample_rate``.

    Returns a (S,) tensor. Stereo is averaged to mono, other rates are resampled.
    """
    p = Path(path)
    _check_path(p)
    with _reading(p), sf.SoundFile(str(p)) as f:
        sr = f.samplerate
        start = int(round(offset * sr))
        frames = -1 if duration is None else int(round(duration * sr))
        if start:
            f.seek(start)
        data = f.read(frames=frames, dtype="float32", always_2d=True)
    _check_wav_complete(p)
    return prepare_waveform(torch.from_numpy(np.ascontiguousarray(data.T)), sr, sample_rate, name=str(p))


def audio_duration(path: str | os.PathLike) -> float:
    """Length of an audio file in seconds, from its header (nothing is decoded)."""
    p = Path(path)
    _check_path(p)
    with _reading(p):
        info = sf.info(str(p))
    return info.frames / info.samplerate if info.samplerate else 0.0


def iter_audio(path: str | os.PathLike, sample_rate: int, offset: float = 0.0, duration: float | None = None,
               block_seconds: float = 1.0) -> Iterator[torch.Tensor]:
    """Read ``path`` incrementally: yields consecutive (S,) mono float32 blocks at ``sample_rate`` (about
    ``block_seconds`` each), so memory stays bounded however long the file is. The same checks as
    :func:`load_audio` (truncated WAV, empty, non-finite samples); resampling is exactly :func:`load_audio`'s
    (the same windowed-sinc kernel, applied block by block with its context carried over)."""
    p = Path(path)
    _check_path(p)
    _check_wav_complete(p)
    with _reading(p):
        f = sf.SoundFile(str(p))
    with f:
        sr = f.samplerate
        resampler = StreamResampler(sr, sample_rate) if sr != sample_rate else None
        start = int(round(offset * sr))
        left = None if duration is None else int(round(duration * sr))
        with _reading(p):
            if start:
                f.seek(start)
        block = max(1, int(sr * block_seconds))
        n = 0
        while left is None or left > 0:
            with _reading(p):
                data = f.read(frames=block if left is None else min(block, left), dtype="float32", always_2d=True)
            if not len(data):
                break
            n += len(data)
            if left is not None:
                left -= len(data)
            x = torch.from_numpy(np.ascontiguousarray(data.T)).mean(0)
            if not torch.isfinite(x).all():
                raise AudioError(f"{p} contains NaN or Inf samples; fix or re-encode the audio")
            y = resampler(x) if resampler is not None else x
            if y.numel():
                yield y
        if n == 0:
            raise AudioError(f"{p} is empty (0 samples)")
        if resampler is not None:
            y = resampler.flush()
            if y.numel():
                yield y


class StreamResampler:
    """``torchaudio.functional.resample`` (default windowed sinc) over a signal given in pieces: the outputs,
    concatenated, equal resampling the whole signal at once (up to float rounding)."""

    def __init__(self, orig_freq: int, new_freq: int):
        from torchaudio.functional.functional import _get_sinc_resample_kernel

        g = math.gcd(int(orig_freq), int(new_freq))
        self.orig, self.new = int(orig_freq) // g, int(new_freq) // g
        self.kernel, self.width = _get_sinc_resample_kernel(orig_freq, new_freq, g, dtype=torch.float32)
        self._buf = torch.zeros(self.width)  # the left zero padding of the whole-signal version
        self._n_in = 0
        self._n_out = 0

    def _run(self, final: bool) -> torch.Tensor:
        k = self.kernel.shape[-1]
        groups = (self._buf.numel() - k) // self.orig + 1 if self._buf.numel() >= k else 0
        if groups <= 0:
            return torch.zeros(0)
        used = self._buf[: (groups - 1) * self.orig + k]
        y = torch.nn.functional.conv1d(used[None, None], self.kernel, stride=self.orig)[0].T.reshape(-1)
        self._buf = self._buf[groups * self.orig:]
        if final:
            y = y[: max(0, math.ceil(self.new * self._n_in / self.orig) - self._n_out)]
        self._n_out += y.numel()
        return y

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32).reshape(-1)
        self._n_in += x.numel()
        self._buf = torch.cat([self._buf, x])
        return self._run(final=False)

    def flush(self) -> torch.Tensor:
        """The rest of the output (the whole-signal version's right padding), once the input has ended."""
        self._buf = torch.cat([self._buf, torch.zeros(self.width + self.orig)])
        return self._run(final=True)


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

    ``wav`` is (S,) or (C, S), float in [-1, 1] or integer PCM (int8/int16/int32, uint8: scaled to [-1, 1]
    the way soundfile reads such files); returns (S,) float32 at ``sample_rate``.
    """
    wav = _as_float(wav, name)
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


def _as_float(wav, name: str) -> torch.Tensor:
    """A float32 tensor of ``wav``; integer PCM samples (numpy or torch) are scaled to [-1, 1]."""
    if isinstance(wav, np.ndarray) and wav.dtype.kind in "iub":
        if wav.dtype.kind == "b" or wav.dtype.itemsize > 4:
            raise AudioError(f"{name}: {wav.dtype} samples are not audio; give float samples in [-1, 1] or "
                             "int16/int32 PCM")
        bits = 8 * wav.dtype.itemsize
        x = torch.from_numpy(wav.astype(np.float32))
        return (x - 2.0 ** (bits - 1)) / 2.0 ** (bits - 1) if wav.dtype.kind == "u" else x / 2.0 ** (bits - 1)
    if isinstance(wav, torch.Tensor) and not (wav.is_floating_point() or wav.is_complex()):
        if wav.dtype not in (torch.int8, torch.int16, torch.int32, torch.uint8):
            raise AudioError(f"{name}: {wav.dtype} samples are not audio; give float samples in [-1, 1] or "
                             "int16/int32 PCM")
        bits = torch.iinfo(wav.dtype).bits
        x = wav.to(torch.float32)
        return (x - 2.0 ** (bits - 1)) / 2.0 ** (bits - 1) if wav.dtype == torch.uint8 else x / 2.0 ** (bits - 1)
    return torch.as_tensor(wav, dtype=torch.float32)


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
