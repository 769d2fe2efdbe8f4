"""Issue 14.6, output hygiene: stdout carries results only (progress bars and Lightning's chatter go to stderr,
known third-party warnings are filtered), ``zoo list`` fits 80 columns, ``zoo --help`` lists the Lightning
subcommands and help texts show defaults."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.cli.main import main

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "ci" / "tiny.yaml")


def test_fit_prints_nothing_on_stdout_and_validate_prints_metrics(tmp_path, an4_root):
    """`zoo fit ... > out.txt` captures nothing (the recipe's RichProgressBar writes to stderr); the lhotse
    'eagerly read CutSet' and Lightning LeafSpec warnings are filtered; validate's metrics are on stdout."""
    zoo = str(Path(sys.executable).parent / "zoo")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    root = tmp_path / "run"
    common = ["--config", TINY, "--trainer.default_root_dir", str(root), "--data.data_dir", str(an4_root)]
    p = subprocess.run([zoo, "fit", *common, "--trainer.max_steps", "2"], capture_output=True, text=True,
                       timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout == ""
    assert "Epoch" in p.stderr  # the progress bar is still there, on stderr
    assert "eagerly read CutSet" not in p.stderr and "LeafSpec" not in p.stderr

    p = subprocess.run([zoo, "validate", *common, "--ckpt_path", str(root / "checkpoints" / "last.ckpt"),
                        "--trainer.limit_val_batches", "1"], capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = dict(line.split("\t") for line in p.stdout.splitlines())
    assert {"val_wer", "val_loss"} <= set(rows) and all(float(v) >= 0 for v in rows.values())


def test_transcribe_progress_bar_goes_to_stderr(tiny_folder, an4_wavs, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # progress is shown on a terminal
    paths = [str(w) for w in an4_wavs[:3]]
    assert main(["transcribe", "--model", str(tiny_folder), "--batch-size", "1", *paths]) == 0
    cap = capsys.readouterr()
    assert [ln.split("\t")[0] for ln in cap.out.splitlines()] == paths  # results only
    assert "transcribing" in cap.err


def test_rich_console_is_restored_after_a_command():
    import rich

    from zoo.cli.main import cli_output

    before = rich.get_console().file
    with cli_output():
        assert rich.get_console().file is sys.stderr
    assert rich.get_console().file is before


def test_list_fits_80_columns(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    for extra in ([], ["--long"]):
        assert main(["list", *extra]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) > 5 and "lstm-rnnt-an4" in "\n".join(lines)
        assert max(len(ln) for ln in lines) <= 80, max(lines, key=len)


def test_help_lists_lightning_commands_and_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("fit", "validate", "test", "predict", "transcribe", "export"):
        assert f"    {cmd} " in out or f"    {cmd}\n" in out, cmd
    with pytest.raises(SystemExit):
        main(["transcribe", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 160.0)" in out and "(default: 8)" in out and "(default: lstm-rnnt-an4)" in out
