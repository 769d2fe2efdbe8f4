"""Training throughput of today's ASR recipe vs recipe v2, side by side in one run.

    python benchmarks/train_speed.py [--steps 30] [--warmup 5] [--threads 1] [--no-fp32] [--loader-workers N]
        [--configs TODAY_CFG[,CFG...] V2_CFG[,CFG...]] [--stats-batches 4] [--KEY VALUE ...]

Each recipe's task, DataModule and Trainer are built from its YAML config(s) by the same Lightning CLI as
``zoo fit`` (``ZooLightningCLI``; several comma-separated files compose like repeated ``--config``), then it
trains ``--warmup`` + ``--steps`` optimizer steps on its real training batches. The clock runs from the end of
the last warm-up step to the end of the last timed step, so it covers everything a user waits for during
training: batch loading and augmentation (speed perturbation, waveform augmentation; with the config's
``data.num_workers``), featurizer, SpecAugment, forward, RNN-T + CTC losses, backward, gradient clipping,
optimizer and scheduler steps, at the config's precision (``trainer.precision``) and ``--threads`` torch
threads. What is left out: building the model and data, the featurizer statistics pass before the first
step (shortened to ``--stats-batches`` batches, which changes nothing in the steps), validation (off),
checkpoints and logging (off; the run writes only to a temporary ``default_root_dir``, nothing to the repo).

Rows, in this order:

* ``today``: ``configs/asr/lstm_rnnt_an4.yaml`` (fp32, AN4 only, the release recipe of ``lstm-rnnt-an4``);
* ``v2``: ``configs/asr/v2/base.yaml`` + ``configs/asr/v2/lstm.yaml`` (bf16-mixed autocast, AN4 x3 +
  speechocean762, waveform augmentation, a larger LSTM);
* ``v2 fp32``: the same v2 recipe with ``--trainer.precision 32-true`` (left out with ``--no-fp32``), so the
  effect of bf16 (``v2`` / ``v2 fp32``) is separated from that of the data, batching and model size
  (``v2 fp32`` / ``today``). Both v2 rows use the same seed, so they train on exactly the same batches;
* ``v2 +N loader`` (with ``--loader-workers N``): recipe v2 with ``data.num_workers N``, so batch loading (Opus
  decoding, speed perturbation, waveform augmentation) runs in N worker processes beside the training step.

Columns: utterances/s and audio-seconds/s count the utterances and the audio (sum of ``audio_lens`` /
``data.sample_rate``, after speed perturbation) of the timed batches; s/step is wall-clock seconds per
optimizer step; ``x today`` is the row's audio-seconds/s over the first row's (utterances/s ratios are in
``utts x``). Batches are duration-bucketed (``data.max_duration`` seconds of audio each), so audio-seconds/s
is the fairer measure across recipes with different corpora (shorter utterances mean more per batch).

Any further ``--KEY VALUE`` arguments go to every recipe's CLI (e.g. ``--data.data_dir /data``,
``--data.num_workers 1``). The rows run one after another in one process; on a machine that is busy with
other work the numbers move with that load, so compare rows of the same run.
"""
from __future__ import annotations

import argparse
import gc
import logging
import math
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

REPO = Path(__file__).resolve().parent.parent
TODAY = [str(REPO / "configs" / "asr" / "lstm_rnnt_an4.yaml")]
V2 = [str(REPO / "configs" / "asr" / "v2" / "base.yaml"), str(REPO / "configs" / "asr" / "v2" / "lstm.yaml")]
ROW_KEYS = ("recipe", "precision", "threads", "steps", "utterances", "audio_s", "seconds", "utts_per_s",
            "audio_s_per_s", "s_per_step", "ratio", "utts_ratio")


