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
* Mistakes are one line (``zoo.errors.ConfigError``, printed by ``zoo.cli.main``): an unknown or mistyped key
  (jsonargparse's own message, not its usage dump), a value the task or Trainer rejects, a missing
  ``--ckpt_path`` file, ``--trainer.max_steps`` 0 or below -1 — all before a run folder or W&B run is made.
* stdout carries results only: progress bars and Lightning's messages go to stderr (``zoo fit > log`` holds
  nothing); validate / test print their metrics on stdout (``name<TAB>value`` lines).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
from pathlib import Path

import lightning as L
from jsonargparse import Namespace
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningCLI

from zoo.data import SpeechDataModule
from zoo.errors import ConfigError, ZooError, find_zoo_error

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
        # Parse errors raise (exit_on_error off) so that they become one line instead of a 70-line usage dump.
        global _OPTIONS
        subs = getattr(self, "_subcommand_parsers", {})
        for p in (parser, *subs.values()):
            p.exit_on_error = False
        argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, (dict, Namespace)) else []
        sub = next((a for a in argv if a in subs), None)
        if sub is not None:
            _OPTIONS = set(subs[sub]._option_string_actions)
        try:
            if isinstance(args, (dict, Namespace)):
                self.config = parser.parse_object(args)
            else:
                self.config = parser.parse_args(args)
        except argparse.ArgumentError as e:
            raise ConfigError(f"{one_line(str(e))} — see zoo {sub or 'fit'} --help") from None

    def instantiate_classes(self) -> None:
        """LightningCLI's, with the errors of building the task, data and Trainer from the config as one line
        (a ZooError raised inside is passed on as it is)."""
        try:
            self.config_init = self.parser.instantiate_classes(self.config)
            self.datamodule = self._get(self.config_init, "data")
            self.model = self._get(self.config_init, "model")
            if self.datamodule is not None and _single_process(self.config.get(self.subcommand, self.config)):
                # data mistakes (a missing corpus or manifest) before the Trainer and logger say anything
                self.datamodule.setup(_STAGES.get(self.subcommand, self.subcommand))
            self._add_configure_optimizers_method_to_model(self.subcommand)
            self.trainer = self.instantiate_trainer()
        except ZooError:
            raise
        except (ValueError, TypeError, KeyError, MisconfigurationException) as e:
            if find_zoo_error(e) is not None:
                raise
            raise ConfigError(f"{one_line(str(e))} — see zoo {self.subcommand or 'fit'} --help") from e

    def _run_subcommand(self, subcommand: str) -> None:
        # stdout is for results: Lightning's progress bars (rich or tqdm, which write to sys.stdout) and any
        # other output of the run go to stderr; validate / test metrics are printed on stdout afterwards
        kwargs = self._prepare_subcommand_kwargs(subcommand)
        verbose = kwargs.get("verbose", True)
        if subcommand in ("validate", "test"):
            kwargs["verbose"] = False
        with contextlib.redirect_stdout(sys.stderr):
            for hook in (f"before_{subcommand}", None, f"after_{subcommand}"):
                if hook is None:
                    out = getattr(self, subcommand, getattr(self.trainer, subcommand))(**kwargs)
                elif callable(getattr(self, hook, None)):
                    getattr(self, hook)()
        if subcommand in ("validate", "test") and verbose and self.trainer.is_global_zero:
            print_metrics(out)

    def before_instantiate_classes(self) -> None:
        cfg = self.config.get(self.subcommand, self.config)
        _check_run_options(self.subcommand, cfg)
        seed = _one_seed(cfg)
        L.seed_everything(seed, workers=True, verbose=False)  # the seed is in the saved config
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


_STAGES = {"fit": "fit", "validate": "validate", "test": "test", "predict": "predict"}


def _single_process(cfg) -> bool:
    """A run on one device in this process (so the DataModule can be set up before the Trainer exists)."""
    if os.environ.get("WORLD_SIZE", "1") != "1" or os.environ.get("LOCAL_RANK", "0") != "0":
        return False
    devices, accel = str(cfg.get("trainer.devices", "auto")), str(cfg.get("trainer.accelerator", "auto"))
    strategy = cfg.get("trainer.strategy", "auto")
    return (cfg.get("trainer.num_nodes", 1) == 1 and strategy in ("auto", None)
            and (devices in ("1", "[0]") or (devices == "auto" and accel == "cpu")))


