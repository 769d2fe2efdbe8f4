"""Turn a trained ASR checkpoint into a bundled release: checkpoints/<name>/ with config.json (+ results),
model.safetensors, the training config and a model card whose numbers come from `zoo evaluate`.

    python scripts/release_asr.py --ckpt exp/lstm_rnnt_an4/checkpoints/last.ckpt --name lstm-rnnt-an4 \
        --config configs/asr/lstm_rnnt_an4.yaml --train-minutes 52
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from zoo.cards import render_card
from zoo.evaluate import evaluate_asr, format_report, load_eval_set
from zoo.export import export_checkpoint
from zoo.hub import load_folder
from zoo.io import atomic_write_text

REPO = Path(__file__).resolve().parent.parent


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--config", required=True, help="the training config (copied next to the weights)")
    ap.add_argument("--train-minutes", type=float, default=None, help="wall-clock training time, for the card")
    ap.add_argument("--summary", default=None, help="first paragraph of the card")
    ap.add_argument("--design", default=None, help="Markdown file: from the paper vs our choice")
    ap.add_argument("--beam-size", type=int, default=4)
    ap.add_argument("--train-note", default="", help="Markdown appended to the training section")
    ap.add_argument("--results-extra", default=None,
                    help="Markdown file appended to the results section (e.g. reports/cca_pareto/cca_pareto.md); "
                         "the PNG files beside it are copied into the model folder so its image links work")
    args = ap.parse_args()

    torch.manual_seed(0)
    out = REPO / "checkpoints" / args.name
    export_checkpoint(args.ckpt, out, name=args.name)
    model = load_folder(out)
    res = evaluate_asr(model, load_eval_set("an4", "test"), beam_size=args.beam_size)
    report = format_report(args.name, "an4 test", res)
    print(report)

    g, b = res["greedy"], res[f"beam{args.beam_size}"]
    cfg = json.loads((out / "config.json").read_text())
    cfg["results"] = {
        "dataset_name": "CMU AN4", "dataset_type": "an4", "split": "test",
        "headline": f"WER {pct(g['wer'])}% (AN4 test, greedy)",
        "metrics": [{"type": "wer", "name": "WER (greedy)", "value": round(100 * g["wer"], 2)},
                    {"type": "wer", "name": f"WER (beam {args.beam_size})", "value": round(100 * b["wer"], 2)},
                    {"type": "cer", "name": "CER (greedy)", "value": round(100 * g["cer"], 2)}],
        "greedy": {k: g[k] for k in ("wer", "cer")}, "beam": {k: b[k] for k in ("wer", "cer")},
        "stream_rtf_1thread": res["stream"]["rtf"], "algorithmic_latency_ms": res["streaming"]["algorithmic_latency_ms"],
    }
    rows = "\n".join(
        f"| {k} | {pct(v['wer'])} | {pct(v['ci_utt']['low'])}–{pct(v['ci_utt']['high'])} | "
        f"{pct(v['ci_spk']['low'])}–{pct(v['ci_spk']['high'])} | {pct(v['cer'])} |"
        for k, v in (("greedy", g), (f"beam {args.beam_size}", b)))
    s = res["stream"]
    results_md = f"""AN4 test (130 utterances, 10 speakers, speakers unseen in training), text normaliser `{res['normalizer']}`.

| decoding | WER % | 95% CI (utterance bootstrap) | 95% CI (speaker bootstrap) | CER % |
|---|---|---|---|---|
{rows}

| streaming | value |
|---|---|
| real-time factor, 1 CPU thread, {s['chunk_ms']:.0f} ms chunks | {s['rtf']:.4f} |
| algorithmic latency (chunk + analysis window look-ahead) | {res['streaming']['algorithmic_latency_ms']:.0f} ms |
| streamed text identical to batch greedy text | {100 * s['equals_batch_greedy']:.0f}% of utterances |
| parameters | {res['num_parameters']:,} |

Reproduce: `zoo evaluate --model {args.name} --split test --beam-size {args.beam_size}` (CIs: 1000 bootstrap
resamples of utterances, or of speakers). RTF depends on the CPU; it was measured on the 2-core machine
that trained the model.
"""
    if args.results_extra:
        extra = Path(args.results_extra)
        results_md += "\n" + extra.read_text()
        for png in extra.parent.glob("*.png"):
            shutil.copyfile(png, out / png.name)
    cfg_rel = Path(args.config)
    shutil.copyfile(REPO / cfg_rel, out / "train_config.yaml")
    t = f" in {args.train_minutes:.0f} minutes" if args.train_minutes else ""
    training_md = f"""Trained from scratch on AN4 train minus a speaker-disjoint dev slice (8 speakers) on a 2-core CPU{t}:

```bash
zoo fit --config {cfg_rel.as_posix()}
python scripts/release_asr.py --ckpt <best or last ckpt> --name {args.name} --config {cfg_rel.as_posix()}
```

The exact config is `train_config.yaml` beside the weights. Recipe: 80-dim log-mel, frames stacked 4x
(40 ms), SpecAugment (2 freq masks of width <= 15, 2 time masks of <= 5%), speed perturbation 0.9/1.1,
CTC auxiliary loss (weight 0.3) on the encoder, AdamW (lr 2e-3, weight decay 0.01) with linear warm-up
and cosine decay, gradient clipping 5.

{args.train_note}
"""
    design_md = Path(args.design).read_text() if args.design else ""
    card = render_card(args.name, cfg, summary=args.summary or "", results_md=results_md,
                       training_md=training_md, design_md=design_md)
    atomic_write_text(out / "config.json", json.dumps(cfg, indent=2) + "\n")
    atomic_write_text(out / "README.md", card)
    atomic_write_text(out / "eval_an4_test.txt", report + "\n")
    print(f"released {out}")


if __name__ == "__main__":
    main()
