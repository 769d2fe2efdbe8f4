"""scripts/fit_diagnosis.py: train vs dev WER per corpus on seeded samples."""
from __future__ import annotations

from helpers import load_script


def test_fit_diagnosis_table_and_bad_n(tiny_folder, an4_root, capsys):
    fd = load_script("scripts/fit_diagnosis.py")
    args = ["--model", str(tiny_folder), "--corpora", "an4", "--n", "2", "--n-boot", "10",
            "--data-dir", str(an4_root.parent)]
    assert fd.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "on 2 seeded utterances" in lines[0] and lines[1].split() == ["corpus", "train", "dev"]
    cells = lines[2].split()
    assert cells[0] == "an4" and len(cells) == 5 and all(0 <= float(cells[i]) for i in (1, 3))
    assert fd.main(args[:4] + ["--n", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--n" in err[0]
