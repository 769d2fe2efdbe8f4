"""Baseline vs ARW speaker verification over seeds: mean ± std of EER, minDCF, per-gender EER and the gender
gap on AN4-SV eval, and ARW's relative change against the issue's goal (EER -7.7%, gender gap -17%).

    python benchmarks/sv.py --baseline exp/ecapa_an4*/checkpoints/last.ckpt --arw exp/arw_an4*/checkpoints/last.ckpt \
        [--split eval] [--json out.json]
    python benchmarks/sv.py --seeds reports/sv_v2/seeds [--baseline-name ecapa]

``--seeds DIR`` tabulates stored scores instead (no model is run): DIR/<system>/s<seed>/<set>.json as
``scripts/sv_seeds.sh`` writes them (``zoo score`` metrics of the speechocean762-test list ``so762`` and its
``so762_child`` / ``so762_adult`` subsets, and ``an4sv``): per system mean ± std over seeds of EER, minDCF, child
and adult EER, the worst age cohort's EER and the child-adult gap, and each system's relative change against the
baseline system (``--baseline-name``) for the issue's goals (EER -7.6%, worst-cohort gap -17%).

Each run is a Lightning checkpoint (.ckpt) or a model folder / released name. Metrics are threshold-free
(no calibration needed), computed on every cross-utterance pair of the split; std is over runs (seeds).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from zoo.evaluation.speaker import an4_sv_set, evaluate_sv

KEYS = [("eer", "EER %", 100), ("min_dcf_0.01", "minDCF .01", 1), ("min_dcf_0.05", "minDCF .05", 1),
        ("eer_f", "EER f %", 100), ("eer_m", "EER m %", 100), ("gender_gap", "gap %", 100)]
GOALS = {"eer": -7.7, "gender_gap": -17.0}


def load_run(path: str):
    """A .ckpt written by zoo fit, or anything from_pretrained takes."""
    if str(path).endswith(".ckpt"):
        from zoo.hub.export import net_from_checkpoint

        return net_from_checkpoint(path)[0]
    from zoo.hub import from_pretrained

    return from_pretrained(path)


def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def summarise(groups: dict[str, list[dict]]) -> str:
    head = f"{'system':<10}{'runs':>5}" + "".join(f"{name:>18}" for _, name, _ in KEYS)
    lines = [head]
    stats = {}
    for g, reps in groups.items():
        row = f"{g:<10}{len(reps):>5}"
        for k, _, scale in KEYS:
            vals = [r[k] * scale for r in reps if k in r]
            if not vals:
                row += f"{'-':>18}"
                continue
            m, s = mean_std(vals)
            stats[(g, k)] = (m, s)
            fmt = "{:.2f} ± {:.2f}" if scale == 100 else "{:.3f} ± {:.3f}"
            row += f"{fmt.format(m, s):>18}"
        lines.append(row)
    if "baseline" in groups and "arw" in groups:
        row = f"{'ARW rel.':<10}{'':>5}"
        verdict = []
        for k, _, _ in KEYS:
            if ("baseline", k) in stats and ("arw", k) in stats and stats[("baseline", k)][0]:
                (mb, sb), (ma, sa) = stats[("baseline", k)], stats[("arw", k)]
                rel = 100 * (ma - mb) / mb
                row += f"{rel:>+17.1f}%"
                if k in GOALS:
                    if min(len(groups["baseline"]), len(groups["arw"])) < 2:
                        spread = "seed spread unknown (fewer than 2 runs)"
                    else:
                        spread = f"difference {'beyond' if abs(ma - mb) > max(sb, sa) else 'within'} the seed std"
                    verdict.append(f"{k}: {rel:+.1f}% (goal {GOALS[k]:+.1f}%: "
                                   f"{'met' if rel <= GOALS[k] else 'not met'}; {spread})")
            else:
                row += f"{'-':>18}"
        lines += [row, ""] + verdict
    return "\n".join(lines)


SEED_KEYS = [("eer", "EER %"), ("min_dcf_0.01", "minDCF .01"), ("eer_child", "child %"), ("eer_adult", "adult %"),
             ("eer_worst", "worst %"), ("age_gap", "gap pts"), ("eer_an4sv", "AN4-SV %")]
SEED_GOALS = {"eer": -7.6, "age_gap": -17.0}


def seed_metrics(run_dir: Path) -> dict | None:
    """One seed's stored scores -> flat metrics (EERs in %), or None when its so762 score is missing."""
    def load(name):
        f = run_dir / f"{name}.json"
        return json.loads(f.read_text()) if f.is_file() else None
    allset = load("so762")
    if allset is None:
        return None
    m = {"eer": 100 * allset["eer"], "min_dcf_0.01": allset["min_dcf_0.01"]}
    child, adult, an4 = load("so762_child"), load("so762_adult"), load("an4sv")
    if child and adult:
        m.update(eer_child=100 * child["eer"], eer_adult=100 * adult["eer"])
        m.update(eer_worst=max(m["eer_child"], m["eer_adult"]), age_gap=abs(m["eer_child"] - m["eer_adult"]))
    if an4:
        m["eer_an4sv"] = 100 * an4["eer"]
    return m


