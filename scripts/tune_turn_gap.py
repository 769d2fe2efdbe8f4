"""Tune the multi-turn baseline's segmentation gap on dev, then report test once (issue: a fair STS baseline).

    python scripts/tune_turn_gap.py --model sts-noturn-an4 --sts sts-an4 --gaps 0.3 0.5 0.7 1.0 1.5

The baseline (no turn tokens) ends a turn once no token has been emitted for ``turn_gap_s``; its released value
(1.0 s) was set by hand. Each gap is scored on the fixed dev sessions (greedy, batch); the gap with the best
turn-counting accuracy wins (ties: lower cpWER, then the smaller gap). Test is then decoded once at that gap,
beside the STS model. The gap only post-processes the decoded tokens, so the encoder runs once per session and
set. Latency: end-of-turn emission minus reference end (median ms); for the baseline also the last-token
latency (end emission minus the gap), the part a gap cannot remove.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from zoo.evaluation.multitalker import _turns, load_mix_sessions, session_audio  # noqa: E402
from zoo.hub import from_pretrained  # noqa: E402
from zoo.io import print_report  # noqa: E402
from zoo.metrics.multitalker import evaluate_sessions  # noqa: E402
from zoo.text import get_normalizer  # noqa: E402


def score(model, items, gap: float | None, wavs) -> dict:
    if gap is not None:
        model.turn_gap_s = float(gap)
    norm = get_normalizer(model.normalizer)
    hyps = model.transcribe(wavs, sample_rate=model.sample_rate)
    return evaluate_sessions([_turns(it["turns"], norm) for it in items], [_turns(h, norm) for h in hyps])["all"]


def row(name: str, r: dict, gap: float | None = None) -> str:
    end = r["latency_ms"]["end"]["median"]
    last = f"{end - 1000 * gap:8.0f}" if gap is not None and end is not None else f"{'-':>8}"
    return (f"{name:<28} {100 * r['turn_counting_accuracy']:>7.1f} {100 * r['cpwer']['wer']:>7.2f} "
            f"{end if end is not None else float('nan'):>8.0f} {last}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="sts-noturn-an4", help="the baseline (no turn tokens)")
    ap.add_argument("--sts", default="sts-an4", help="the STS model reported beside it on test")
    ap.add_argument("--gaps", type=float, nargs="+", default=[0.3, 0.5, 0.7, 1.0, 1.5])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None, help="also write the table here")
    a = ap.parse_args()
    base = from_pretrained(a.model)
    released_gap = base.turn_gap_s
    dev = load_mix_sessions(None, "dev", None, None, a.data_dir)
    dev_wavs = session_audio(dev, base.sample_rate)
    head = f"{'':<28} {'turns %':>7} {'cpWER %':>7} {'eot ms':>8} {'last ms':>8}"
    lines = [f"dev ({len(dev)} sessions): baseline {a.model} by turn gap", head]
    res = {}
    for g in a.gaps:
        res[g] = score(base, dev, g, dev_wavs)
        lines.append(row(f"gap {g:g} s", res[g], g))
        print(lines[-1], flush=True)
    best = min(a.gaps, key=lambda g: (-res[g]["turn_counting_accuracy"], res[g]["cpwer"]["wer"], g))
    lines.append(f"chosen on dev: turn_gap_s {best:g} (released: {released_gap:g})")
    test = load_mix_sessions(None, "test", None, None, a.data_dir)
    test_wavs = session_audio(test, base.sample_rate)
    lines += ["", f"test ({len(test)} sessions), reported once", head,
              row(f"{a.model} gap {best:g} s", score(base, test, best, test_wavs), best),
              row(f"{a.model} gap {released_gap:g} s (released)", score(base, test, released_gap, test_wavs),
                  released_gap)]
    sts = from_pretrained(a.sts)
    lines.append(row(a.sts, score(sts, test, None, test_wavs)))
    print_report(lines, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
