"""Turn a trained speaker checkpoint (zoo fit --config configs/speaker/*.yaml) into a model folder whose
config.json holds the verification threshold (cosine score at the EER point of the AN4-SV dev trials) and
the AN4-SV eval results (EER, minDCF 0.01/0.05, per-gender EER, gender gap, speaker-bootstrap CIs), with a
card, the training config, a DET plot and the text report.

    python scripts/release_speaker.py --ckpt exp/ecapa_an4/checkpoints/last.ckpt --name ecapa-an4 \
        --config configs/speaker/ecapa_an4.yaml [--out checkpoints/ecapa-an4] [--train-minutes 7]
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
import yaml

from zoo.evaluation.speaker import an4_sv_set, calibrate_threshold, evaluate_sv
from zoo.hub.cards import render_card
from zoo.hub.export import export_checkpoint
from zoo.io import atomic_write_text
from zoo.metrics.speaker import det_curve, format_sv_report, plot_det
from zoo.models.base import load_folder

REPO = Path(__file__).resolve().parent.parent
METRICS = [("eer", "EER", "eer"), ("min_dcf_0.01", "minDCF (p=0.01)", "min_dcf"),
           ("min_dcf_0.05", "minDCF (p=0.05)", "min_dcf"), ("eer_f", "EER female", "eer"),
           ("eer_m", "EER male", "eer"), ("gender_gap", "gender EER gap, abs(m - f)", "eer")]


def release(ckpt, out, name, config=None, data_dir=None, n_boot: int = 1000, summary: str = "",
            design_md: str = "", train_minutes: float | None = None, train_note: str = "",
            description: str = "") -> dict:
    """Export ``ckpt`` to ``out``, calibrate, evaluate, write card + config; returns the eval report."""
    torch.manual_seed(0)
    out = Path(out)
    export_checkpoint(ckpt, out, name=name)
    model = load_folder(out)
    dev_trials, dev_utts = an4_sv_set("dev", data_dir)
    threshold = calibrate_threshold(model, dev_trials, dev_utts)
    model.zoo_config["verification"] = {"threshold": threshold}
    ev_trials, ev_utts = an4_sv_set("eval", data_dir)
    rep, scores, labels = evaluate_sv(model, ev_trials, ev_utts, n_boot=n_boot)
    accepted = scores >= threshold
    rep["at_dev_threshold"] = {"fnr": float((~accepted[labels]).mean()), "fpr": float(accepted[~labels].mean())}
    report = format_sv_report(f"{name} on AN4-SV eval", rep)
    print(report)

    cfg = json.loads((out / "config.json").read_text())
    from zoo.hub.registry import MODELS

    cfg["release"] = {"description": description or (MODELS.get(name) or {}).get("description") or name}  # what `zoo list` shows: the bundled folders are the registry
    cfg["verification"] = {"threshold": threshold, "score": "cosine",
                           "calibrated_on": f"EER point of AN4-SV dev ({len(dev_trials)} trials, 10 speakers)"}
    ci = rep.get("ci", {})
    cfg["results"] = {
        "dataset_name": "CMU AN4 (speaker-verification split)", "dataset_type": "an4", "split": "eval",
        "headline": f"EER {100 * rep['eer']:.2f}% (AN4-SV eval)",
        "metrics": [{"type": t, "name": n, "value": round(100 * rep[k], 2) if t == "eer" else round(rep[k], 4)}
                    for k, n, t in METRICS if k in rep],
        "eval": rep,
    }
    def cell(k):
        pct = not k.startswith("min_dcf")
        f = (lambda v: f"{100 * v:.2f}") if pct else (lambda v: f"{v:.4f}")
        return f"| {dict((m[0], m[1]) for m in METRICS)[k]}{' (%)' if pct else ''} | {f(rep[k])} | " + \
            (f"{f(ci[k][0])}–{f(ci[k][1])} |" if k in ci else "– |")
    rows = "\n".join(cell(k) for k, _, _ in METRICS if k in rep)
    results_md = f"""AN4-SV eval: {rep['n_trials']:,} trials ({rep['n_target']:,} target) = every cross-utterance pair of
20 speakers unseen in training (10 female, 10 male: the 10 AN4 test speakers + 10 held-out AN4 train speakers).
Per-gender EER uses the same-gender trials; the gap is |EER_m - EER_f|. CIs: 95%, {rep.get('n_boot', 0)} bootstrap
resamples of speakers (within gender).

| metric | value | 95% CI |
|---|---|---|
{rows}

At the calibrated threshold ({threshold:.4f}, the dev EER point): miss rate {100 * rep['at_dev_threshold']['fnr']:.2f}%,
false-alarm rate {100 * rep['at_dev_threshold']['fpr']:.2f}% on eval.

![DET curve](det.png)

Reproduce: `zoo data an4-sv --out an4sv && zoo score --model {name} --trials an4sv/eval_trials.txt --manifest an4sv/eval.jsonl`.
"""
    t = f" in {train_minutes:.0f} minutes" if train_minutes else ""
    tc = yaml.safe_load(Path(config).read_text()) if config else {}
    root = (tc.get("trainer") or {}).get("default_root_dir") or f"exp/{name}"
    corpus = (tc.get("data") or {}).get("corpus", "an4_spk")
    speakers = ("163 speakers of AN4 + speechocean762 train (children and adults; "
                "`zoo.data.corpora.sv_speaker_split`)" if "so762" in str(corpus)
                else "the 54 AN4-SV train speakers (9 female, 45 male)")
    training_md = f"""Trained from scratch on {speakers} on a 2-core CPU{t}, seed {tc.get("seed", 0)}:

```bash
zoo fit --config checkpoints/{name}/train_config.yaml --trainer.default_root_dir {root}
python scripts/release_speaker.py --ckpt {root}/checkpoints/last.ckpt --name {name} --config {root}/config.yaml
```

{train_note}
"""
    if config:
        shutil.copyfile(config, out / "train_config.yaml")
    fnr, fpr, _ = det_curve(scores, labels)
    plot_det({name: (fnr, fpr, rep["eer"])}, out / "det.png", title="AN4-SV eval")
    atomic_write_text(out / "config.json", json.dumps(cfg, indent=2) + "\n")
    atomic_write_text(out / "README.md", render_card(name, cfg, summary=summary, results_md=results_md,
                                                     training_md=training_md, design_md=design_md))
    atomic_write_text(out / "eval_an4sv_eval.txt", report + "\n")
    return rep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--description", default=None, help="one line for `zoo list` (stored in config.json; "
                    "default: the description of the folder being replaced, else the name)")
    ap.add_argument("--config", default=None, help="the training config (copied next to the weights)")
    ap.add_argument("--out", default=None, help="model folder (default checkpoints/NAME)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--train-minutes", type=float, default=None)
    ap.add_argument("--summary", default="")
    ap.add_argument("--design", default=None, help="Markdown file: from the paper vs our choice")
    ap.add_argument("--train-note", default="")
    a = ap.parse_args()
    out = Path(a.out) if a.out else REPO / "checkpoints" / a.name
    release(a.ckpt, out, a.name, a.config, a.data_dir, a.n_boot, a.summary,
            Path(a.design).read_text() if a.design else "", a.train_minutes, a.train_note, a.description)
    print(f"released {out}")


if __name__ == "__main__":
    main()
