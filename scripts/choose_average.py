"""Choose how many of a run's best checkpoints to average, on dev only (never test).

    python scripts/choose_average.py exp/v2/lstm/checkpoints --n 1 3 5 --corpora an4 speechocean762

For each N: average the N best checkpoints (by the run's monitored dev WER), decode every dev set of
``--corpora`` greedily and print WER per set and pooled over all dev words. The smallest pooled dev WER wins
(ties: fewer checkpoints). Release it with ``scripts/release_asr.py --ckpt <folder> --average <N>``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from zoo.errors import ZooError  # noqa: E402
from zoo.evaluation.asr import load_eval_set, transcribe_items  # noqa: E402
from zoo.hub.export import best_checkpoints, export_checkpoint  # noqa: E402
from zoo.metrics.wer import error_rates  # noqa: E402
from zoo.models.base import load_folder  # noqa: E402


def dev_wer(model, sets: dict[str, list[dict]]) -> dict[str, float]:
    """Greedy WER per dev set and ``pooled`` (all dev utterances scored together)."""
    norm = model.zoo_config.get("normalizer", "upper")
    out, hyps_all, refs_all = {}, [], []
    for key, items in sets.items():
        hyps, refs = transcribe_items(model, items), [it["text"] for it in items]
        out[key] = error_rates(hyps, refs, norm)["wer"]
        hyps_all += hyps
        refs_all += refs
    out["pooled"] = error_rates(hyps_all, refs_all, norm)["wer"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", help="the run's checkpoints folder (holds last.ckpt and the best-*.ckpt files)")
    ap.add_argument("--n", type=int, nargs="+", default=[1, 3, 5], help="numbers of best checkpoints to average")
    ap.add_argument("--corpora", nargs="+", default=["an4", "speechocean762"], help="whose dev sets to score")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    try:
        sets = {c: load_eval_set(c, "dev", data_dir=args.data_dir) for c in args.corpora}
        rows = []
        for n in args.n:
            ckpts = best_checkpoints(args.folder, n)
            with tempfile.TemporaryDirectory() as tmp:
                out = export_checkpoint(ckpts, Path(tmp) / "avg", name=f"avg{n}")
                rows.append((n, [c.name for c in ckpts], dev_wer(load_folder(out), sets)))
    except ZooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    keys = list(sets) + ["pooled"]
    print(f"dev WER % (greedy) of the average of the N best checkpoints of {args.folder}")
    print(f"{'N':>3} " + " ".join(f"{k:>15}" for k in keys) + "  checkpoints")
    for n, names, w in rows:
        print(f"{n:>3} " + " ".join(f"{100 * w[k]:>15.2f}" for k in keys) + "  " + ", ".join(names))
    best = min(rows, key=lambda r: (round(r[2]["pooled"], 6), r[0]))
    print(f"chosen on dev: --average {best[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
