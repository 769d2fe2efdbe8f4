"""`zoo embed`, `zoo verify` and `zoo score` on real AN4 audio with a tiny speaker model, and their errors:
one `error: ...` line, exit status 2, no output file."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from zoo.cli.main import main
from zoo.data import make_trials, write_trials


@pytest.fixture
def sv_files(tmp_path, an4_root):
    """A manifest of 3 utterances each of 2 female + 2 male AN4 test speakers and its all-pairs trials."""
    ids = (an4_root / "etc" / "an4_test.fileids").read_text().split()
    by_spk: dict[str, list[str]] = {}
    for i in ids:
        by_spk.setdefault(i.split("/")[1], []).append(i)
    spks = [s for s in sorted(by_spk) if s[0] == "f"][:2] + [s for s in sorted(by_spk) if s[0] == "m"][:2]
    lines, utts = [], []
    for s in spks:
        for i in by_spk[s][:3]:
            uid = i.split("/")[-1]
            lines.append(json.dumps({"id": uid, "audio_filepath": str(an4_root / "wav" / f"{i}.wav"),
                                     "speaker": s, "gender": s[0]}))
            utts.append((uid, s))
    man = tmp_path / "m.jsonl"
    man.write_text("\n".join(lines) + "\n")
    return {"manifest": man, "trials": write_trials(make_trials(utts), tmp_path / "trials.txt"), "dir": tmp_path}


def test_embed_prints_and_writes(tiny_speaker_folder, an4_wavs, tmp_path, capsys):
    paths = [str(p) for p in an4_wavs[:2]]
    assert main(["embed", "--model", str(tiny_speaker_folder), *paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split("\t")[0] for ln in lines] == paths
    v = np.array(lines[0].split("\t")[1].split(), dtype=float)
    assert v.shape == (24,) and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-4)
    assert main(["embed", "--model", str(tiny_speaker_folder), *paths, "-o", str(tmp_path / "e.npy")]) == 0
    e = np.load(tmp_path / "e.npy")
    assert e.shape == (2, 24) and np.allclose(e[0], v, atol=1e-5)
    assert main(["embed", "--model", str(tiny_speaker_folder), *paths, "-o", str(tmp_path / "e.pt")]) == 0
    d = torch.load(tmp_path / "e.pt")
    assert d["paths"] == paths and torch.allclose(d["embeddings"], torch.from_numpy(e))


def test_verify_prints_decision(tiny_speaker_folder, an4_wavs, capsys):
    a = str(an4_wavs[0])
    assert main(["verify", "--model", str(tiny_speaker_folder), a, a]) == 0
    out = capsys.readouterr().out
    assert out.startswith("score 1.0000\taccept (threshold 0.5000)")
    assert main(["verify", "--model", str(tiny_speaker_folder), a, str(an4_wavs[1]), "--threshold", "1.5"]) == 0
    assert "\treject (threshold 1.5000)" in capsys.readouterr().out


def test_score_table_json_and_det(tiny_speaker_folder, sv_files, capsys):
    out = sv_files["dir"] / "scores"
    assert main(["score", "--model", str(tiny_speaker_folder), "--trials", str(sv_files["trials"]),
                 "--manifest", str(sv_files["manifest"]), "--out", str(out), "--n-boot", "30"]) == 0
    text = capsys.readouterr().out
    for key in ("eer %", "min_dcf_0.01", "min_dcf_0.05", "eer_f %", "eer_m %", "gender_gap %"):
        assert key in text
    rep = json.loads((out / "metrics.json").read_text())
    assert rep["n_trials"] == 66 and rep["n_target"] == 12 and rep["n_speakers"] == 4 and "ci" in rep
    assert (out / "det.png").read_bytes()[:4] == b"\x89PNG"


def _err(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_cli_errors(tiny_speaker_folder, tiny_folder, sv_files, an4_wavs, tmp_path, capsys):
    m, a, b = str(tiny_speaker_folder), str(an4_wavs[0]), str(an4_wavs[1])
    out = tmp_path / "o"
    cases = [
        (["embed", "--model", m, a, "-o", str(out / "e.txt")], ".npy or .pt"),
        (["embed", "--model", m, str(tmp_path / "missing.wav"), "-o", str(out / "e.npy")], "not found"),
        (["embed", "--model", str(tiny_folder), a, "-o", str(out / "e.npy")], "not a speaker-embedding model"),
        (["verify", "--model", str(tmp_path / "nope"), a, b], "not found"),
        (["score", "--model", m, "--trials", str(tmp_path / "none.txt"), "--out", str(out)], "trials file not found"),
        (["score", "--model", m, "--trials", str(sv_files["trials"]), "--out", str(out)], "--manifest"),
        (["score", "--model", m, "--trials", str(sv_files["trials"]), "--manifest", str(sv_files["manifest"]),
          "--n-boot", "-1", "--out", str(out)], "--n-boot"),
    ]
    bad_trials = tmp_path / "bad_trials.txt"
    bad_trials.write_text("x y target\n")
    cases.append((["score", "--model", m, "--trials", str(bad_trials), "--manifest", str(sv_files["manifest"]),
                   "--out", str(out)], "not in"))
    for argv, msg in cases:
        assert main(argv) == 2, argv
        assert msg in _err(capsys), argv
        assert not out.exists(), argv  # nothing half-written
    # a model folder without a calibrated threshold
    import shutil

    nothr = tmp_path / "nothr"
    shutil.copytree(tiny_speaker_folder, nothr)
    cfg = json.loads((nothr / "config.json").read_text())
    del cfg["verification"]
    (nothr / "config.json").write_text(json.dumps(cfg))
    assert main(["verify", "--model", str(nothr), a, b]) == 2
    assert "calibrate" in _err(capsys)
