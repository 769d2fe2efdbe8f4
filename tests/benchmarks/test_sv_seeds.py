"""benchmarks/sv.py --seeds: the per-system table of stored per-seed scores (no model is run)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import load_script

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sv():
    mod = load_script("benchmarks/sv.py")
    return mod


def _write(root: Path, system: str, seed: int, eer: float, child: float, adult: float) -> None:
    d = root / system / f"s{seed}"
    d.mkdir(parents=True)
    for name, e in (("so762", eer), ("so762_child", child), ("so762_adult", adult), ("an4sv", eer)):
        (d / f"{name}.json").write_text(json.dumps({"eer": e, "min_dcf_0.01": 0.5}))


def test_seeds_table_means_gap_and_relative_change(sv, tmp_path):
    _write(tmp_path, "ecapa", 0, 0.05, 0.08, 0.04)
    _write(tmp_path, "ecapa", 1, 0.07, 0.10, 0.04)
    _write(tmp_path, "arw_pl", 0, 0.054, 0.06, 0.05)      # worst cohort 6.00 vs 9.00, gap 1 vs 5 points
    (tmp_path / "arw_pl" / "s1").mkdir()                 # a seed without scores is skipped
    m = sv.seed_metrics(tmp_path / "ecapa" / "s1")
    assert m["eer_worst"] == pytest.approx(10.0) and m["age_gap"] == pytest.approx(6.0)
    text = sv.seeds_table(tmp_path, "ecapa")
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith(("ecapa", "arw_pl"))}
    assert rows["ecapa"].split()[1:4] == ["2", "6.00", "±"] and "1.41" in rows["ecapa"]
    assert rows["arw_pl"].split()[1:3] == ["1", "5.40"]
    rel = [line for line in text.splitlines() if line.strip().startswith("arw_pl:")][0]
    assert "EER -10.0% (goal -7.6%: met)" in rel and "gap pts -80.0% (goal -17.0%: met)" in rel
    assert "worst -33.3%" in rel
    with pytest.raises(SystemExit, match="no <system>"):
        sv.seeds_table(tmp_path / "arw_pl", "ecapa")