def _one_seed(cfg) -> int:
    """The run's seed: ``--seed``, or Lightning's own ``--seed_everything`` when that is given instead (then written
    back as ``seed``, so the saved config holds one value). Both given and different: a one-line error."""
    seed, other = cfg.get("seed", 0), cfg.get("seed_everything")
    if isinstance(other, int) and not isinstance(other, bool):
        if seed not in (0, other):
            raise ConfigError(f"--seed {seed} and --seed_everything {other} disagree — give one seed (--seed)")
        seed = cfg.seed = other
    cfg.seed_everything = seed
    return seed


_OPTIONS: set[str] = set()  # option strings of the subcommand last parsed (for messages: zoo.cli.main)
_CKPT_WORDS = {"last", "best", "hpc", "registry"}


def option_strings() -> set[str]:
    """The options of the Lightning subcommand parsed last (``--trainer.max_steps``, ...)."""
    return set(_OPTIONS)


def _check_run_options(subcommand: str | None, cfg) -> None:
    """Mistakes Lightning would only notice after the run folder and W&B run exist (or not at all)."""
    ckpt = cfg.get("ckpt_path")
    if isinstance(ckpt, (str, os.PathLike)) and str(ckpt) not in _CKPT_WORDS \
            and not str(ckpt).startswith("registry:") and "://" not in str(ckpt):
        p = Path(ckpt).expanduser()
        if not p.is_file():
            what = "is a folder" if p.is_dir() else "not found"
            raise ConfigError(f"--ckpt_path {ckpt}: {what} — give the .ckpt file written by zoo fit "
                              "(e.g. <run>/checkpoints/last.ckpt)")
    steps = cfg.get("trainer.max_steps")
    if subcommand == "fit" and isinstance(steps, int) and not isinstance(steps, bool) and (steps == 0 or steps < -1):
        raise ConfigError(f"--trainer.max_steps {steps}: a run needs at least 1 step (or -1: no step limit, "
                          "stop at --trainer.max_epochs) — give a positive number")
    epochs = cfg.get("trainer.max_epochs")
    if subcommand == "fit" and isinstance(epochs, int) and not isinstance(epochs, bool) \
            and (epochs == 0 or epochs < -1):
        raise ConfigError(f"--trainer.max_epochs {epochs}: a run needs at least 1 epoch (or -1: no epoch "
                          "limit) — give a positive number")


_NOISE = re.compile(r"^(Does not validate against any of the Union subtypes|Subtypes: |Errors:|Given value type: |"
                    r"Given value: |- Expected a <class 'NoneType'>|Expected a <class 'NoneType'>)")


def one_line(message: str) -> str:
    """jsonargparse's multi-line error report -> its informative part on one line: the key, then the innermost
    reasons (the Union bookkeeping, 'Expected NoneType' alternatives and echoed values dropped)."""
    lines = [ln.strip() for ln in message.strip().splitlines()]
    key = None
    parts: list[str] = []
    for ln in lines:
        m = re.match(r'^-?\s*Parser key "([^"]+)":?\s*(.*)$', ln)
        if m:
            if key is None:
                key = m.group(1)
            elif m.group(1) not in (key or ""):
                parts.append(f"{m.group(1)}:")
            if m.group(2):
                parts.append(m.group(2))
            continue
        if not ln or _NOISE.match(ln):
            continue
        m = re.match(r"^-?\s*Problem with given class_path '([^']+)':?\s*(.*)$", ln)
        if m:
            parts.append(f"{m.group(1)}:")
            if m.group(2):
                parts.append(m.group(2))
            continue
        parts.append(ln.lstrip("- ").strip())
    if not key and not any(p.endswith(":") for p in parts):  # an instantiation error: name the class
        m = re.search(r"class_path='([^']+)'", message)
        if m:
            parts.insert(0, f"{m.group(1)}:")
    text = " ".join(parts) or " ".join(message.split())
    if key:
        text = f"--{key}: {text}"
    return " ".join(text.split())


def print_metrics(results) -> None:
    """validate / test results (a list of dicts, one per dataloader) as ``name<TAB>value`` lines on stdout."""
    for i, res in enumerate(results or []):
        for k, v in sorted(res.items()):
            v = float(v)
            name = k if len(results) == 1 else f"{k}/dataloader_{i}"
            print(f"{name}\t{v:.6g}")


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
