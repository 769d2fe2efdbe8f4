"""2-process DDP on CPU (gloo) through the real console script: ranks see different AN4 batches, agree on the
featurizer statistics all-reduced in ``on_fit_start`` and end with identical weights."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "ci" / "tiny.yaml"
DDP = REPO / "configs" / "trainer" / "ddp.yaml"


class RankProbe(Callback):
    """Test-only callback (imported by the ``zoo fit`` ranks via PYTHONPATH=tests/tasks): per rank, records the cut
    ids of every training batch, the featurizer stats right after ``on_fit_start`` (before any DDP forward
    could broadcast buffers), and the final state_dict."""

    def __init__(self, out_dir: str):
        self.out_dir = Path(out_dir)
        self.ids: list[list[str]] = []

    def on_train_start(self, trainer, pl_module):
        f = pl_module.net.featurizer
        self.stats = {"mean": f.mean.tolist(), "std": f.std.tolist()}
        self.initial = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.ids.append(list(batch["id"]))

    def on_train_end(self, trainer, pl_module):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        r = trainer.global_rank
        sampler = trainer.train_dataloader.sampler
        (self.out_dir / f"rank{r}.json").write_text(json.dumps({
            "rank": r, "world_size": trainer.world_size, "global_step": trainer.global_step,
            "sampler_world_size": sampler.world_size, "sampler_rank": sampler.rank,
            "strategy": type(trainer.strategy).__name__,
            "backend": trainer.strategy._process_group_backend, "ids": self.ids, "stats": self.stats}))
        torch.save({"final": {k: v.detach().cpu() for k, v in pl_module.state_dict().items()},
                    "initial": self.initial}, self.out_dir / f"rank{r}.pt")


@pytest.mark.slow
def test_ddp_two_cpu_ranks(tmp_path, an4_root):
    probe = tmp_path / "probe"
    cb = json.dumps({"class_path": "test_ddp.RankProbe", "init_args": {"out_dir": str(probe)}})
    path = [str(REPO / "tests" / "tasks"), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path),
           "ZOO_DATA": str(an4_root.parent), "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "TERM": "dumb"}  # CI-like: piped, no TTY
    zoo = Path(sys.executable).parent / "zoo"
    cmd = [str(zoo), "fit", "--config", str(TINY), "--trainer", str(DDP), "--trainer.accelerator", "cpu",
           "--trainer.devices", "2", "--trainer.max_steps", "2", "--trainer.limit_train_batches", "2",
           "--trainer.limit_val_batches", "1", "--trainer.default_root_dir", str(tmp_path / "run"),
           f"--trainer.callbacks+={cb}"]
    p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]

    r0, r1 = (json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1))
    for r, info in enumerate((r0, r1)):
        assert (info["rank"], info["world_size"]) == (r, 2)
        assert info["strategy"] == "DDPStrategy" and info["backend"] == "gloo"
        # the DataModule handed world size / rank to the lhotse sampler
        assert (info["sampler_world_size"], info["sampler_rank"]) == (2, r)
        assert info["global_step"] == 2 and len(info["ids"]) == 2
    ids0 = {i for b in r0["ids"] for i in b}
    ids1 = {i for b in r1["ids"] for i in b}
    assert ids0 and ids1 and not ids0 & ids1, "ranks trained on overlapping cuts"

    # featurizer stats: all-reduced over both ranks' (different) batches -> identical, and really estimated
    assert r0["stats"] == r1["stats"]
    assert any(m != 0.0 for m in r0["stats"]["mean"])

    s0, s1 = (torch.load(probe / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert s0["final"].keys() == s1["final"].keys()
    for k in s0["final"]:
        assert torch.equal(s0["final"][k], s1["final"][k]), f"ranks diverged at {k}"
    changed = [k for k in s0["final"] if s0["final"][k].is_floating_point()
               and not torch.equal(s0["final"][k], s0["initial"][k])]
    assert any(k.startswith("net.encoder.") for k in changed), "no training happened"
    # rank 0 wrote the checkpoint and the (single, offline) W&B run; the tiny recipe's RichProgressBar ran
    # without a terminal
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert len(list((tmp_path / "run" / "wandb").glob("offline-run-*"))) == 1
    assert "Epoch 0" in p.stdout + p.stderr
