"""ruff (config in pyproject.toml: pyflakes, pycodestyle at 120 columns, import order) passes on the package,
the tests, the scripts and the benchmarks."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_ruff_passes():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    p = subprocess.run([ruff, "check", "--output-format", "concise", "zoo", "tests", "scripts", "benchmarks"],
                       cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
