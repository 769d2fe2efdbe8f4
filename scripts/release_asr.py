"""Turn a trained ASR checkpoint into a bundled release: checkpoints/<name>/ with config.json (+ results),
model.safetensors, the training config and a model card whose numbers come from `zoo evaluate`.

    python scripts/release_asr.py --ckpt exp/lstm_rnnt_an4/checkpoints/last.ckpt --name lstm-rnnt-an4 \
        --config configs/asr/lstm_rnnt_an4.yaml --train-minutes 52

Multi-talker (STS) checkpoints are detected from their architecture and evaluated on the fixed AN4
two-speaker mixture test set (cpWER / ORC-WER / turn counting / turn latency, by overlap bin):

    python scripts/release_asr.py --ckpt exp/sts_an4/checkpoints/last.ckpt --name sts-an4 \
        --config configs/multitalker/sts_an4.yaml

The design notes default to model_cards/<name>.design.md when that file exists.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
import yaml

from zoo.errors import ZooError
from zoo.evaluation.asr import TEST_SETS, evaluate_asr, format_report, load_eval_set
from zoo.evaluation.multitalker import is_multitalker
from zoo.hub.cards import render_card
from zoo.hub.export import best_checkpoints, export_checkpoint, load_checkpoint
from zoo.io import atomic_write_text
from zoo.models.base import load_folder

REPO = Path(__file__).resolve().parent.parent


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def previous_description(folder: Path, name: str) -> str:
    """The ``release.description`` of the model folder a release replaces (its config.json may be gone by now:
    the bundled registry remembers it), else ``name``."""
    from zoo.hub.registry import MODELS

    return (MODELS.get(name) or {}).get("description") or name


def fit_block(args) -> str:
    """The card's two commands: train (from shipped configs only) and release, on the same run folder."""
    root = (args.train_yaml.get("trainer") or {}).get("default_root_dir") or f"exp/{args.name}"
    if args.recipe:  # recipe v2: base + encoder file (+ stage-2 extras)
        fit = f"--config configs/asr/v2/base.yaml --config {args.recipe}" + (f" {args.fit_extra}" if args.fit_extra else "")
        rel = f"--ckpt {root}/checkpoints --average {args.average or 1} --recipe {args.recipe} --sets {args.sets}"
        if args.fit_extra:
            rel += f" --fit-extra '{args.fit_extra}'"
    else:  # the released model's own resolved config, shipped beside its weights
        fit = f"--config checkpoints/{args.name}/train_config.yaml"
        ckpt = Path(str(args.ckpt))
        rel = f"--ckpt {root}/checkpoints/{ckpt.name if ckpt.suffix == '.ckpt' else 'last.ckpt'}"
    tune = ""
    if args.greedy_settings or args.beam_settings:
        tune = f"python scripts/tune_decoding.py --model {args.name}   # dev only: the decoding settings below\n"
        for flag, val in (("--greedy-settings", args.greedy_settings), ("--beam-settings", args.beam_settings)):
            if val:
                rel += f" {flag} {val}"
    if args.turn_gap is not None:
        rel += f" --turn-gap {args.turn_gap:g}"
        tune += f"python scripts/tune_turn_gap.py --model {args.name}   # dev only: the turn gap below\n"
    prep = f"{args.prepare}\n" if args.prepare else ""
    return (f"```bash\n{prep}zoo fit {fit} --trainer.default_root_dir {root}\n{tune}"
            f"python scripts/release_asr.py {rel} --name {args.name} --description '<one line>' "
            f"--config {root}/config.yaml\n```")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--description", default=None, help="one line for `zoo list` (stored in config.json; "
                    "default: the description of the folder being replaced, else the name)")
    ap.add_argument("--config", required=True, help="the training config (copied next to the weights)")
    ap.add_argument("--train-minutes", type=float, default=None, help="wall-clock training time, for the card")
    ap.add_argument("--summary", default=None, help="first paragraph of the card")
    ap.add_argument("--fit-extra", default="", help="what follows the recipe config on the card's `zoo fit` line, "
                    "e.g. '--config configs/asr/v2/stage2.yaml --model.init_args.init_from lstm-rnnt-an4-so762'")
    ap.add_argument("--design", default=None, help="Markdown file: from the paper vs our choice")
    ap.add_argument("--beam-size", type=int, default=4)
    ap.add_argument("--greedy-settings", default=None, metavar="K=V,...",
                    help="greedy (and streaming) decoding settings stored in config.json's `decoding` block, e.g. "
                         "ilm_weight=0.3,length_bonus=0.5 (choose them on dev: scripts/tune_decoding.py)")
    ap.add_argument("--beam-settings", default=None, metavar="K=V,...", help="the same for beam search")
    ap.add_argument("--settings-note", default="", help="where the decoding settings were chosen (card)")
    ap.add_argument("--prepare", default="", help="a command the card shows before `zoo fit` (e.g. the init folder's)")
    ap.add_argument("--train-note", default="", help="Markdown appended to the training section")
    ap.add_argument("--results-extra", default=None,
                    help="Markdown file appended to the results section (e.g. reports/cca_pareto/cca_pareto.md); "
                         "the PNG files beside it are copied into the model folder so its image links work")
    ap.add_argument("--out", default=None, help="model folder to write (default checkpoints/<name>)")
    ap.add_argument("--force", action="store_true", help="replace an earlier model folder at --out (re-release)")
    ap.add_argument("--data-dir", default=None, help="corpus location (default $ZOO_DATA or ../shared/data)")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% CIs")
    ap.add_argument("--recipe", default=None,
                    help="the config file a user passes to zoo fit, shown in the card (default: --config); e.g. "
                         "--config exp/v2/lstm/config.yaml (the run's resolved config) --recipe configs/asr/v2/lstm.yaml")
    ap.add_argument("--average", type=int, default=None, metavar="N",
                    help="--ckpt is the run's checkpoints folder: release the average of its N best (by dev WER)")
    ap.add_argument("--sets", default="an4",
                    help="comma-separated eval sets, the first is the headline (and the streaming measurement): "
                         + ", ".join(EVAL_SETS) + " (default an4)")
    ap.add_argument("--turn-gap", type=float, default=None, metavar="S",
                    help="multi-talker baseline (no turn tokens): the turn gap to ship, chosen on dev "
                         "(scripts/tune_turn_gap.py); default: the training config's")
    ap.add_argument("--sessions", type=int, default=None,
                    help="multi-talker only: sessions of the test set (default: the fixed 200; smoke tests)")
    args = ap.parse_args(argv)
    try:
        release(args)
    except ZooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def parse_settings(text: str, flag: str = "--greedy-settings") -> dict[str, float]:
    """'ilm_weight=0.1,length_bonus=0.5' -> {'ilm_weight': 0.1, 'length_bonus': 0.5} (known keys only)."""
    from zoo.models.transducer import DECODING_KEYS

    out = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in DECODING_KEYS:
            raise ZooError(f"{flag}: unknown setting {key!r} — use {', '.join(DECODING_KEYS)}")
        try:
            out[key] = float(value)
        except ValueError:
            raise ZooError(f"{flag}: {key} needs a number (got {value!r})") from None
    return out