def seeds_table(root: Path, baseline: str = "ecapa") -> str:
    """Mean ± std over seeds per system folder of ``root``, and the change against ``baseline``."""
    systems = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        runs = [m for r in sorted(d.glob("s*")) if (m := seed_metrics(r)) is not None]
        if runs:
            systems[d.name] = runs
    if not systems:
        raise SystemExit(f"error: no <system>/s<seed>/so762.json under {root} — run scripts/sv_seeds.sh first")
    order = ([baseline] if baseline in systems else []) + [s for s in systems if s != baseline]
    width = max(len(s) for s in order) + 2
    lines = ["speechocean762 test list (+ AN4-SV eval); EER in %, mean ± std over seeds; gap = |child - adult| "
             "EER points; worst = the worse age cohort",
             f"{'system':<{width}}{'seeds':>6}" + "".join(f"{t:>16}" for _, t in SEED_KEYS)]
    stats = {}
    for s in order:
        row = f"{s:<{width}}{len(systems[s]):>6}"
        for k, _ in SEED_KEYS:
            vals = [r[k] for r in systems[s] if k in r]
            if not vals:
                row += f"{'-':>16}"
                continue
            stats[(s, k)] = mean_std(vals)
            fmt = "{:.3f} ± {:.3f}" if k.startswith("min_dcf") else "{:.2f} ± {:.2f}"
            row += f"{fmt.format(*stats[(s, k)]):>16}"
        lines.append(row)
    if baseline in systems:
        lines += ["", f"relative change against {baseline} (mean over seeds):"]
        for s in order[1:]:
            parts = []
            for k, t in SEED_KEYS:
                if (s, k) in stats and (baseline, k) in stats and stats[(baseline, k)][0]:
                    mb, ma = stats[(baseline, k)][0], stats[(s, k)][0]
                    rel = 100 * (ma - mb) / mb
                    goal = (f" (goal {SEED_GOALS[k]:+.1f}%: {'met' if rel <= SEED_GOALS[k] else 'not met'})"
                            if k in SEED_GOALS else "")
                    parts.append(f"{t.replace(' %', '')} {rel:+.1f}%{goal}")
            lines.append(f"  {s}: " + ", ".join(parts))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default=None, help="tabulate stored per-seed scores of this folder instead")
    ap.add_argument("--baseline-name", default="ecapa", help="with --seeds: the baseline system's folder name")
    ap.add_argument("--baseline", nargs="+", default=None, help="baseline runs (ckpt or model folder)")
    ap.add_argument("--arw", nargs="*", default=[], help="ARW runs")
    ap.add_argument("--split", default="eval", choices=["dev", "eval"])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write every run's report here")
    a = ap.parse_args()
    if a.seeds:
        print(seeds_table(Path(a.seeds), a.baseline_name))
        return
    if not a.baseline:
        ap.error("give --baseline runs, or --seeds DIR")
    torch.set_num_threads(a.threads)
    trials, utts = an4_sv_set(a.split, a.data_dir)
    groups: dict[str, list[dict]] = {"baseline": [], "arw": []}
    per_run = {}
    for g, runs in (("baseline", a.baseline), ("arw", a.arw)):
        for r in runs:
            rep, _, _ = evaluate_sv(load_run(r), trials, utts, n_boot=0)
            groups[g].append(rep)
            per_run[r] = {"system": g, **rep}
            print(f"{g:<9} {r}: EER {100 * rep['eer']:.2f}%  gap {100 * rep.get('gender_gap', float('nan')):.2f}%",
                  flush=True)
    groups = {g: v for g, v in groups.items() if v}
    print()
    print(f"AN4-SV {a.split}: {len(trials)} trials; mean ± std over runs")
    print(summarise(groups))
    if a.json:
        from zoo.io import atomic_write_text

        atomic_write_text(a.json, json.dumps({"split": a.split, "runs": per_run}, indent=2))
        print(f"wrote {Path(a.json)}")


if __name__ == "__main__":
    main()
