"""Issue 14.1, one error path: every mistake, ``zoo fit`` included, is one ``error: <what> — <what to do>`` line
on stderr, nothing on stdout, no traceback, exit status 2 — jsonargparse failures (not a 70-line usage dump),
Hub / network failures (httpx errors in huggingface_hub 2.x), wrong-task models, impossible values."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.cli.main import main

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "ci" / "tiny.yaml")


def one_line(err: str, out: str = "") -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("error: ") and "Traceback" not in err, lines[0]
    assert out == "", out
    return lines[0]


def fit_args(root: Path, *extra: str) -> list[str]:
    return ["fit", "--config", TINY, "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar",
            "false", *extra]


# --- zoo fit: jsonargparse and Trainer mistakes -------------------------------------------------------------
@pytest.mark.parametrize("extra, want", [
    (["--model.init_args.ctc_wieght", "0.3"], "--model: zoo.tasks.TransducerTask: Option 'ctc_wieght' is not accepted"),
    (["--model.init_args.encoder", "{name: lstm, stack: 4, hiden: 32}"], "unexpected keyword argument 'hiden'"),
    (["--model.init_args.encoder.hiden", "32"], "unexpected keyword argument 'hiden'"),
    (["--trainer.max_steps", "abc"], "--trainer.max_steps: Expected a <class 'int'>"),
    (["--trainer.max_steps", "-5"], "--trainer.max_steps -5: a run needs at least 1 step"),
    (["--trainer.max_steps", "0"], "--trainer.max_steps 0: a run needs at least 1 step"),
    (["--ckpt_path", "{tmp}/nope.ckpt"], "--ckpt_path .*nope.ckpt: not found — give the .ckpt file"),
    (["--config", "{tmp}/nope.yaml"], "--config: File does not exist"),
    (["--trainer.max_stepz", "3"], "unrecognized arguments: --trainer.max_stepz"),
])
def test_fit_mistakes_are_one_line(tmp_path, capsys, extra, want):
    import re

    extra = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    rc = main(fit_args(tmp_path / "run", *extra))
    cap = capsys.readouterr()
    assert rc == 2
    line = one_line(cap.err, cap.out)
    assert re.search(want, line), line
    assert not (tmp_path / "run").exists()  # nothing started: no run folder, no W&B run


def test_fit_typo_inside_a_config_file_encoder_dict(tmp_path, capsys):
    bad = tmp_path / "typo.yaml"
    bad.write_text("model:\n  init_args:\n    encoder: {name: lstm, stack: 4, hidden: 32, layres: 1}\n")
    assert main(fit_args(tmp_path / "run", "--config", str(bad))) == 2
    cap = capsys.readouterr()
    assert "unexpected keyword argument 'layres'" in one_line(cap.err, cap.out)


def test_fit_missing_corpus_names_the_fit_flag_before_anything_starts(tmp_path, capsys):
    """The DataModule is set up before the Trainer and W&B say anything; the message names --data.data_dir."""
    assert main(fit_args(tmp_path / "run", "--data.data_dir", str(tmp_path / "nowhere"))) == 2
    cap = capsys.readouterr()
    line = one_line(cap.err, cap.out)
    assert "AN4 not found" in line and "--data.data_dir" in line
    assert not (tmp_path / "run").exists()


def test_fit_typo_real_command_is_one_line(tmp_path):
    """The console script: one stderr line with jsonargparse's real message (not the usage dump), exit 2."""
    zoo = Path(sys.executable).parent / "zoo"
    p = subprocess.run([str(zoo), *fit_args(tmp_path / "run", "--model.init_args.ctc_wieght", "0.3")],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 2, p.stderr[-2000:]
    line = one_line(p.stderr, p.stdout)
    assert "ctc_wieght" in line and "see zoo fit --help" in line


# --- argparse subcommands -----------------------------------------------------------------------------------
def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["transcribe", "--chunk-ms", "fast"])
    assert e.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert "--chunk-ms" in line and "see zoo transcribe --help" in line