def checkpoint_model_config(ckpts) -> dict:
    """The ``model`` block of the (first) checkpoint's zoo_config, read before anything is written."""
    ck = load_checkpoint(Path(ckpts[0] if isinstance(ckpts, (list, tuple)) else ckpts))
    return (ck.get("zoo_config") or {}).get("model") or {}


def release(args) -> Path:
    torch.manual_seed(0)
    out = Path(args.out) if args.out else REPO / "checkpoints" / args.name
    cfg_rel = Path(args.config)
    train_cfg = cfg_rel if cfg_rel.is_absolute() else REPO / cfg_rel
    if not train_cfg.is_file():
        raise ZooError(f"training config not found: {args.config}")
    ckpts = best_checkpoints(args.ckpt, args.average) if args.average else args.ckpt
    if args.turn_gap is not None and checkpoint_model_config(ckpts).get("turn_tokens", True):
        raise ZooError("--turn-gap is for a multi-talker baseline trained without turn tokens (turn_tokens: false)")
    export_checkpoint(ckpts, out, name=args.name, force=args.force)
    args.train_yaml = yaml.safe_load(train_cfg.read_text()) or {}  # read once: the card's recipe and data
    cfg = json.loads((out / "config.json").read_text())
    if args.greedy_settings or args.beam_settings:
        cfg["decoding"] = {"greedy": parse_settings(args.greedy_settings or ""),
                           "beam": parse_settings(args.beam_settings or "", "--beam-settings"),
                           "chosen_on": args.settings_note}
        atomic_write_text(out / "config.json", json.dumps(cfg, indent=2) + "\n")
    if args.turn_gap is not None:
        cfg["model"]["turn_gap_s"] = float(args.turn_gap)
        atomic_write_text(out / "config.json", json.dumps(cfg, indent=2) + "\n")
    model = load_folder(out)
    cfg["release"] = {"description": args.description or previous_description(out, args.name)}  # what `zoo list` shows: the bundled folders are the registry
    if is_multitalker(model):
        report, cfg["results"], results_md, recipe_md, eval_file = multitalker_results(args, model, train_cfg)
    else:
        if args.sessions is not None:
            raise ZooError("--sessions is for multi-talker models")
        report, cfg["results"], results_md, recipe_md, eval_file = asr_results(args, model)
    print(report)
    if args.results_extra:
        extra = Path(args.results_extra)
        results_md += "\n" + extra.read_text()
        for png in extra.parent.glob("*.png"):
            shutil.copyfile(png, out / png.name)
    shutil.copyfile(train_cfg, out / "train_config.yaml")
    t = f" in {args.train_minutes:.0f} minutes" if args.train_minutes else ""
    training_md = recipe_md.format(t=t, cfg=args.recipe or cfg_rel.as_posix(), name=args.name,
                                   fit_block=fit_block(args)) + f"\n{args.train_note}\n"
    design = Path(args.design) if args.design else REPO / "model_cards" / f"{args.name}.design.md"
    if args.design and not design.is_file():
        raise ZooError(f"design notes not found: {args.design}")
    design_md = design.read_text() if design.is_file() else ""
    corpora = set((args.train_yaml.get("data") or {}).get("corpora") or {})
    data_md = " ".join(DATA_LICENSES[c] for c in sorted(corpora) if c in DATA_LICENSES) or None
    extra = {"data_md": data_md, "datasets": [DATASET_IDS[c] for c in sorted(corpora)]} if data_md else {}
    card = render_card(args.name, cfg, summary=args.summary or "", results_md=results_md,
                       training_md=training_md, design_md=design_md, **extra)
    atomic_write_text(out / "config.json", json.dumps(cfg, indent=2) + "\n")
    atomic_write_text(out / "README.md", card)
    atomic_write_text(out / eval_file, report + "\n")
    print(f"released {out}")
    return out


