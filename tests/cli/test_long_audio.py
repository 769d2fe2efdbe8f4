"""Issue 14.4, long audio: ``zoo transcribe --stream`` reads a file incrementally (bounded memory, partial results
on stderr), batch decoding refuses files too long to hold in memory, ``--skip-errors`` goes on past unreadable
files; integer PCM waveforms are scaled; a finalized streaming session takes no more audio until reset()."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from zoo.audio import load_audio, prepare_waveform
from zoo.cli.main import main
from zoo.errors import ZooError

LONG_MINUTES = 12  # whole-file loading grows the process by ~165 MB here; streaming by ~1 MB


def write_long_wav(path: Path, minutes: float, sr: int = 16000) -> Path:
    """A gliding tone plus noise, written 10 s at a time (the test itself never holds it all)."""
    rng = np.random.default_rng(0)
    n = int(minutes * 60 * sr)
    with sf.SoundFile(str(path), "w", sr, 1, "PCM_16") as f:
        for i in range(0, n, 10 * sr):
            t = np.arange(i, min(n, i + 10 * sr)) / sr
            x = 0.1 * np.sin(2 * np.pi * (200 + 50 * np.sin(t / 3)) * t) + 0.02 * rng.standard_normal(t.size)
            f.write(x.astype(np.float32))
    return path


@pytest.fixture
def quiet_model(tmp_path, tiny_net) -> Path:
    """The tiny model with a large blank bias: it decodes 12 minutes in seconds (no symbols to emit)."""
    from zoo.models.base import model_config, save_pretrained

    with torch.no_grad():
        tiny_net.joiner.out.bias[0] += 30.0
    return save_pretrained(tiny_net, tmp_path / "quiet", config=model_config(tiny_net))


PEAK_RSS = """
import contextlib, io, resource, sys
from zoo.cli.main import main

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

model, short, long = sys.argv[1:4]
with contextlib.redirect_stdout(io.StringIO()):  # warm up: imports, model load, first allocations
    assert main(["transcribe", "--stream", "--model", model, short]) == 0
