"""Issue 14.2, never destroy: every CLI writer refuses an existing output unless ``--force``, writes atomically
(no temp files left, nothing half-written), and ``zoo fisher`` never writes into a bundled release folder by
default."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from zoo.cli.main import main


def one_line(capsys) -> str:
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and cap.out == "", cap.err
    return lines[0]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.fixture
def ckpt(tmp_path, tiny_net) -> Path:
    """A checkpoint as a zoo task writes it (net.* weights + zoo_config), without running a fit."""
    from zoo.models.base import model_config

    p = tmp_path / "last.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in tiny_net.state_dict().items()},
                "zoo_config": model_config(tiny_net)}, p)
    return p


# --- zoo export -----------------------------------------------------------------------------------------------
def test_export_refuses_an_existing_model_folder_without_force(ckpt, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["export", str(ckpt), str(out)]) == 0
    (out / "fisher.safetensors").write_bytes(b"precious")
    cfg = (out / "config.json").read_text()
    capsys.readouterr()

    assert main(["export", str(ckpt), str(out), "--name", "other"]) == 2
    line = one_line(capsys)
    assert "--force" in line and "fisher.safetensors" in line  # names what would be lost
    assert (out / "fisher.safetensors").read_bytes() == b"precious" and (out / "config.json").read_text() == cfg

    assert main(["export", str(ckpt), str(out), "--name", "other", "--force"]) == 0
    assert "# other" in (out / "README.md").read_text()
    assert no_temp_files(tmp_path)


def test_export_failure_leaves_the_old_folder(ckpt, tmp_path, capsys, monkeypatch):
    """The new folder is built and verified beside the old one; a failed verification changes nothing."""
    import zoo.models.base

    out = tmp_path / "model"
    assert main(["export", str(ckpt), str(out)]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(folder, *a, **k):
        raise zoo.models.base.ModelFolderError(f"{folder}: simulated reload failure")

    monkeypatch.setattr(zoo.models.base, "load_folder", broken)
    assert main(["export", str(ckpt), str(out), "--force", "--name", "new"]) == 2
    line = one_line(capsys)
    assert "simulated reload failure" in line and f"{out}:" in line  # names the folder asked for
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert no_temp_files(tmp_path)


# --- zoo fisher -----------------------------------------------------------------------------------------------
@pytest.fixture
def bundled(tmp_path, tiny_folder, monkeypatch):
    """A fake bundled release 'tiny-release' (a copy of the tiny model in a stand-in checkpoints/ folder)."""
    import shutil

    import zoo.hub.registry as registry

    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_folder, root / "tiny-release")
    monkeypatch.setattr(registry, "CHECKPOINTS", root)
    monkeypatch.setitem(registry.MODELS, "tiny-release", {"task": "asr", "description": "test"})
    return root / "tiny-release"


@pytest.fixture
def manifest(tmp_path, an4_wavs) -> Path:
    m = tmp_path / "train.jsonl"
    m.write_text("".join(json.dumps({"audio_filepath": str(w), "duration": sf.info(str(w)).duration,
                                     "text": "A B"}) + "\n" for w in an4_wavs[:2]))
    return m


def test_fisher_never_writes_into_a_bundled_release_by_default(bundled, manifest, tmp_path, capsys):
    base = ["fisher", "--model", "tiny-release", "--manifest", str(manifest), "--utterances", "1", "--quiet"]
    assert main(base) == 2
    assert "give --out PATH" in one_line(capsys)
    assert main([*base, "--out", str(bundled / "fisher.safetensors")]) == 2
    assert "bundled release folders" in one_line(capsys)
    assert not (bundled / "fisher.safetensors").exists()
    # an explicit path elsewhere is fine; then an existing file is refused unless --force
    out = tmp_path / "fisher" / "tiny.safetensors"
    assert main([*base, "--out", str(out)]) == 0 and out.is_file()
    capsys.readouterr()
    out.write_bytes(b"keep")
    assert main([*base, "--out", str(out)]) == 2
    assert "--force" in one_line(capsys) and out.read_bytes() == b"keep"
    assert main([*base, "--out", str(out), "--force"]) == 0 and out.read_bytes() != b"keep"


# --- files: --json, -o/--output, --out ------------------------------------------------------------------------
def test_embed_output_refused_then_forced(tiny_speaker_folder, an4_wavs, tmp_path, capsys):
    out = tmp_path / "e.npy"
    out.write_bytes(b"old")
    argv = ["embed", "--model", str(tiny_speaker_folder), str(an4_wavs[0]), "-o", str(out)]
    assert main(argv) == 2
    assert "--output" in one_line(capsys) and out.read_bytes() == b"old"
    assert main([*argv, "--force"]) == 0
    assert np.load(out).shape[0] == 1 and no_temp_files(tmp_path)


def test_mix_output_refused_then_forced(an4_wavs, tmp_path, capsys):
    out = tmp_path / "mix.wav"
    out.write_bytes(b"old")
    argv = ["mix", str(an4_wavs[0]), str(an4_wavs[1]), "--offset", "0.5", "-o", str(out)]
    assert main(argv) == 2
    assert "--force" in one_line(capsys) and out.read_bytes() == b"old"
    assert main([*argv, "--force"]) == 0
    assert sf.info(str(out)).duration > 0.5 and no_temp_files(tmp_path)


def test_evaluate_json_refused_before_any_work(tiny_folder, tmp_path, capsys):
    out = tmp_path / "res.json"
    out.write_text("{}")
    assert main(["evaluate", "--model", str(tiny_folder), "--json", str(out), "--data-dir", str(tmp_path)]) == 2
    assert "--json" in one_line(capsys) and out.read_text() == "{}"


def test_score_out_refused(tiny_speaker_folder, tmp_path, capsys):
    out = tmp_path / "sv"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    trials = tmp_path / "trials.txt"
    trials.write_text("a b target\n")
    assert main(["score", "--model", str(tiny_speaker_folder), "--trials", str(trials), "--out", str(out)]) == 2
    assert "--force" in one_line(capsys) and (out / "metrics.json").read_text() == "{}"


def test_data_manifests_refused(tmp_path, capsys):
    (tmp_path / "test.jsonl").write_text("precious\n")
    assert main(["data", "an4-mix", "--out", str(tmp_path), "--sessions", "2"]) == 2
    assert "--force" in one_line(capsys) and (tmp_path / "test.jsonl").read_text() == "precious\n"


def test_audit_report_refused(tmp_path, capsys):
    out = tmp_path / "audit"
    out.mkdir()
    (out / "report.json").write_text("{}")
    assert main(["audit", "--records", str(tmp_path / "r.jsonl"), "--method", "metadata", "--out", str(out)]) == 2
    assert "--force" in one_line(capsys) and (out / "report.json").read_text() == "{}"


def test_one_atomic_write_helper_family():
    """zoo.io holds the atomic writers; the CLI and the hub writers use them (no private tempfile+rename)."""
    root = Path(__file__).resolve().parents[2] / "zoo"
    for f in [*sorted((root / "cli").glob("*.py")), root / "hub" / "export.py", root / "audio.py",
              root / "data" / "mix.py", root / "data" / "manifest.py", root / "evaluation" / "peers.py"]:
        text = f.read_text()
        assert "mkstemp" not in text and "os.replace" not in text and ".replace(lhotse" not in text, f