def test_config_json_that_is_a_list(tmp_path, tiny_folder, an4_wavs, capsys):
    folder = tmp_path / "listy"
    folder.mkdir()
    (folder / "config.json").write_text("[1, 2]\n")
    (folder / "model.safetensors").write_bytes((tiny_folder / "model.safetensors").read_bytes())
    assert main(["transcribe", "--model", str(folder), str(an4_wavs[0])]) == 2
    cap = capsys.readouterr()
    assert "holds a JSON list, not an object" in one_line(cap.err, cap.out)


@pytest.mark.parametrize("cmd", ["transcribe", "evaluate"])
def test_speaker_model_for_asr_commands(cmd, tiny_speaker_folder, an4_wavs, capsys):
    argv = [cmd, "--model", str(tiny_speaker_folder)] + ([str(an4_wavs[0])] if cmd == "transcribe" else [])
    assert main(argv) == 2
    cap = capsys.readouterr()
    line = one_line(cap.err, cap.out)
    assert "is a speaker model" in line and f"zoo {cmd} needs a speech recognition model" in line


def test_asr_model_for_embed(tiny_folder, an4_wavs, capsys):
    assert main(["embed", "--model", str(tiny_folder), str(an4_wavs[0])]) == 2
    cap = capsys.readouterr()
    assert "its task is 'asr'" in one_line(cap.err, cap.out)


@pytest.mark.parametrize("argv", [
    ["transcribe", "--beam-size", "0", "--model", "{model}", "{wav}"],
    ["transcribe", "--beam-size", "-2", "--model", "{model}", "{wav}"],
    ["evaluate", "--beam-size", "0", "--model", "{model}"],
])
def test_beam_size_below_one_is_refused(argv, tiny_folder, an4_wavs, capsys):
    assert main([a.format(model=tiny_folder, wav=an4_wavs[0]) for a in argv]) == 2
    cap = capsys.readouterr()
    assert "--beam-size must be at least 1" in one_line(cap.err, cap.out)


def test_transcribe_api_refuses_beam_size_zero(tiny_net, an4_wavs):
    from zoo.errors import ZooError

    with pytest.raises(ZooError, match="beam_size"):
        tiny_net.transcribe(str(an4_wavs[0]), beam_size=0)


def test_mix_offset_far_beyond_the_audio_is_refused_before_mixing(tmp_path, an4_wavs, capsys, monkeypatch):
    import zoo.data.mix

    def never(*a, **k):  # the old behaviour: allocate offset * rate samples (1e6 s: ~60 GB)
        raise AssertionError("mix_files called with an absurd offset")

    monkeypatch.setattr(zoo.data.mix, "mix_files", never)
    out = tmp_path / "m.wav"
    assert main(["mix", str(an4_wavs[0]), str(an4_wavs[1]), "--offset", "1e6", "-o", str(out)]) == 2
    cap = capsys.readouterr()
    assert "--offset" in one_line(cap.err, cap.out) and not out.exists()


def test_messages_name_flags_as_spelled_on_the_command_line(tmp_path, capsys):
    assert main(["data", "an4", "--out", str(tmp_path / "m"), "--data-dir", str(tmp_path / "nowhere")]) == 2
    line = one_line(capsys.readouterr().err)
    assert "--data-dir" in line and "--data_dir" not in line


# --- the Hub: no network -------------------------------------------------------------------------------------
def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_push_without_network_is_one_line(tmp_path, tiny_folder):
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}", "HF_TOKEN": "hf_dummy_token",
           "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    p = subprocess.run([sys.executable, "-m", "zoo", "push", str(tiny_folder), "someone/tiny"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 2, p.stderr[-2000:]
    line = one_line(p.stderr, p.stdout)
    assert "push to someone/tiny failed" in line and "cannot reach" in line and "HF_ENDPOINT" in line
