"""Side-by-side benchmark of multi-talker models (STS and its no-turn-token baseline) on the fixed AN4
two-speaker mixture test set, in one run.

    python benchmarks/multitalker.py [--models sts-an4 sts-noturn-an4] [--baseline sts-noturn-an4] \
        [--manifest manifests/an4mix/test.jsonl] [--chunk-ms 160] [--threads 1] [--json out.json]

Models are released names, model folders or Hub ids (default: every released multitalker-asr model).
Every model decodes the same sessions (batch greedy ``transcribe``; streaming for the RTF and the
stream == batch check) through ``zoo.evaluation.multitalker.evaluate_multitalker``, i.e. exactly the numbers of
``zoo evaluate --model M``. Prints params, cpWER (95% session-bootstrap CI), ORC-WER, turn-counting
accuracy (CI), end-of-turn latency median / P90, streaming RTF at ``--threads`` threads, and the same by
overlap bin, with ratios (cpWER, ORC-WER, RTF) and differences (turn accuracy in points, latency in ms)
against the baseline (default: the model without turn tokens).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from zoo.errors import ZooError


def label(name: str) -> str:
    p = Path(name)
    return p.name if p.exists() else name


def default_models() -> list[str]:
    from zoo.hub.registry import MODELS, bundled_folder

    return [n for n, m in MODELS.items()
            if m["task"] == "multitalker-asr" and (bundled_folder(n) / "config.json").is_file()]


def pick_baseline(rows: list[dict], baseline: str | None) -> dict | None:
    if baseline:
        found = [r for r in rows if baseline in (r["name"], r["label"])]
        if not found:
            raise ZooError(f"--baseline {baseline} is not one of --models")
        return found[0]
    plain = [r for r in rows if not r["turn_tokens"]]
    return plain[0] if len(plain) == 1 else None


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def _row(r: dict, base: dict | None, key) -> str:
    """One table line of model ``r`` for subset ``key`` ("all" or an overlap bin), or None if it has none."""
    s = r["res"]["all"] if key == "all" else r["res"]["by_overlap"].get(key)
    if s is None:
        return None
    b = None if base is None else (base["res"]["all"] if key == "all" else base["res"]["by_overlap"].get(key))
    ci = s.get("ci", {})
    cp, orc, acc = s["cpwer"]["wer"], s["orcwer"]["wer"], s["turn_counting_accuracy"]
    eot = s["latency_ms"]["end"]
    cpci = f"{100 * ci['cpwer']['low']:.1f}-{100 * ci['cpwer']['high']:.1f}" if ci else "-"
    tci = ci.get("turn_counting_accuracy")
    acci = f"{100 * tci['low']:.0f}-{100 * tci['high']:.0f}" if tci else "-"
    line = (f"{r['label']:<20} {s['sessions']:>4} {100 * cp:>7.2f} {cpci:>13} {100 * orc:>7.2f} {100 * acc:>6.1f} "
            f"{acci:>9} {eot['median']:>7.0f} {eot['p90']:>7.0f}")
    if key == "all":
        line = (f"{r['label']:<20} {r['res']['num_parameters'] / 1e6:>7.2f}M" + line[20:] +
                f" {r['res']['stream']['rtf']:>7.4f} {100 * r['res']['stream']['equals_batch']:>5.0f}%")
    if b is not None:
        beot = b["latency_ms"]["end"]["median"]
        line += (f" {_ratio(cp, b['cpwer']['wer']):>6} {_ratio(orc, b['orcwer']['wer']):>6} "
                 f"{100 * (acc - b['turn_counting_accuracy']):>+8.1f} {eot['median'] - beot:>+8.0f}")
        if key == "all":
            line += f" {_ratio(r['res']['stream']['rtf'], base['res']['stream']['rtf']):>6}"
    return line


def format_table(rows: list[dict], base: dict | None, eval_set: str, threads: int, chunk_ms: float) -> str:
    ratios = f" {'cpWER x':>6} {'ORC x':>6} {'turn +pp':>8} {'eot +ms':>8}" if base else ""
    n = rows[0]["res"]["sessions"]
    head = (f"{'n':>4} {'cpWER%':>7} {'95% CI':>13} {'ORC%':>7} {'turns%':>6} {'95% CI':>9} "
            f"{'eot med':>7} {'eot p90':>7}")
    lines = [f"{eval_set} ({n} sessions), {threads} thread(s), {chunk_ms:.0f} ms chunks, greedy; latency in ms "
             f"(emitted - reference); CIs: session bootstrap" + (f"; ratios vs {base['label']}" if base else ""),
             f"{'model':<20} {'params':>8}" + head + f" {'RTF':>7} {'s==b':>6}" + ratios
             + (f" {'RTF x':>6}" if base else "")]
    lines += [_row(r, base, "all") for r in rows]
    bins = [k for k in rows[0]["res"]["by_overlap"]]
    for r in rows[1:]:
        bins += [k for k in r["res"]["by_overlap"] if k not in bins]
    if bins:
        lines += ["", "by overlap ratio of the session (overlapped / speech time)",
                  f"{'overlap':<8} {'model':<20}" + head + ratios]
        for k in bins:
            for r in rows:
                line = _row(r, base, k)
                if line is not None:
                    lines.append(f"{k:<8} {line}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=None, help="names, folders or Hub ids (default: released)")
    ap.add_argument("--baseline", default=None, help="ratio reference (default: the model without turn tokens)")
    ap.add_argument("--manifest", default=None, help="a `zoo data an4-mix` manifest (default: the fixed test set)")
    ap.add_argument("--sessions", type=int, default=None, help="sessions of the generated set (default: the fixed 200)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--chunk-ms", type=float, default=160.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--json", default=None, help="also write every model's full results here")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except ZooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args) -> int:
    from zoo.evaluation.multitalker import eval_set_name, evaluate_multitalker, is_multitalker, load_mix_sessions
    from zoo.hub import from_pretrained

    torch.set_num_threads(args.threads)
    names = args.models or default_models()
    if not names:
        raise ZooError("no released multi-talker models yet; give --models NAME_OR_FOLDER ...")
    if args.baseline and args.baseline not in names + [label(n) for n in names]:
        raise ZooError(f"--baseline {args.baseline} is not one of the models ({', '.join(names)})")
    models = []
    for n in names:
        m = from_pretrained(n)
        if not is_multitalker(m):
            raise ZooError(f"{n} is not a multi-talker model (its task is {getattr(m, 'task', 'asr')!r})")
        models.append((n, m))
    items = load_mix_sessions(args.manifest, "test", args.sessions, None, args.data_dir)
    rows = []
    for n, m in models:
        res = evaluate_multitalker(m, items, chunk_ms=args.chunk_ms, n_boot=args.n_boot, threads=args.threads,
                                   progress=sys.stderr.isatty())
        rows.append({"name": n, "label": label(n), "turn_tokens": bool(getattr(m, "turn_tokens", True)), "res": res})
    base = pick_baseline(rows, args.baseline)
    eval_set = eval_set_name(args.manifest, "test")
    print(format_table(rows, base, eval_set, args.threads, args.chunk_ms))
    if args.json:
        from zoo.io import atomic_write_text

        atomic_write_text(args.json, json.dumps({"eval_set": eval_set, "baseline": base["name"] if base else None,
                                                 "models": {r["label"]: r["res"] for r in rows}}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
