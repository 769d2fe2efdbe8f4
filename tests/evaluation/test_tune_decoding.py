"""scripts/tune_decoding.py: a dev grid of internal-LM weight x length bonus, one choice per decoding mode."""
from __future__ import annotations

from helpers import load_script


def test_tune_decoding_grid_and_choice(tiny_folder, an4_root, tmp_path, capsys):
    script = load_script("scripts/tune_decoding.py")
    out = tmp_path / "report.txt"
    assert script.main(["--model", str(tiny_folder), "--corpora", "an4", "--limit", "2", "--ilm-weights", "0", "0.5",
                        "--bonuses", "0", "1", "--beam", "2", "--data-dir", str(an4_root.parent),
                        "--out", str(out)]) == 0
    text = out.read_text()
    rows = [ln for ln in text.splitlines() if ln.startswith(("greedy ", "beam2 "))]
    assert len(rows) == 8  # 2 modes x 2 weights x 2 bonuses
    chosen = [ln for ln in text.splitlines() if ln.startswith("chosen for")]
    assert [c.split(":")[0] for c in chosen] == ["chosen for greedy", "chosen for beam2"]
    flags = next(ln for ln in text.splitlines() if ln.startswith("release flags:"))
    assert "--greedy-settings ilm_weight=" in flags and "--beam-settings ilm_weight=" in flags
    # the chosen row has the lowest mean dev WER of its mode
    for mode in ("greedy", "beam2"):
        means = [float(ln.split()[-1]) for ln in rows if ln.startswith(mode + " ")]
        line = next(c for c in chosen if c.startswith(f"chosen for {mode}"))
        best = float(line.split("mean dev WER ")[1].split("%")[0])
        assert abs(best - min(means)) < 0.01
