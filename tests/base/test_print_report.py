"""zoo.io.print_report: what the report scripts (scripts/lm_fusion.py, scripts/tune_turn_gap.py) print and write."""
from __future__ import annotations

from zoo.io import print_report

from helpers import load_script


def test_print_report_prints_and_writes_the_same_text(tmp_path, capsys):
    out = tmp_path / "sub" / "r.txt"
    text = print_report(["a", "b"], out)
    assert text == "a\nb\n" and out.read_text() == text and capsys.readouterr().out == text + "\n"
    print_report(["c"])  # no file
    assert capsys.readouterr().out == "c\n\n" and sorted(p.name for p in tmp_path.rglob("*")) == ["r.txt", "sub"]


def test_report_scripts_import():
    for script in ("scripts/lm_fusion.py", "scripts/tune_turn_gap.py"):
        assert callable(load_script(script).main)
