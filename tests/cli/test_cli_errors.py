"""Bad input to the ``zoo`` command: one ``error: ...`` line on stderr, non-zero exit, no traceback,
and no partial output. Most cases run in-process (fast); a few run the real command in a subprocess."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from zoo.cli.main import main


@pytest.fixture
def bad(tmp_path, an4_wavs, tiny_folder):
    """Paths of broken inputs and models, built from a real AN4 file and the tiny model folder."""
    d = tmp_path / "bad"
    d.mkdir()
    good = d / "good.wav"
    good.write_bytes(an4_wavs[3].read_bytes())
    (d / "notaudio.wav").write_text("hello, not audio\n")
    (d / "truncated.wav").write_bytes(an4_wavs[3].read_bytes()[:5000])
    sf.write(d / "empty.wav", np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    x = sf.read(str(good), dtype="float32")[0]
    x[100] = np.nan
    sf.write(d / "nan.wav", x, 16000, subtype="FLOAT")
    (d / "folder.wav").mkdir()
    (d / "bad.jsonl").write_text(json.dumps({"audio_filepath": "good.wav", "duration": 0.8, "text": "A"})
                                 + "\n{not json}\n")
    # model folders: no weights; weights that do not match config.json; broken config.json
    no_w = tmp_path / "no-weights"
    no_w.mkdir()
    (no_w / "config.json").write_text((tiny_folder / "config.json").read_text())
    mism = tmp_path / "mismatch"
    mism.mkdir()
    cfg = json.loads((tiny_folder / "config.json").read_text())
    cfg["model"]["encoder"]["hidden"] = 48
    (mism / "config.json").write_text(json.dumps(cfg))
    (mism / "model.safetensors").write_bytes((tiny_folder / "model.safetensors").read_bytes())
    broken = tmp_path / "broken-config"
    broken.mkdir()
    (broken / "config.json").write_text("{oops")
    (broken / "model.safetensors").write_bytes((tiny_folder / "model.safetensors").read_bytes())
    return {"dir": d, "good": good, "model": tiny_folder, "no_w": no_w, "mism": mism, "broken": broken}


# (argv template, expected text in the message); {x} are filled from the ``bad`` fixture
CASES = {
    "missing file": (["transcribe", "--model", "{model}", "{dir}/nope.wav"], "audio file not found"),
    "not audio": (["transcribe", "--model", "{model}", "{dir}/notaudio.wav"], "cannot read .*notaudio.wav"),
    "truncated": (["transcribe", "--model", "{model}", "{dir}/truncated.wav"], "truncated"),
    "empty": (["transcribe", "--model", "{model}", "{dir}/empty.wav"], r"empty \(0 samples\)"),
    "nan": (["transcribe", "--model", "{model}", "{dir}/nan.wav"], "NaN or Inf"),
    "nan streamed": (["transcribe", "--stream", "--model", "{model}", "{dir}/nan.wav"], "NaN or Inf"),
    "a folder": (["transcribe", "--model", "{model}", "{dir}/folder.wav"], "is a folder"),
    "bad file after a good one": (["transcribe", "--model", "{model}", "{good}", "{dir}/truncated.wav"],
                                  "truncated"),
    "unknown model": (["transcribe", "--model", "lstm-rnt-an4", "{good}"], "did you mean lstm-rnnt-an4"),
    "missing weights": (["transcribe", "--model", "{no_w}", "{good}"], "missing model.safetensors"),
    "weights vs config": (["transcribe", "--model", "{mism}", "{good}"], "do not match its config.json"),
    "broken config": (["transcribe", "--model", "{broken}", "{good}"], "not valid JSON"),
    "path-like model": (["transcribe", "--model", "./nope", "{good}"], "model folder not found: ./nope"),
    "model is a file": (["transcribe", "--model", "{good}", "{good}"], "is a file"),
    "malformed manifest": (["transcribe", "--model", "{model}", "--manifest", "{dir}/bad.jsonl"],
                           r"bad.jsonl:2: not valid JSON"),
    "missing manifest": (["transcribe", "--model", "{model}", "--manifest", "{dir}/nope.jsonl"],
                         "manifest not found"),
    "nothing to do": (["transcribe", "--model", "{model}"], "give audio files or --manifest"),
    "stream + beam": (["transcribe", "--stream", "--beam-size", "4", "--model", "{model}", "{good}"],
                      "--stream decodes greedily"),
    "batch size 0": (["transcribe", "--batch-size", "0", "--model", "{model}", "{good}"], "--batch-size must be"),
    "chunk 0": (["transcribe", "--stream", "--chunk-ms", "0", "--model", "{model}", "{good}"], "--chunk-ms must be"),
    "data: no corpus": (["data", "an4", "--out", "{dir}/out", "--data-dir", "{dir}/nowhere"], "AN4 not found"),
}


def _argv(template, bad):
    return [a.format(**bad) for a in template]


def _check_one_error_line(err: str, out: str, match: str):
    import re

    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and re.search(match, lines[0]), lines[0]
    assert "Traceback" not in err and out == ""  # nothing printed before failing


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_in_process(case, bad, capsys):
    template, match = CASES[case]
    rc = main(_argv(template, bad))
    cap = capsys.readouterr()
    assert rc != 0
    _check_one_error_line(cap.err, cap.out, match)


@pytest.mark.parametrize("case", ["truncated", "malformed manifest"])
def test_bad_input_real_command(case, bad):
    """The real process: exit status 2, exactly one stderr line (no warnings, no traceback)."""
    template, match = CASES[case]
    p = subprocess.run([sys.executable, "-m", "zoo", *_argv(template, bad)], capture_output=True, text=True,
                       timeout=120, cwd=bad["dir"])
    assert p.returncode == 2, p.stderr
    _check_one_error_line(p.stderr, p.stdout, match)


def test_unwritable_output_is_one_line_and_writes_nothing(bad, an4_root, capsys):
    blocker = bad["dir"] / "file"
    blocker.write_text("x")
    rc = main(["data", "an4", "--out", str(blocker / "sub"), "--data-dir", str(an4_root.parent)])
    cap = capsys.readouterr()
    assert rc != 0
    _check_one_error_line(cap.err, cap.out, "Not a directory|File exists")
    assert blocker.read_text() == "x"


def test_no_partial_output_when_a_later_file_fails(bad, capsys):
    """Files are validated and transcribed before anything is printed, so a failure prints no results."""
    rc = main(["transcribe", "--model", str(bad["model"]), str(bad["good"]), str(bad["dir"] / "empty.wav")])
    cap = capsys.readouterr()
    assert rc == 2 and cap.out == ""


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["transcribe", "--chunk-ms", "fast"])
    assert e.value.code == 2 and "error:" in capsys.readouterr().err


def test_model_folder_error_messages_name_the_folder(bad, capsys):
    for key in ("no_w", "mism"):
        main(["transcribe", "--model", str(bad[key]), str(bad["good"])])
        assert str(bad[key]) in capsys.readouterr().err


def test_unknown_model_lists_released_models_when_nothing_is_close(bad, capsys):
    main(["transcribe", "--model", "zzzzzz", str(bad["good"])])
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'zzzzzz'") and "lstm-rnnt-an4" in err


@pytest.mark.parametrize("edit", ["unknown encoder", "unknown kwarg"])
def test_config_that_cannot_build_a_net(bad, tmp_path, capsys, edit):
    import shutil

    folder = tmp_path / "odd-config"
    shutil.copytree(bad["model"], folder)
    cfg = json.loads((folder / "config.json").read_text())
    if edit == "unknown encoder":
        cfg["model"]["encoder"]["name"] = "gru"
    else:
        cfg["model"]["encoder"]["hiden"] = 3
    (folder / "config.json").write_text(json.dumps(cfg))
    rc = main(["transcribe", "--model", str(folder), str(bad["good"])])
    cap = capsys.readouterr()
    assert rc == 2
    _check_one_error_line(cap.err, cap.out, str(folder))


@pytest.mark.parametrize("extra, message", [
    (["--model.init_args.asr_init", "ecapa-an4"], "'ecapa-an4' is not a transducer ASR model"),
    (["--model.init_args.asr_init", "lstm-rnnt-an4", "--model.init_args.init_from", "lstm-rnnt-an4"],
     "give init_from (an STS model) or asr_init"),
    (["--model.init_args.asr_init", "emformer-rnnt-an4"], "warm start needs LSTM encoders"),
])
def test_fit_with_a_bad_warm_start_is_one_line(tmp_path, capsys, extra, message):
    """zoo fit: a ZooError raised while the task is built (wrapped by jsonargparse) -> `error: ...`, exit 2."""
    rc = main(["fit", "--config", "configs/ci/sts_tiny.yaml", "--trainer.default_root_dir", str(tmp_path / "run"),
               "--trainer.enable_progress_bar", "false", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "run" / "checkpoints").exists()
