"""benchmarks/train_speed.py: the timing core on the tiny CI recipe (real AN4 batches, a few steps)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from helpers import load_script

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "ci" / "tiny.yaml")


@pytest.fixture(scope="module")
def bench():
    mod = load_script("benchmarks/train_speed.py")
    return mod


def test_measure_tiny_recipe(bench, an4_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written relative to the cwd (e.g. the config's runs/ci_tiny) lands here
    threads = torch.get_num_threads()
    recipes = [("tiny", [TINY], []), ("tiny bf16", [TINY], ["--trainer.precision=bf16-mixed"])]
    rows = bench.measure(recipes, steps=2, warmup=1, threads=1, stats_batches=2,
                         extra=[f"--data.data_dir={an4_root}"])
    assert torch.get_num_threads() == threads  # restored
    assert [r["recipe"] for r in rows] == ["tiny", "tiny bf16"]
    assert [r["precision"] for r in rows] == ["32-true", "bf16-mixed"]
    for r in rows:
        assert set(r) == set(bench.ROW_KEYS)
        assert r["steps"] == 2 and r["threads"] == 1
        for k in ("utts_per_s", "audio_s_per_s", "s_per_step", "seconds", "audio_s", "ratio", "utts_ratio"):
            assert math.isfinite(r[k]) and r[k] > 0, (r["recipe"], k, r[k])
        assert r["utterances"] >= 2  # at least one utterance per timed batch
        # derived columns agree with the raw counts
        assert r["utts_per_s"] == pytest.approx(r["utterances"] / r["seconds"])
        assert r["audio_s_per_s"] == pytest.approx(r["audio_s"] / r["seconds"])
        assert r["s_per_step"] == pytest.approx(r["seconds"] / 2)
        # tiny batches hold at most max_duration (12 s) of audio each, 2 timed batches
        assert 0 < r["audio_s"] <= 2 * 12 + 1e-6
    assert rows[0]["ratio"] == 1.0 and rows[0]["utts_ratio"] == 1.0
    assert rows[1]["ratio"] == pytest.approx(rows[1]["audio_s_per_s"] / rows[0]["audio_s_per_s"])
    # same seed, same data: both rows trained on the same batches
    assert rows[0]["utterances"] == rows[1]["utterances"] and rows[0]["audio_s"] == rows[1]["audio_s"]
    # no run outputs (W&B, checkpoints) anywhere in the working directory
    assert not any(tmp_path.rglob("*")), sorted(tmp_path.rglob("*"))[:5]
    table = bench.format_table(rows, warmup=1)
    assert "tiny bf16" in table and "bf16-mixed" in table and "audio-s/s" in table


def test_timer_counts_only_timed_batches(bench):
    """StepTimer on a fake trainer: warm-up batches are not counted, the clock stops at warmup + steps."""

    class Strategy:
        root_device = torch.device("cpu")

    class Trainer:
        strategy, global_step = Strategy(), 0

    t, timer = Trainer(), bench.StepTimer(warmup=2, steps=3)
    timer.on_train_start(t, None)
    for step in range(1, 8):
        t.global_step = step
        timer.on_train_batch_end(t, None, None, {"audio_lens": torch.tensor([16000] * step)}, step - 1)
    # batches 3, 4, 5 (sizes 3, 4, 5) are timed; batches after step 5 are ignored
    assert timer.utterances == 12 and timer.samples == 12 * 16000
    assert timer.t0 is not None and timer.t1 is not None and timer.t1 >= timer.t0


def test_cli_rejects_single_dash_extras(bench):
    with pytest.raises(SystemExit):
        bench.main(["--steps", "1", "-x"])


def test_loader_worker_row_is_v2_with_workers(bench):
    names = [r[0] for r in bench.default_recipes(fp32=False)]
    assert names == ["today", "v2"]
    recipes = bench.default_recipes(["a.yaml"], ["b.yaml"], fp32=True, loader_workers=2)
    assert [r[0] for r in recipes] == ["today", "v2", "v2 fp32", "v2 +2 loader"]
    assert recipes[-1][1:] == (["b.yaml"], ["--data.num_workers=2"])
