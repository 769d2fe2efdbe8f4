"""ruff (config in pyproject.toml: pyflakes, pycodestyle at 120 columns, import order) passes on the package,
the tests, the scripts and the benchmarks; mypy (config in pyproject.toml) passes on the nets and the models."""
import importlib.util
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


def test_mypy_passes_on_nets_and_models():
    # run with this interpreter, so mypy sees the torch (and its stubs) the package runs with
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    p = subprocess.run([sys.executable, "-m", "mypy", "zoo/nets", "zoo/models"], cwd=REPO, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