class StepTimer(Callback):
    """Times ``steps`` optimizer steps after ``warmup`` ones (end of the last warm-up step -> end of the last
    timed step, batch loading included) and counts the utterances and audio samples of the timed batches."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.end = warmup, warmup + steps
        self.t0 = self.t1 = None
        self.utterances = self.samples = 0

    @staticmethod
    def _now(trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_start(self, trainer, pl_module) -> None:
        if self.warmup == 0:
            self.t0 = self._now(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = self._now(trainer)
        if self.t0 is not None and self.t1 is None:
            self.utterances += int(batch["audio_lens"].numel())
            self.samples += int(batch["audio_lens"].sum())
            if trainer.global_step >= self.end:
                self.t1 = now
        elif self.t0 is None and trainer.global_step >= self.warmup:
            self.t0 = now


def cli_args(configs: list[str], warmup: int, steps: int, root: str, stats_batches: int | None,
             extra: list[str] = ()) -> list[str]:
    """``zoo fit`` arguments for a timing run of ``configs``: warmup + steps optimizer steps, no validation,
    no logger, no checkpoints, no callbacks of the config, outputs under ``root``."""
    args = [f"--config={c}" for c in configs]
    args += [f"--trainer.max_steps={warmup + steps}", "--trainer.max_epochs=-1",
             "--trainer.limit_train_batches=1.0", "--trainer.limit_val_batches=0",
             "--trainer.num_sanity_val_steps=0", "--trainer.logger=false",
             "--trainer.enable_checkpointing=false", "--trainer.callbacks=[]",
             "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
             f"--trainer.default_root_dir={root}"]
    if stats_batches is not None:
        args.append(f"--model.init_args.stats_batches={stats_batches}")
    return args + list(extra)


def time_recipe(name: str, configs: list[str], steps: int = 30, warmup: int = 5, threads: int = 1,
                stats_batches: int | None = 4, extra: list[str] = ()) -> dict:
    """Build one recipe (config files + ``extra`` CLI arguments) through the Lightning CLI and time its training
    steps; returns a row (no ratios)."""
    from zoo.cli.lightning import ZooLightningCLI
    from zoo.data import SpeechDataModule

    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    torch.set_num_threads(threads)
    timer = StepTimer(warmup, steps)
    with tempfile.TemporaryDirectory(prefix="zoo-train-speed-") as root:
        # the same CLI class and settings as zoo.cli.lightning.run ("zoo fit"), but built without running, so
        # the timer can be added as an extra callback and fit() called here
        cli = ZooLightningCLI(L.LightningModule, SpeechDataModule, subclass_mode_model=True,
                              subclass_mode_data=False, save_config_kwargs={"overwrite": True},
                              seed_everything_default=False, auto_configure_optimizers=False, run=False,
                              args=cli_args(configs, warmup, steps, root, stats_batches, extra),
                              trainer_defaults={"callbacks": [timer]}, parser_kwargs={"default_env": False})
        precision = str(cli.trainer.precision)
        sample_rate = cli.datamodule.hparams.sample_rate
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        done = cli.trainer.global_step
        del cli
        gc.collect()
    if timer.t1 is None:
        raise RuntimeError(f"{name}: training stopped after {done} optimizer steps, before the "
                           f"{warmup} + {steps} the benchmark needs")
    seconds = timer.t1 - timer.t0
    audio_s = timer.samples / sample_rate
    return {"recipe": name, "precision": precision, "threads": threads, "steps": steps,
            "utterances": timer.utterances, "audio_s": audio_s, "seconds": seconds,
            "utts_per_s": timer.utterances / seconds, "audio_s_per_s": audio_s / seconds,
            "s_per_step": seconds / steps}


def measure(recipes: list[tuple[str, list[str], list[str]]], steps: int = 30, warmup: int = 5, threads: int = 1,
            stats_batches: int | None = 4, extra: list[str] = ()) -> list[dict]:
    """Time each ``(name, config files, CLI arguments)`` recipe in turn (``extra`` arguments go to all of them);
    ``ratio`` / ``utts_ratio`` are audio-seconds/s / utterances/s over the first recipe's. Restores torch's
    thread count afterwards."""
    before = torch.get_num_threads()
    try:
        rows = [time_recipe(n, c, steps, warmup, threads, stats_batches, [*a, *extra]) for n, c, a in recipes]
    finally:
        torch.set_num_threads(before)
    for r in rows:
        r["ratio"] = r["audio_s_per_s"] / rows[0]["audio_s_per_s"]
        r["utts_ratio"] = r["utts_per_s"] / rows[0]["utts_per_s"]
    return rows


def default_recipes(today: list[str] = TODAY, v2: list[str] = V2, fp32: bool = True,
                    loader_workers: int = 0) -> list[tuple]:
    recipes = [("today", list(today), []), ("v2", list(v2), [])]
    if fp32:
        recipes.append(("v2 fp32", list(v2), ["--trainer.precision=32-true"]))
    if loader_workers:
        recipes.append((f"v2 +{loader_workers} loader", list(v2), [f"--data.num_workers={loader_workers}"]))
    return recipes


def format_table(rows: list[dict], warmup: int) -> str:
    cap = torch.backends.cpu.get_cpu_capability()
    w = max(10, *(len(r["recipe"]) for r in rows))
    lines = [f"training throughput: {rows[0]['steps']} timed optimizer steps after {warmup} warm-up, "
             f"{rows[0]['threads']} thread(s), batch loading included; torch {torch.__version__}, CPU {cap}",
             f"{'recipe':<{w}} {'precision':<11} {'threads':>7} {'steps':>5} {'utts/s':>8} {'audio-s/s':>9} "
             f"{'s/step':>7} {'x today':>7} {'utts x':>6}"]
    for r in rows:
        lines.append(f"{r['recipe']:<{w}} {r['precision']:<11} {r['threads']:>7} {r['steps']:>5} "
                     f"{r['utts_per_s']:>8.2f} {r['audio_s_per_s']:>9.1f} {r['s_per_step']:>7.3f} "
                     f"{r['ratio']:>7.2f} {r['utts_ratio']:>6.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Further --KEY VALUE arguments are passed to every recipe's CLI.")
    p.add_argument("--steps", type=int, default=30, help="timed optimizer steps per recipe (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed optimizer steps first (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--configs", nargs=2, metavar=("TODAY", "V2"),
                   help="the two recipes to compare, each a comma-separated list of config files "
                        "(default: configs/asr/lstm_rnnt_an4.yaml and configs/asr/v2/base.yaml,configs/asr/v2/lstm.yaml)")
    p.add_argument("--no-fp32", action="store_true", help="leave out the 'v2 fp32' row")
    p.add_argument("--loader-workers", type=int, default=0, metavar="N",
                   help="add a 'v2 +N loader' row: recipe v2 with N DataLoader worker processes (decoding, speed "
                        "perturbation and augmentation overlap the training step; needs N spare cores)")
    p.add_argument("--stats-batches", type=int, default=4,
                   help="batches of the featurizer-statistics pass before training (not timed; default 4)")
    args, extra = p.parse_known_args(argv)
    if any(a.startswith("-") and not a.startswith("--") for a in extra):
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    today, v2 = ([c for c in s.split(",") if c] for s in args.configs) if args.configs else (TODAY, V2)
    for logger in ("lightning.pytorch", "lightning.fabric"):  # "Seed set", "GPU available", ... per recipe
        logging.getLogger(logger).setLevel(logging.WARNING)
    recipes = default_recipes(today, v2, fp32=not args.no_fp32, loader_workers=args.loader_workers)
    rows = measure(recipes, args.steps, args.warmup, args.threads,
                   args.stats_batches, extra)
    print(format_table(rows, args.warmup))
    for r in rows:
        if not (math.isfinite(r["audio_s_per_s"]) and r["audio_s_per_s"] > 0):
            raise SystemExit(f"error: {r['recipe']}: no throughput measured")
    return rows


if __name__ == "__main__":
    main()