DATA_LICENSES = {
    "an4": "Trained on CMU AN4 (CMU BSD-style license: free for any purpose, keep the copyright notice).",
    "speechocean762": "Trained on speechocean762 train (Zhang et al., Interspeech 2021; free for commercial and "
                      "non-commercial use, CC BY 4.0 on OpenSLR 101).",
}
DATASET_IDS = {"an4": "cmu-an4", "speechocean762": "speechocean762"}

# name (zoo.evaluation.asr.TEST_SETS) -> (corpus, split, input sample rate or None, card description)
_CARD_TITLES = {
    "an4": "AN4 test (130 utterances, 10 unseen speakers)",
    "speechocean762": "speechocean762 test (2,500 utterances, 125 unseen Mandarin-L1 speakers, half children)",
    "alphanumeric": "alphanumeric names + numbers (140 recordings, 70 speakers; references are the prompts)",
    "an4-8k": "AN4 test read at 8 kHz (telephone band), upsampled by the model",
}
EVAL_SETS = {k: (v["corpus"], v["split"], v.get("sample_rate"), _CARD_TITLES[k]) for k, v in TEST_SETS.items()}


def eval_command(name: str, set_name: str, beam: int) -> str:
    corpus, split, rate, _ = EVAL_SETS[set_name]
    return (f"zoo evaluate --model {name} --corpus {corpus} --split {split} --beam-size {beam}"
            + (" --narrowband" if rate else ""))


