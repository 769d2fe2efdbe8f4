"""scripts/cca_v2_sweep.sh: each arm's init folder and `zoo fit` arguments (ZOO / PY replaced by recorders)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox(tmp_path):
    """A copy of the script beside recorder stand-ins for `zoo` and `python`, run from a scratch repo root."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "cca_v2_sweep.sh", tmp_path / "scripts")
    log = tmp_path / "calls.txt"
    for name in ("zoo", "py"):
        f = tmp_path / name
        # the python stand-in makes the init folder it is asked for, as cca_init_from_allon.py would
        f.write_text(f'#!/bin/bash\necho "{name} $*" >> {log}\n'
                     + ('out=$3; mkdir -p "$out"; touch "$out/config.json"\n' if name == "py" else ""))
        f.chmod(0o755)
    return tmp_path, log


def run(sandbox, arms: str):
    root, log = sandbox
    env = {**os.environ, "ZOO": str(root / "zoo"), "PY": str(root / "py")}
    return subprocess.run(["bash", "scripts/cca_v2_sweep.sh", arms, "exp/cca_v2"], cwd=root, env=env,
                          capture_output=True, text=True)


def test_arms_get_their_init_and_lambda(sandbox):
    root, log = sandbox
    p = run(sandbox, "allon lam4 win8 win8_lam4")
    assert p.returncode == 0, p.stderr
    calls = log.read_text().splitlines()
    inits = [c for c in calls if c.startswith("py ")]
    fits = [c for c in calls if c.startswith("zoo ")]
    assert inits == [
        "py scripts/cca_init_from_allon.py transformer-rnnt-an4-so762 exp/cca_v2/init_w0 --window 0",
        "py scripts/cca_init_from_allon.py transformer-rnnt-an4-so762 exp/cca_v2/init_w8_nogates --window 8 --no-gates",
        "py scripts/cca_init_from_allon.py transformer-rnnt-an4-so762 exp/cca_v2/init_w8 --window 8"]
    want = {"allon": ("transformer-rnnt-an4-so762", "0"), "lam4": ("exp/cca_v2/init_w0", "4"),
            "win8": ("exp/cca_v2/init_w8_nogates", "0"), "win8_lam4": ("exp/cca_v2/init_w8", "4")}
    assert len(fits) == 4
    for fit, (arm, (init, lam)) in zip(fits, want.items()):
        assert f"--model.init_args.init_from {init} --model.init_args.compute_weight {lam}" in fit
        assert f"--trainer.default_root_dir exp/cca_v2/{arm} " in fit and "configs/asr/v2/cca_ft.yaml" in fit


def test_unknown_arm_is_one_line(sandbox):
    p = run(sandbox, "lambda4")
    assert p.returncode == 2 and p.stderr.strip().startswith("error: unknown arm 'lambda4'")
    assert len(p.stderr.strip().splitlines()) == 1