base = peak_mb()
rc = main(["transcribe", "--stream", "--model", model, long])
print(f"GROWTH {peak_mb() - base:.1f}", file=sys.stderr)
sys.exit(rc)
"""


def test_stream_long_file_with_bounded_memory(tmp_path, quiet_model, an4_wavs, capsys):
    long = write_long_wav(tmp_path / "long.wav", LONG_MINUTES)
    # batch decoding would hold it all: refused, with the way out
    assert main(["transcribe", "--model", str(quiet_model), str(long)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "min long" in err and "use --stream" in err
    # streamed: read block by block, peak memory barely moves
    p = subprocess.run([sys.executable, "-c", PEAK_RSS, str(quiet_model), str(an4_wavs[0]), str(long)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.splitlines() == [f"{long}\t"]  # one line: the (blank) transcript
    growth = float(p.stderr.split("GROWTH")[-1])
    assert growth < 60, f"peak RSS grew by {growth:.0f} MB while streaming {LONG_MINUTES} min"


@pytest.mark.parametrize("rate, channels", [(8000, 1), (44100, 2), (16000, 2)])
def test_incremental_reading_equals_whole_file(tmp_path, an4_wavs, rate, channels):
    from zoo.audio import iter_audio

    x, sr = sf.read(str(an4_wavs[2]), dtype="float32")
    y = torch.from_numpy(x)
    y = prepare_waveform(y, sr, rate).numpy()
    if channels == 2:
        y = np.stack([y, 0.5 * y], 1)
    f = tmp_path / f"x{rate}.flac"
    sf.write(str(f), y, rate, subtype="PCM_16")
    whole = load_audio(f, 16000)
    blocks = list(iter_audio(f, 16000, block_seconds=0.37))
    assert len(blocks) > 3
    assert torch.allclose(torch.cat(blocks), whole, atol=1e-5)
    # offset / duration segments too
    seg = torch.cat(list(iter_audio(f, 16000, offset=0.5, duration=1.0, block_seconds=0.3)))
    assert torch.allclose(seg, load_audio(f, 16000, offset=0.5, duration=1.0), atol=1e-5)


def test_stream_cli_equals_whole_file_streaming(tmp_path, tiny_folder, an4_wavs, capsys):
    from zoo.hub import from_pretrained

    x, sr = sf.read(str(an4_wavs[2]), dtype="float32")
    f = tmp_path / "a8k.wav"
    sf.write(str(f), prepare_waveform(torch.from_numpy(x), sr, 8000).numpy(), 8000, subtype="PCM_16")
    model = from_pretrained(tiny_folder)
    want = model.stream_transcribe(load_audio(f, 16000))
    assert main(["transcribe", "--stream", "--model", str(tiny_folder), str(f)]) == 0
    assert capsys.readouterr().out == f"{f}\t{want}\n"


def test_partials_on_stderr_final_on_stdout(tiny_folder, an4_wavs, capsys):
    assert main(["transcribe", "--stream", "--partials", "--model", str(tiny_folder), str(an4_wavs[2])]) == 0
    cap = capsys.readouterr()
    final = cap.out.splitlines()
    assert len(final) == 1 and final[0].startswith(f"{an4_wavs[2]}\t")
    text = final[0].split("\t", 1)[1]
    partials = [ln.split("(partial) ", 1)[1] for ln in cap.err.splitlines() if "(partial)" in ln]
    assert text and partials and all(text.startswith(p) for p in partials)


@pytest.mark.parametrize("stream", [False, True])
def test_skip_errors_goes_on_and_lists_skipped_files(tmp_path, tiny_folder, an4_wavs, capsys, stream):
    bad = tmp_path / "notaudio.wav"
    bad.write_text("not audio")
    missing = tmp_path / "missing.wav"
    argv = ["transcribe", "--model", str(tiny_folder), str(an4_wavs[0]), str(bad), str(missing), str(an4_wavs[1])]
    argv += ["--stream"] if stream else []
    assert main(argv) == 2  # without --skip-errors: the first bad file stops everything, nothing printed
    assert capsys.readouterr().out == ""
    assert main([*argv, "--skip-errors"]) == 1
    cap = capsys.readouterr()
    assert [ln.split("\t")[0] for ln in cap.out.splitlines()] == [str(an4_wavs[0]), str(an4_wavs[1])]
    assert "skipped 2 of 4" in cap.err and f"{bad}: cannot read" in cap.err and f"{missing}: " in cap.err


def test_int16_waveforms_are_scaled(tiny_net, an4_wavs):
    pcm, sr = sf.read(str(an4_wavs[2]), dtype="int16")
    flt = pcm.astype(np.float32) / 32768
    assert torch.allclose(prepare_waveform(pcm, sr, sr), torch.from_numpy(flt))
    assert torch.allclose(prepare_waveform(torch.from_numpy(pcm), sr, sr), torch.from_numpy(flt))
    i32 = pcm.astype(np.int32) << 16
    assert torch.allclose(prepare_waveform(i32, sr, sr), torch.from_numpy(flt))
    assert tiny_net.transcribe(pcm, sample_rate=sr) == tiny_net.transcribe(flt, sample_rate=sr)
    with pytest.raises(ZooError, match="int64"):
        prepare_waveform(torch.arange(100), sr, sr)


def test_finalized_session_refuses_audio_until_reset(tiny_net, an4_wavs):
    wav = load_audio(an4_wavs[0], 16000)
    s = tiny_net.stream()
    s.accept_waveform(wav[:8000])
    final = s.finalize()
    assert s.finalize() == final  # finalize again: the same result
    with pytest.raises(ZooError, match="finalized.*reset"):
        s.accept_waveform(wav[8000:])
    s.reset()
    s.accept_waveform(wav)
    assert s.finalize().text == tiny_net.transcribe(wav, sample_rate=16000)[0]
