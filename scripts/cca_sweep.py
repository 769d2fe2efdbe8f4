"""Issue 4 sweep: the all-on Transformer, the compute-cost-amortized (CCA) Transformer at several lambdas and the
sliding-window Transformer at several windows, each a `zoo fit` of the AN4 recipe, one after the other.

    python scripts/cca_sweep.py --dry-run                  # print the commands, run nothing
    python scripts/cca_sweep.py                            # the full budget (9 runs x 4500 steps, CPU)
    python scripts/cca_sweep.py --max_steps 1500           # reduced budget (LR schedule and tau annealing follow)
    python scripts/cca_sweep.py --lambdas 0 1 4 --windows 8 --no-allon --root exp/cca_small

Each run writes to <root>/<run>/ (checkpoints/, W&B offline logs, train.log) and gets a DONE marker when
`zoo fit` exits 0; runs with a marker are skipped on the next call (so an interrupted sweep resumes where it
stopped; pass --force to retrain). Every run is OMP_NUM_THREADS=1 (--threads); runs go one after another unless --parallel N.
On a GPU machine (what trained the released sweep, see model_cards/cca-transformer-an4.design.md):

    python scripts/cca_sweep.py --parallel 8 --extra --trainer.accelerator gpu --data.num_workers 1
Then evaluate them all: python benchmarks/cca_pareto.py <root>/*

The default sweep is exactly these commands (root exp/cca_sweep):

    OMP_NUM_THREADS=1 zoo fit --config configs/asr/transformer_rnnt_an4.yaml --trainer.default_root_dir exp/cca_sweep/allon --trainer.logger.init_args.name cca_sweep_allon --trainer.enable_progress_bar false > exp/cca_sweep/allon/train.log 2>&1
    OMP_NUM_THREADS=1 zoo fit --config configs/asr/cca_transformer_an4.yaml --model.init_args.compute_weight 0 --trainer.default_root_dir exp/cca_sweep/lam0 --trainer.logger.init_args.name cca_sweep_lam0 --trainer.enable_progress_bar false > exp/cca_sweep/lam0/train.log 2>&1
    ... the same with compute_weight 0.5 (lam0.5), 1 (lam1), 2 (lam2), 4 (lam4)
    OMP_NUM_THREADS=1 zoo fit --config configs/asr/transformer_window_an4.yaml --model.init_args.encoder.window 4 --trainer.default_root_dir exp/cca_sweep/win4 --trainer.logger.init_args.name cca_sweep_win4 --trainer.enable_progress_bar false > exp/cca_sweep/win4/train.log 2>&1
    ... the same with window 8 (win8), 16 (win16)

--max_steps N adds: --trainer.max_steps N --model.init_args.scheduler.init_args.total_steps N
--model.init_args.scheduler.init_args.warmup_steps min(400, N // 10).

After the sweep: the table and plot, then the two releases (set compute_weight in configs/asr/cca_transformer_an4.yaml
to the lambda you recommend first, so the card's train_config.yaml is the one that trained it):

    python benchmarks/cca_pareto.py exp/cca_sweep/* --out-dir reports/cca_pareto
    python scripts/release_asr.py --ckpt exp/cca_sweep/lam1/checkpoints/best-....ckpt --name cca-transformer-an4 \
        --config configs/asr/cca_transformer_an4.yaml --design model_cards/cca-transformer-an4.design.md \
        --results-extra reports/cca_pareto/cca_pareto.md
    python scripts/release_asr.py --ckpt exp/cca_sweep/allon/checkpoints/best-....ckpt --name transformer-rnnt-an4 \
        --config configs/asr/transformer_rnnt_an4.yaml --design model_cards/transformer-rnnt-an4.design.md \
        --results-extra reports/cca_pareto/cca_pareto.md
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIGS = {"allon": "configs/asr/transformer_rnnt_an4.yaml", "cca": "configs/asr/cca_transformer_an4.yaml",
           "window": "configs/asr/transformer_window_an4.yaml"}
LAMBDAS = [0.0, 0.5, 1.0, 2.0, 4.0]
WINDOWS = [4, 8, 16]


def _num(x: float) -> str:
    return f"{x:g}"


def plan(root: str, lambdas, windows, allon: bool = True, max_steps: int | None = None,
         extra_args: list[str] | None = None) -> list[dict]:
    """[{"name", "kind", "value", "dir", "argv"}] for every run of the sweep, in order."""
    runs = []
    if allon:
        runs.append(("allon", "allon", None, []))
    for lam in lambdas:
        runs.append((f"lam{_num(lam)}", "cca", lam, ["--model.init_args.compute_weight", _num(lam)]))
    for w in windows:
        runs.append((f"win{w}", "window", w, ["--model.init_args.encoder.window", str(w)]))
    out = []
    for name, kind, value, extra in runs:
        d = f"{root.rstrip('/')}/{name}"
        argv = ["zoo", "fit", "--config", CONFIGS[kind], *extra, "--trainer.default_root_dir", d,
                "--trainer.logger.init_args.name", f"{Path(root).name}_{name}", "--trainer.enable_progress_bar", "false"]
        if max_steps:
            argv += ["--trainer.max_steps", str(max_steps),
                     "--model.init_args.scheduler.init_args.total_steps", str(max_steps),
                     "--model.init_args.scheduler.init_args.warmup_steps", str(min(400, max_steps // 10))]
        argv += list(extra_args or [])
        out.append({"name": name, "kind": kind, "value": value, "dir": d, "argv": argv})
    return out


def shell_line(run: dict) -> str:
    return (f"OMP_NUM_THREADS=1 {shlex.join(run['argv'])} > {shlex.quote(run['dir'] + '/train.log')} 2>&1")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default="exp/cca_sweep", help="parent folder of the run folders")
    ap.add_argument("--lambdas", type=float, nargs="*", default=LAMBDAS, help="compute_weight values (CCA runs)")
    ap.add_argument("--windows", type=int, nargs="*", default=WINDOWS, help="attention windows (sliding-window runs)")
    ap.add_argument("--no-allon", dest="allon", action="store_false", help="skip the all-on Transformer run")
    ap.add_argument("--max_steps", "--max-steps", type=int, default=None, help="reduced training budget per run")
    ap.add_argument("--only", nargs="*", default=None, help="run names to keep (e.g. allon lam1 win8)")
    ap.add_argument("--parallel", type=int, default=1, help="runs at a time (e.g. on a GPU machine)")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                    help="arguments appended to every `zoo fit` (last option), e.g. --extra --trainer.accelerator gpu")
    ap.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    ap.add_argument("--force", action="store_true", help="rerun runs that have a DONE marker")
    args = ap.parse_args(argv)
    if len(args.lambdas) + len(args.windows) + args.allon == 0:
        ap.error("nothing to run")
    runs = plan(args.root, args.lambdas, args.windows, args.allon, args.max_steps, args.extra)
    if args.only is not None:
        runs = [r for r in runs if r["name"] in args.only]
    if args.dry_run:
        for r in runs:
            print(shell_line(r))
        return 0
    zoo_cmd = [sys.executable, "-m", "zoo"]  # this Python's zoo (also where zoo is on PYTHONPATH, not installed)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    todo = []
    for r in runs:
        d = REPO / r["dir"] if not Path(r["dir"]).is_absolute() else Path(r["dir"])
        if (d / "DONE").is_file() and not args.force:
            print(f"[skip] {r['name']}: {d}/DONE exists", flush=True)
            continue
        d.mkdir(parents=True, exist_ok=True)
        (d / "DONE").unlink(missing_ok=True)
        todo.append((r, d))
    failed, running = [], []
    while todo or running:
        while todo and len(running) < max(1, args.parallel):
            r, d = todo.pop(0)
            print(f"[run ] {r['name']}: {shell_line(r)}", flush=True)
            log = open(d / "train.log", "w")
            proc = subprocess.Popen([*zoo_cmd, *r["argv"][1:]], stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
            running.append((r, d, proc, log, time.time()))
        time.sleep(2)
        for item in [x for x in running if x[2].poll() is not None]:
            running.remove(item)
            r, d, proc, log, t0 = item
            log.close()
            rc, minutes = proc.returncode, (time.time() - t0) / 60
            if rc == 0:
                (d / "DONE").write_text(f"{shell_line(r)}\nminutes {minutes:.1f}\n")
            else:
                failed.append(r["name"])
            print(f"[{'done' if rc == 0 else 'FAIL'}] {r['name']}: exit {rc}, {minutes:.1f} min, log {d}/train.log",
                  flush=True)
    if failed:
        print(f"failed: {' '.join(failed)}", file=sys.stderr)
        return 1
    print(f"evaluate: python benchmarks/cca_pareto.py {args.root}/*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