def asr_results(args, model):
    """(report, config.json results, card results Markdown, training recipe Markdown, report file name)."""
    sets = [x.strip() for x in args.sets.split(",") if x.strip()]
    unknown = [x for x in sets if x not in EVAL_SETS]
    if unknown or not sets:
        raise ZooError(f"unknown eval set(s) {unknown or sets} — choose from {', '.join(EVAL_SETS)}")
    if sets == ["an4"]:
        return _asr_results_an4(args, model)
    return _asr_results_sets(args, model, sets)


def beam_note(model, args) -> str:
    """The card's sentence on the decoding settings stored in config.json (empty without them)."""
    modes = {"greedy and streaming": model.decoding_defaults(1), f"beam {args.beam_size}":
             model.decoding_defaults(args.beam_size)}
    if not any(modes.values()):
        return ""
    what = "; ".join(f"{m}: " + (", ".join(f"`{k}` {v:g}" for k, v in d.items()) or "plain")
                     for m, d in modes.items())
    note = f" ({args.settings_note})" if args.settings_note else ""
    return (f"Decoding uses the settings stored in config.json's `decoding` block — {what} — internal-LM "
            f"subtraction and a per-token length bonus, no external LM, chosen on dev{note}.\n\n")


def _asr_results_sets(args, model, sets: list[str]):

    reports, per_set, rows = [], {}, []
    head = None
    for i, key in enumerate(sets):
        corpus, split, rate, desc = EVAL_SETS[key]
        items = load_eval_set(corpus, split, data_dir=args.data_dir, sample_rate=rate)
        res = evaluate_asr(model, items, beam_size=args.beam_size, n_boot=args.n_boot, stream=(i == 0))
        reports.append(format_report(args.name, key, res))
        head = head or res
        g, b = res["greedy"], res[f"beam{args.beam_size}"]
        per_set[key] = {"utterances": res["utterances"], "greedy": {k: g[k] for k in ("wer", "cer")},
                        "beam": {k: b[k] for k in ("wer", "cer")},
                        "ci_utt": {k: g["ci_utt"][k] for k in ("low", "high")}}
        rows.append(f"| {desc} | {pct(g['wer'])} ({pct(g['ci_utt']['low'])}–{pct(g['ci_utt']['high'])}) | "
                    f"{pct(g['ci_spk']['low'])}–{pct(g['ci_spk']['high'])} | {pct(b['wer'])} | {pct(g['cer'])} | "
                    f"`{eval_command(args.name, key, args.beam_size)}` |")
    first = sets[0]
    g = per_set[first]
    results = {
        "dataset_name": EVAL_SETS[first][3], "dataset_type": EVAL_SETS[first][0], "split": "test",
        "headline": f"WER {pct(g['greedy']['wer'])}% ({first} test, greedy)",
        "metrics": [{**m, "dataset_name": EVAL_SETS[key][3], "dataset_type": EVAL_SETS[key][0]}
                    for key in sets for m in (
            {"type": "wer", "name": f"WER {key} (greedy)", "value": round(100 * per_set[key]["greedy"]["wer"], 2)},
            {"type": "wer", "name": f"WER {key} (beam {args.beam_size})",
             "value": round(100 * per_set[key]["beam"]["wer"], 2)})],
        "greedy": g["greedy"], "beam": g["beam"], "sets": per_set,
        "stream_rtf_1thread": head["stream"]["rtf"],
        "algorithmic_latency_ms": head["streaming"]["algorithmic_latency_ms"],
    }
    st = head["stream"]
    results_md = f"""Greedy and beam-{args.beam_size} WER on every evaluation set (none of them used for any choice; the test
speakers are unseen in training), text normaliser `{head['normalizer']}`; 95% CIs from {args.n_boot} bootstrap
resamples of utterances (and of speakers).

| eval set | WER % greedy (95% CI, utterances) | 95% CI (speakers) | WER % beam {args.beam_size} | CER % greedy | command |
|---|---|---|---|---|---|
{chr(10).join(rows)}

| streaming ({first}) | value |
|---|---|
| real-time factor, 1 CPU thread, {st['chunk_ms']:.0f} ms chunks | {st['rtf']:.4f} |
| algorithmic latency (chunk + analysis window look-ahead) | {head['streaming']['algorithmic_latency_ms']:.0f} ms |
| streamed text identical to batch greedy text | {100 * st['equals_batch_greedy']:.0f}% of utterances |
| parameters | {head['num_parameters']:,} |

{beam_note(model, args)}RTF depends on the CPU; it was measured on the 2-core machine that trained the model. Side by side with the
other releases and the pocketsphinx peer: `python benchmarks/asr.py` (README).
"""
    tc = args.train_yaml
    data = tc.get("data") or {}
    corpora = ", ".join(f"{k} x{v}" for k, v in (data.get("corpora") or {"an4": 1}).items())
    augment = str(data.get("augment")).replace("{", "{{").replace("}", "}}")  # recipe_md is .format()ed later
    avg = (f"the average of the {args.average} best checkpoints by dev WER (`--average {args.average}`)"
           if args.average else "the checkpoint given")
    init = ((tc.get("model") or {}).get("init_args") or {}).get("init_from")
    if init and str(init).startswith("exp/") and args.prepare:  # a run folder: name what makes it, not the path
        start = "Started from the folder that the first command below writes, and trained"
    else:
        start = f"Started from `{init}` and trained" if init else "Trained from scratch"
    recipe_md = f"""{start} on a 2-core CPU{{t}} on a weighted mix of corpora (passes per epoch: {corpora}), each
corpus's dev speakers held out (AN4: 8 of 74 train speakers; speechocean762: 16 of 125, both age groups and
genders). Released weights: {avg}.

{{fit_block}}

The exact resolved config is `train_config.yaml` beside the weights. Recipe v2: 80-dim log-mel (fp32), frames
stacked 4x (40 ms), bf16 autocast for the network (`trainer.precision: bf16-mixed`), speed perturbation
0.9/1.1, waveform augmentation `{augment}`, SpecAugment, CTC auxiliary loss on the encoder, AdamW
with linear warm-up and cosine decay, gradient clipping 5.
"""
    return "\n\n".join(reports), results, results_md, recipe_md, "eval_test_sets.txt"


