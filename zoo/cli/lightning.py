"""``zoo fit|validate|test|predict``: Lightning's own CLI over any zoo task and the shared DataModule.

Conventions on top of ``LightningCLI``:

* ``--seed`` (default 0) seeds everything (workers included) before anything is built.
* The default task is ``zoo.tasks.TransducerTask``; any LightningModule can be named with ``model.class_path``.
  Optimizer and scheduler are the task's own ``init_args`` (``OptimizerCallable`` / ``LRSchedulerCallable``),
  so the CLI's automatic top-level ``--optimizer`` / ``--lr_scheduler`` are switched off.
* ``trainer.use_distributed_sampler`` defaults to false: the DataModule's lhotse samplers shard by rank.
* Run outputs follow ``--trainer.default_root_dir`` when it is set: a logger whose ``save_dir`` is unset
  (or ``.``) logs there, and a ``ModelCheckpoint`` without ``dirpath`` writes ``<default_root_dir>/checkpoints``.
* ``--trainer.enable_progress_bar false`` also drops progress-bar callbacks named in the config (e.g. the
  recipes' ``RichProgressBar``; Lightning would otherwise refuse the combination), for plain CI / batch logs.
* A W&B run started by the command is finished when the command returns, so several commands can run in
  one Python process (each gets its own run) and offline runs are complete on disk afterwards.
"""
from __future__ import annotations

import importlib
import os
import sys

import lightning as L
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningCLI

from zoo.data import SpeechDataModule

DEFAULT_TASK = "zoo.tasks.TransducerTask"


def _import(class_path: str):
    mod, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _is_subclass(class_path, base) -> bool:
    cls = _import(class_path) if isinstance(class_path, str) else None
    return isinstance(cls, type) and issubclass(cls, base)


class ZooLightningCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=0, help="global seed (lightning.seed_everything)")
        parser.set_defaults({"trainer.use_distributed_sampler": False,
                             "model": {"class_path": DEFAULT_TASK}})

    def parse_arguments(self, parser, args) -> None:
        # LightningCLI warns when both ``args`` and ``sys.argv`` are non-empty. zoo.cli.main() passes args
        # only when it was called from Python with an explicit list, so that warning is always a false alarm.
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args)
        else:
            self.config = parser.parse_args(args)

    def before_instantiate_classes(self) -> None:
        cfg = self.config.get(self.subcommand, self.config)
        L.seed_everything(cfg.get("seed", 0), workers=True)
        root = cfg.get("trainer.default_root_dir")
        if root:
            loggers = cfg.get("trainer.logger")
            for lg in loggers if isinstance(loggers, list) else [loggers]:
                if isinstance(lg, Namespace) and isinstance(lg.get("init_args"), Namespace) \
                        and "save_dir" in lg.init_args and lg.init_args.save_dir in (None, "."):
                    lg.init_args.save_dir = str(root)
        if cfg.get("trainer.enable_progress_bar") is False:
            cbs = cfg.get("trainer.callbacks")
            if isinstance(cbs, Namespace):
                cbs = [cbs]
            if cbs:
                cfg.trainer.callbacks = [c for c in cbs if not (
                    isinstance(c, Namespace) and _is_subclass(c.get("class_path"), ProgressBar))]

    def after_instantiate_classes(self) -> None:
        cfg = self.config.get(self.subcommand, self.config)
        root = cfg.get("trainer.default_root_dir")
        if root and self.trainer is not None:
            for cb in self.trainer.checkpoint_callbacks:
                if isinstance(cb, ModelCheckpoint) and cb.dirpath is None:
                    cb.dirpath = os.path.realpath(os.path.join(str(root), "checkpoints"))


def _wandb_run():
    wandb = sys.modules.get("wandb")
    return getattr(wandb, "run", None) if wandb is not None else None


def _finish_wandb(before, failed: bool) -> None:
    """Finish the W&B run this command started (not one the caller already had open).

    ``run.finish()`` returns before wandb-core has flushed the run file (offline runs can still be a bare
    header on disk), so when no other run is open the W&B service is torn down too, which waits for it.
    """
    current = _wandb_run()
    if current is not None and current is not before:
        current.finish(exit_code=1 if failed else 0)
        if before is None:
            sys.modules["wandb"].teardown()


def run(args: list[str] | None = None) -> ZooLightningCLI:
    """Run a Lightning subcommand; ``args=None`` parses ``sys.argv[1:]`` (the console script)."""
    failed, before = True, _wandb_run()
    try:
        cli = ZooLightningCLI(L.LightningModule, SpeechDataModule, subclass_mode_model=True,
                              subclass_mode_data=False, save_config_kwargs={"overwrite": True},
                              seed_everything_default=False, auto_configure_optimizers=False, args=args,
                              parser_kwargs={"default_env": False})
        failed = False
        return cli
    finally:
        _finish_wandb(before, failed)
