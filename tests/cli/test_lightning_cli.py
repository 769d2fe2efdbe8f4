"""``zoo fit|validate`` through LightningCLI on real AN4 batches: print_config, the tiny recipe with W&B offline
(metrics read back from the run file on disk), resume (--ckpt_path) vs fine-tune (init_from), config
composition and the console script's argv handling."""
from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from zoo.cli.lightning import run
from zoo.cli.main import main

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "ci" / "tiny.yaml")
RELEASE = str(REPO / "configs" / "asr" / "lstm_rnnt_an4.yaml")
ARGS_WARNING = "LightningCLI's args parameter"


# --- W&B offline run files ----------------------------------------------------------------------------
def read_wandb_run(run_dir: Path) -> tuple[list[dict], dict]:
    """(history rows, final summary) of an offline W&B run, parsed from its ``run-<id>.wandb`` file.

    wandb >= 0.2x no longer writes ``files/wandb-summary.json`` for offline runs and dropped the Python
    ``datastore`` reader; the file is a LevelDB-style log (7-byte ``:W&B`` header, 32 KiB blocks of
    records with a 7-byte crc/length/type header) of ``wandb_internal_pb2.Record`` protobufs.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    block, pos, buf, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if n == 0 and kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        buf += data[pos + 7:pos + 7 + n]
        pos += 7 + n
        if kind in (1, 4):  # FULL or LAST fragment
            records.append(buf)
            buf = b""
    history, summary, kinds = [], {}, set()
    for raw in records:
        rec = pb.Record()
        rec.ParseFromString(raw)
        which = rec.WhichOneof("record_type")
        kinds.add(which)
        if which == "history":
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
        elif which == "summary":
            for u in rec.summary.update:
                summary[u.key or "/".join(u.nested_key)] = json.loads(u.value_json)
    # the CLI returns only once the run is finished and flushed: a complete file ends with an exit record
    assert "exit" in kinds, f"{path} is incomplete ({len(data)} bytes, records: {sorted(kinds)})"
    return history, summary


def tiny_args(root: Path, an4_root: Path, *extra: str) -> list[str]:
    return ["--config", TINY, "--trainer.default_root_dir", str(root), "--data.data_dir", str(an4_root), *extra]


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory, an4_root):
    """One `zoo fit --config configs/ci/tiny.yaml` (in-process, W&B offline) shared by the tests below."""
    root = tmp_path_factory.mktemp("tiny_fit")
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = run(["fit", *tiny_args(root, an4_root)])
    return {"root": root, "cli": cli, "seconds": time.perf_counter() - t0, "warnings": caught}


# --- print_config / composition -------------------------------------------------------------------------
def print_config(capsys, *args: str) -> dict:
    with pytest.raises(SystemExit) as e:
        main(["fit", *args, "--print_config"])
    assert e.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_print_config_without_config(capsys):
    cfg = print_config(capsys)
    assert cfg["model"]["class_path"] == "zoo.tasks.TransducerTask"
    assert cfg["model"]["init_args"]["init_from"] is None
    assert cfg["trainer"]["use_distributed_sampler"] is False
    assert cfg["data"]["corpus"] == "an4"
    # the task owns optimizer/scheduler: no competing top-level CLI groups
    assert "optimizer" not in cfg and "lr_scheduler" not in cfg


def test_print_config_with_configs(capsys):
    # the release recipe parses and its values come through (compared with the file, which may be retuned)
    src = yaml.safe_load(Path(RELEASE).read_text())
    rel = print_config(capsys, "--config", RELEASE)
    assert rel["trainer"]["max_steps"] == src["trainer"]["max_steps"]
    for key in ("encoder", "predictor", "joiner"):
        got = rel["model"]["init_args"][key]
        assert {k: got[k] for k in src["model"]["init_args"][key]} == src["model"]["init_args"][key]
    assert rel["model"]["init_args"]["scheduler"] == {**src["model"]["init_args"]["scheduler"],
                                                      "init_args": rel["model"]["init_args"]["scheduler"]["init_args"]}
    assert rel["trainer"]["logger"]["init_args"]["offline"] is True

    tiny = print_config(capsys, "--config", TINY, "--trainer", str(REPO / "configs/trainer/ddp.yaml"),
                        "--trainer.devices", "2", "--trainer.num_nodes", "3",
                        "--trainer.logger", str(REPO / "configs/logger/wandb_online.yaml"))
    t = tiny["trainer"]
    assert (t["strategy"], str(t["devices"]), t["num_nodes"]) == ("ddp", "2", 3)
    assert t["max_steps"] == 3 and t["limit_train_batches"] == 3  # the recipe's values survive the overlay
    assert t["logger"]["class_path"].endswith("WandbLogger") and t["logger"]["init_args"]["offline"] is False
    assert tiny["model"]["init_args"]["encoder"]["hidden"] == 32

    off = print_config(capsys, "--config", TINY, "--trainer", str(REPO / "configs/trainer/cpu.yaml"),
                       "--trainer.logger", str(REPO / "configs/logger/wandb.yaml"))
    assert off["trainer"]["accelerator"] == "cpu" and off["trainer"]["logger"]["init_args"]["offline"] is True


@pytest.mark.parametrize("recipe", sorted(str(p.relative_to(REPO)) for d in ("asr", "ci", "speaker", "multitalker")
                                    for p in (REPO / "configs" / d).glob("*.yaml")))
def test_every_recipe_parses(capsys, recipe):
    src = yaml.safe_load((REPO / recipe).read_text())
    cfg = print_config(capsys, "--config", str(REPO / recipe))
    assert cfg["model"]["class_path"] == src["model"]["class_path"]
    assert cfg["trainer"]["use_distributed_sampler"] is False


def test_console_script_and_python_entry_do_not_warn_about_args(capsys, an4_root):
    # console script: LightningCLI must read sys.argv itself (no "args and sys.argv both given" warning)
    zoo = Path(sys.executable).parent / "zoo"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([str(zoo), "fit", "--config", TINY, "--print_config"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert ARGS_WARNING not in p.stderr
    assert yaml.safe_load(p.stdout)["trainer"]["max_steps"] == 3
    # from Python (sys.argv holds pytest's arguments): the explicit list is what gets parsed, silently
    assert len(sys.argv) > 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = print_config(capsys, "--config", TINY, "--trainer.max_steps", "7")
    assert cfg["trainer"]["max_steps"] == 7
    assert not [w for w in caught if ARGS_WARNING in str(w.message)]


def test_main_hands_console_argv_to_lightning_untouched(monkeypatch):
    import zoo.cli.lightning

    seen = []
    monkeypatch.setattr(zoo.cli.lightning, "run", seen.append)
    monkeypatch.setattr(sys, "argv", ["zoo", "fit", "--config", TINY])
    assert main() == 0 and seen[-1] is None  # console script: LightningCLI parses sys.argv[1:] itself
    assert main(["validate", "--config", TINY]) == 0 and seen[-1] == ["validate", "--config", TINY]


# --- training on real AN4 -------------------------------------------------------------------------------
def test_tiny_fit_logs_finite_metrics_to_wandb_offline(tiny_fit):
    root, trainer = tiny_fit["root"], tiny_fit["cli"].trainer
    assert tiny_fit["seconds"] < 60, f"tiny fit took {tiny_fit['seconds']:.1f}s"
    assert trainer.global_step == 3
    assert not [w for w in tiny_fit["warnings"] if ARGS_WARNING in str(w.message)]
    # the W&B run went under default_root_dir (logger save_dir follows it), offline, and is finished
    runs = list((root / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list(root.rglob("*"))
    history, summary = read_wandb_run(runs[0])
    for key in ("train_loss", "val_wer", "val_loss", "train_rnnt_loss", "train_ctc_loss"):
        assert key in summary, sorted(summary)
        assert isinstance(summary[key], (int, float)) and math.isfinite(summary[key]), (key, summary[key])
    assert 0.0 <= summary["val_wer"]
    train_rows = [h for h in history if "train_loss" in h]
    assert len(train_rows) == 3 and all(math.isfinite(h["train_loss"]) for h in train_rows)
    assert [h["trainer/global_step"] for h in train_rows] == [0, 1, 2]
    import wandb
    assert wandb.run is None, "the CLI left its W&B run open"
    # checkpoints under default_root_dir/checkpoints; config saved beside them
    assert (root / "checkpoints" / "last.ckpt").is_file()
    assert list((root / "checkpoints").glob("best-step=*.ckpt"))
    assert yaml.safe_load((root / "config.yaml").read_text())["trainer"]["default_root_dir"] == str(root)


def test_checkpoint_loads_weights_only(tiny_fit):
    ck = torch.load(tiny_fit["root"] / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ck["global_step"] == 3
    hp = ck["hyper_parameters"]
    assert hp["_class_path"] == "zoo.tasks.TransducerTask" and hp["encoder"]["hidden"] == 32
    assert "optimizer" not in hp and "scheduler" not in hp  # callables are not hyperparameters
    assert ck["zoo_config"]["architecture"] == "transducer"
    assert ck["lr_schedulers"] and ck["optimizer_states"]
    mean = ck["state_dict"]["net.featurizer.mean"]
    assert bool((mean != 0).any()), "featurizer statistics were not estimated in on_fit_start"


def test_resume_continues_global_step(tiny_fit, tmp_path, an4_root):
    last = tiny_fit["root"] / "checkpoints" / "last.ckpt"
    before = torch.load(last, map_location="cpu", weights_only=True)
    cli = run(["fit", *tiny_args(tmp_path, an4_root), "--ckpt_path", str(last), "--trainer.max_steps", "5",
               # plain logs for CI: the recipe's RichProgressBar is dropped instead of failing
               "--trainer.enable_progress_bar", "false"])
    t = cli.trainer
    assert t.global_step == 5 > before["global_step"]
    assert t.lr_scheduler_configs[0].scheduler.last_epoch == 5  # the schedule continued too
    assert t.progress_bar_callback is None
    # stats came from the checkpoint, not re-estimated on the resumed run's batches
    assert torch.equal(cli.model.net.featurizer.mean, before["state_dict"]["net.featurizer.mean"])
    resumed = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert resumed["global_step"] == 5


def test_init_from_model_folder_ignores_config_net_fields(tiny_folder, tmp_path, an4_root):
    want = load_file(tiny_folder / "model.safetensors")
    # conflicting net fields on the command line: init_from must win (the folder defines the architecture)
    conflicting = ["--model.init_args.encoder", '{"name": "lstm", "stack": 2, "hidden": 8, "layers": 1}',
                   "--model.init_args.featurizer", '{"n_mels": 64}', "--model.init_args.init_from", str(tiny_folder)]
    cli = run(["validate", *tiny_args(tmp_path / "val", an4_root), *conflicting])
    got = cli.model.net.state_dict()
    assert got.keys() == want.keys()
    for k in want:
        assert torch.equal(got[k], want[k]), k
    assert cli.trainer.callback_metrics["val_wer"].isfinite()

    # fit (through zoo.cli.main) fine-tunes from the folder: stats are kept, weights move
    assert main(["fit", *tiny_args(tmp_path / "fit", an4_root), *conflicting, "--trainer.max_steps", "2"]) == 0
    ck = torch.load(tmp_path / "fit" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    sd = {k[len("net."):]: v for k, v in ck["state_dict"].items() if k.startswith("net.")}
    assert torch.equal(sd["featurizer.mean"], want["featurizer.mean"])  # not re-estimated
    assert torch.equal(sd["featurizer.std"], want["featurizer.std"])
    moved = [k for k in want if want[k].is_floating_point() and not torch.equal(sd[k], want[k])]
    assert any(k.startswith("encoder.") for k in moved)


def test_task_init_from_needs_no_net_fields(tiny_folder):
    from zoo.tasks import TransducerTask

    task = TransducerTask(init_from=str(tiny_folder), encoder={"name": "lstm", "hidden": 8})
    want = load_file(tiny_folder / "model.safetensors")
    got = task.net.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert task.stats_ready
    # a loaded net comes back in eval mode; the task must hand it to Lightning in train mode (dropout on)
    assert all(m.training for m in task.modules())
    assert task.ctc_head.in_features == task.net.encoder.output_dim


def test_task_estimates_stats_without_a_datamodule():
    """``trainer.fit(task, train_dataloaders=...)`` (no DataModule): stats come from the given loader."""
    import lightning as L

    from zoo.tasks import TransducerTask

    from helpers import TINY_MODEL

    g = torch.Generator().manual_seed(0)
    batches = [{"audio": torch.randn(2, 16000, generator=g) * 0.1, "audio_lens": torch.tensor([16000, 12000]),
                "text": ["HELLO", "AB"]} for _ in range(3)]
    task = TransducerTask(**TINY_MODEL, stats_batches=2)
    assert not bool((task.net.featurizer.mean != 0).any())
    t = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False)
    t.fit(task, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    assert bool((task.net.featurizer.mean != 0).any()) and t.global_step == 1


def test_seed_everything_is_honoured_and_a_conflict_is_one_line(tmp_path, an4_root, capsys):
    """--seed_everything used to be silently replaced by --seed (default 0)."""
    from zoo.cli.main import main

    cli = run(["validate", *tiny_args(tmp_path / "a", an4_root), "--seed_everything", "7"])
    assert cli.config["validate"]["seed"] == 7 and cli.config["validate"]["seed_everything"] == 7
    capsys.readouterr()
    assert main(["validate", *tiny_args(tmp_path / "b", an4_root), "--seed", "3", "--seed_everything", "7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "disagree" in err[0] and err[0].startswith("error:")


@pytest.mark.parametrize("cfg", sorted(str(p.relative_to(REPO)) for p in REPO.glob("checkpoints/*/train_config.yaml")))
def test_released_train_configs_still_parse(cfg, capsys):
    """Every shipped train_config.yaml (written before the package was restructured) still parses: its
    class_paths resolve and its keys are still known."""
    out = print_config(capsys, "--config", str(REPO / cfg))
    assert out["model"]["class_path"].startswith("zoo.tasks.")