def _asr_results_an4(args, model):
    res = evaluate_asr(model, load_eval_set("an4", "test", data_dir=args.data_dir), beam_size=args.beam_size,
                       n_boot=args.n_boot)
    report = format_report(args.name, "an4 test", res)
    g, b = res["greedy"], res[f"beam{args.beam_size}"]
    results = {
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

Reproduce: `zoo evaluate --model {args.name} --split test --beam-size {args.beam_size}` (CIs: {args.n_boot} bootstrap
resamples of utterances, or of speakers). RTF depends on the CPU; it was measured on the 2-core machine
that trained the model.
"""
    recipe_md = """Trained from scratch on AN4 train minus a speaker-disjoint dev slice (8 speakers) on a 2-core CPU{t}:

{fit_block}

The exact config is `train_config.yaml` beside the weights. Recipe: 80-dim log-mel, frames stacked 4x
(40 ms), SpecAugment (2 freq masks of width <= 15, 2 time masks of <= 5%), speed perturbation 0.9/1.1,
CTC auxiliary loss (weight 0.3) on the encoder, AdamW (lr 2e-3, weight decay 0.01) with linear warm-up
and cosine decay, gradient clipping 5.
"""
    return report, results, results_md, recipe_md, "eval_an4_test.txt"


def _ms(d: dict) -> str:
    return f"{d['mean']:.0f} / {d['median']:.0f} / {d['p90']:.0f}" if d["n"] else "-"


def multitalker_results(args, model, train_cfg: Path):
    """As :func:`asr_results`, for a multi-talker (STS) model on the fixed AN4 two-speaker mixture test set."""

    from zoo.evaluation.multitalker import (
        eval_set_name,
        evaluate_multitalker,
        format_multitalker_report,
        headline,
        load_mix_sessions,
    )

    items = load_mix_sessions(split="test", sessions=args.sessions, data_dir=args.data_dir)
    res = evaluate_multitalker(model, items, n_boot=args.n_boot)
    eval_set = eval_set_name(split="test")
    report = format_multitalker_report(args.name, eval_set, res)
    a, s = res["all"], res["stream"]
    def summary(r: dict) -> dict:
        return {"sessions": r["sessions"], "cpwer": r["cpwer"]["wer"], "orcwer": r["orcwer"]["wer"],
                "turn_counting_accuracy": r["turn_counting_accuracy"], "latency_ms": r["latency_ms"], "ci": r["ci"]}

    results = {
        "dataset_name": "CMU AN4 two-speaker mixtures (zoo data an4-mix)", "dataset_type": "an4",
        "split": "test", "eval_set": eval_set, "sessions": res["sessions"], "n_boot": args.n_boot,
        "headline": headline(res),
        "metrics": [{"type": "wer", "name": "cpWER", "value": round(100 * a["cpwer"]["wer"], 2)},
                    {"type": "wer", "name": "ORC-WER", "value": round(100 * a["orcwer"]["wer"], 2)},
                    {"type": "accuracy", "name": "turn-counting accuracy",
                     "value": round(100 * a["turn_counting_accuracy"], 2)}],
        "all": summary(a), "by_overlap": {k: summary(v) for k, v in res["by_overlap"].items()},
        "target_floor": res["target_floor"],
        "stream_rtf_1thread": s["rtf"], "stream_equals_batch": s["equals_batch"],
        "algorithmic_latency_ms": res["streaming"]["algorithmic_latency_ms"],
    }

    def ci(r, k, digits=2):
        c = r["ci"][k]
        return f"{100 * c['low']:.{digits}f}–{100 * c['high']:.{digits}f}"

    rows = "\n".join(
        f"| {name} | {r['sessions']} | {pct(r['cpwer']['wer'])} ({ci(r, 'cpwer')}) | "
        f"{pct(r['orcwer']['wer'])} ({ci(r, 'orcwer')}) | "
        f"{100 * r['turn_counting_accuracy']:.1f} ({ci(r, 'turn_counting_accuracy', 1)}) | "
        f"{_ms(r['latency_ms']['start'])} | {_ms(r['latency_ms']['end'])} |"
        for name, r in [("all", a)] + [(f"overlap {k}", v) for k, v in res["by_overlap"].items()])
    used = "" if args.sessions is None else f" (this release used `--sessions {args.sessions}`: a smaller set)"
    results_md = f"""The fixed AN4 two-speaker mixture **test** set ({eval_set}): {res['sessions']} sessions of 2-4 alternating
turns by two different AN4 **test** speakers (unseen in training), each session drawing one overlap bin
uniformly (none: a 0.1-1.0 s gap; light 5-20%, medium 20-35%, heavy 35-50% of the shorter turn per
transition). `zoo data an4-mix --out manifests/an4mix` writes exactly these sessions{used}; without a manifest
`zoo evaluate` regenerates them, sample for sample. Text normaliser `{res['normalizer']}`; greedy decoding.
Rows below "all" split the sessions by their reference overlap ratio (overlapped time / speech time).

| sessions | n | cpWER % (95% CI) | ORC-WER % (95% CI) | turn-counting accuracy % (95% CI) | start-of-turn latency ms, mean / median / P90 | end-of-turn latency ms, mean / median / P90 |
|---|---|---|---|---|---|---|
{rows}

cpWER: each reference speaker's turns concatenated vs each output channel's, best speaker-channel
permutation (meeteval). ORC-WER: each reference turn may go to any channel (ignores speaker identity, so
<= cpWER). Channels are not speakers: turns go to the channel that is free (non-overlapped speech of both
speakers shares channel 0), so even a perfect transcript laid out like the training targets scores cpWER
{pct(res['target_floor']['cpwer'])}% on these sessions (ORC-WER {pct(res['target_floor']['orcwer'])}%); ORC-WER is the recognition error,
cpWER adds the speaker-attribution error. Turn-counting accuracy: sessions with exactly as many output turns
as reference turns.
Latency: for hypothesis turns matched one-to-one to reference turns by time overlap, emission time of the
turn's start (end) minus the reference start (end); negative = early. CIs: {args.n_boot} bootstrap resamples
of sessions (none for latency).

| streaming | value |
|---|---|
| real-time factor, 1 CPU thread, {s['chunk_ms']:.0f} ms chunks | {s['rtf']:.4f} |
| algorithmic latency (chunk + analysis window look-ahead) | {res['streaming']['algorithmic_latency_ms']:.0f} ms |
| streamed turns identical to batch turns | {100 * s['equals_batch']:.0f}% of sessions |
| parameters | {res['num_parameters']:,} |

Reproduce every number above: `zoo evaluate --model {args.name} --json {args.name}.json` (or
`--manifest manifests/an4mix/test.jsonl`; CIs: `--n-boot {args.n_boot}`). Against the no-turn-token baseline:
`python benchmarks/multitalker.py`. RTF depends on the CPU; it was measured on the 2-core machine that
trained the model.
"""
    tc = yaml.safe_load(train_cfg.read_text()) or {}
    m = (tc.get("model") or {}).get("init_args") or {}
    mix = (tc.get("data") or {}).get("mix") or {}
    steps = (tc.get("trainer") or {}).get("max_steps")
    val = ((tc.get("data") or {}).get("mix_val_sessions") or 100)
    turns = ("`<sot>` / `<eot>` around every turn of a channel" if m.get("turn_tokens", True) else
             f"the turns' words only (no turn tokens; a turn ends after {m.get('turn_gap_s', 1.0)} s without tokens)")
    w = mix.get("overlap_weights")
    weights = ", ".join(f"{k} {v}" for k, v in w.items()) if isinstance(w, dict) else "uniform"
    start = (f"Warm-started from the single-speaker `{m['asr_init']}` (its LSTM layers split between the mixture and "
             "recognition encoders, separator = identity per channel, featurizer, predictor and joiner copied: "
             "`zoo.models.sts.warm_start_from_transducer`), then trained" if m.get("asr_init") else "Trained from scratch")
    recipe_md = f"""{start}{{t}} on a 2-core CPU{f", {steps} steps" if steps else ""}, on two-speaker sessions mixed on the
fly from AN4 train minus a speaker-disjoint dev slice: every training utterance becomes the first turn of a
session of {mix.get("min_turns", 2)}-{mix.get("max_turns", 4)} alternating turns with another training speaker (overlap-bin weights
{weights}; gaps {mix.get("gap", [0.1, 1.0])} s). Validation: {val} fixed sessions of the dev speakers.

{{fit_block}}

The exact config is `train_config.yaml` beside the weights. Targets per output channel: turns assigned to
the two channels by overlap (a turn takes the free channel), {turns}. Loss: RNN-T per channel + FastEmit
(lambda {m.get("fastemit_lambda")}) + speech-activity BCE (weight {m.get("activity_weight")}) + `<eot>` latency penalty
({m.get("eot_penalty")} per s later than the reference end + {m.get("eot_tolerance")} s; 0 = off); SpecAugment, AdamW with
warm-up and cosine decay, gradient clipping 5.
"""
    return report, results, results_md, recipe_md, "eval_an4mix_test.txt"


if __name__ == "__main__":
    sys.exit(main())
