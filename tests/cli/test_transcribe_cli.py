"""``zoo transcribe``: files, streaming, manifests with WER/CER (checked against zoo.metrics.wer)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from zoo.audio import load_audio
from zoo.cli.main import main
from zoo.hub import from_pretrained
from zoo.metrics.wer import error_rates
from zoo.models.base import model_config, save_pretrained

from helpers import lively_net


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, an4_wavs):
    """A model folder of the tiny random model tuned to emit varied text (see lively_net)."""
    net = lively_net(load_audio(an4_wavs[2], 16000))
    return save_pretrained(net, tmp_path_factory.mktemp("m") / "lively", config=model_config(net))


@pytest.fixture(scope="module")
def model(model_dir):
    return from_pretrained(model_dir)


@pytest.fixture
def files(tmp_path, an4_wavs):
    """a.wav (a copy of a real AN4 file) and b.flac (another one, re-encoded)."""
    a = tmp_path / "a.wav"
    a.write_bytes(an4_wavs[3].read_bytes())
    b = tmp_path / "b.flac"
    pcm, sr = sf.read(str(an4_wavs[2]), dtype="int16")
    sf.write(b, pcm, sr, format="FLAC")
    return a, b


def _lines(out: str) -> list[tuple[str, str]]:
    return [tuple(x.split("\t", 1)) for x in out.splitlines() if "\t" in x]


def test_saved_model_transcribes_like_the_original(model_dir, model, an4_wavs):
    net = lively_net(load_audio(an4_wavs[2], 16000))
    paths = [str(p) for p in an4_wavs[2:4]]
    assert model.transcribe(paths) == net.transcribe(paths)
    assert model.zoo_config["architecture"] == "transducer"


def test_files_real_command(model_dir, model, files):
    a, b = files
    p = subprocess.run([sys.executable, "-m", "zoo", "transcribe", "--model", str(model_dir), str(a), str(b)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    expected = model.transcribe([str(a), str(b)])
    assert p.stdout.splitlines() == [f"{a}\t{expected[0]}", f"{b}\t{expected[1]}"]
    assert expected[0] and expected[1] and expected[0] != expected[1]


@pytest.mark.parametrize("chunk_ms", ["160", "35"])
def test_stream_prints_the_same_text(model_dir, files, capsys, chunk_ms):
    a, b = files
    assert main(["transcribe", "--model", str(model_dir), str(a), str(b)]) == 0
    batch = capsys.readouterr().out
    assert main(["transcribe", "--model", str(model_dir), "--stream", "--chunk-ms", chunk_ms, str(a), str(b)]) == 0
    assert capsys.readouterr().out == batch
    assert len(_lines(batch)) == 2


def test_beam_search_option(model_dir, model, files, capsys):
    a, b = files
    assert main(["transcribe", "--model", str(model_dir), "--beam-size", "3", "--quiet", str(a), str(b)]) == 0
    got = [t for _, t in _lines(capsys.readouterr().out)]
    assert got == model.transcribe([str(a), str(b)], beam_size=3)


@pytest.fixture
def manifest(tmp_path, files, an4_wavs):
    """test.jsonl with relative paths, references with case and punctuation for the normaliser to remove,
    and an offset segment."""
    a, b = files
    entries = [{"audio_filepath": "a.wav", "duration": 0.8, "text": "two six, eight four four one eight."},
               {"audio_filepath": "b.flac", "duration": 3.3, "text": "placeholder"},
               {"audio_filepath": "b.flac", "offset": 1.0, "duration": 1.5, "text": "Enter six two!"}]
    m = tmp_path / "test.jsonl"
    m.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return m


def test_manifest_prints_wer_matching_metrics(model_dir, model, manifest, files, capsys):
    a, b = files
    # make the second reference equal to the model's own output: its WER contribution is 0
    hyp_b = model.transcribe(str(b))[0]
    lines = manifest.read_text().splitlines()
    e = json.loads(lines[1])
    e["text"] = hyp_b.lower()
    lines[1] = json.dumps(e)
    manifest.write_text("\n".join(lines) + "\n")

    assert main(["transcribe", "--model", str(model_dir), "--manifest", str(manifest)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = _lines("\n".join(out))
    assert [Path(p).name for p, _ in rows] == ["a.wav", "b.flac", "b.flac"]
    assert Path(rows[0][0]).resolve() == a.resolve()  # relative to the manifest's folder
    hyps = [t for _, t in rows]
    assert hyps[1] == hyp_b
    # the offset entry is the 1.0-2.5 s segment, not the whole file
    seg = load_audio(b, 16000, offset=1.0, duration=1.5)
    assert hyps[2] == model.transcribe(seg, sample_rate=16000)[0] != hyp_b

    m = re.fullmatch(r"WER (\d+\.\d\d)%  CER (\d+\.\d\d)%  \((\d+) utterances, (\d+) words, normaliser '(\w+)'\)",
                     out[-1])
    assert m, out[-1]
    refs = [json.loads(x)["text"] for x in manifest.read_text().splitlines()]
    res = error_rates(hyps, refs, m.group(5))
    assert m.group(5) == model.zoo_config["normalizer"] == "upper"
    assert float(m.group(1)) == pytest.approx(100 * res["wer"], abs=0.006)
    assert float(m.group(2)) == pytest.approx(100 * res["cer"], abs=0.006)
    assert (int(m.group(3)), int(m.group(4))) == (3, res["words"])
    assert 0 < res["wer"] and res["words"] == 7 + len(hyp_b.split()) + 3


def test_manifest_plus_files_scores_only_the_manifest(model_dir, manifest, files, capsys):
    a, _ = files
    assert main(["transcribe", "--model", str(model_dir), str(a), "--manifest", str(manifest)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(_lines("\n".join(out))) == 4 and "(3 utterances" in out[-1]


def test_stream_with_manifest_segments(model_dir, manifest, capsys):
    assert main(["transcribe", "--model", str(model_dir), "--manifest", str(manifest)]) == 0
    batch = capsys.readouterr().out
    assert main(["transcribe", "--model", str(model_dir), "--stream", "--manifest", str(manifest)]) == 0
    assert capsys.readouterr().out == batch
