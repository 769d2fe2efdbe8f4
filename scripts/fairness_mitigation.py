"""Issue 6 mitigation sweep: fine-tune a released ASR model for the bottom cohort of a `zoo audit` with EWC and the
baselines of Trinh et al. 2022, then print a before/after table.

    zoo audit --model lstm-rnnt-an4 --corpus an4 --split test --method metadata --out reports/audit_gender
    zoo fisher --model lstm-rnnt-an4 --corpus an4 --split train          # -> checkpoints/lstm-rnnt-an4/fisher.safetensors
    python scripts/fairness_mitigation.py --audit reports/audit_gender --dry-run     # print the commands
    python scripts/fairness_mitigation.py --audit reports/audit_gender --max_steps 300

The v2 models (AN4 + speechocean762; configs/fairness/ewc_finetune_v2.yaml has the Fisher command):

    # child cohort: train on speechocean762 train children, score on test children/adults and AN4 test
    python scripts/fairness_mitigation.py --config configs/fairness/ewc_finetune.yaml \
        --config configs/fairness/ewc_finetune_v2.yaml --model lstm-rnnt-an4-so762-long \
        --audit reports/fairness_v2/so762_metadata --cohort-set age_group --cohort age_group=child \
        --train-corpus speechocean762 --fisher exp/fairness_v2/fisher.safetensors --extra-eval an4:test \
        --methods ft ewc l2sp oversample --out exp/fairness_v2/child
    # worst lat/lon region of the held-out alphanumeric audit: train on its discovery speakers
    python scripts/fairness_mitigation.py ... --audit reports/fairness_v2/alnum_geo --train-corpus alphanumeric \
        --train-split test --methods ft ewc l2sp --max_steps 100 --out exp/fairness_v2/geo

Target cohort: ``--cohort`` of ``--cohort-set`` in the audit's cohorts.json (default: the audit's ``selection``).
Its *training* speakers are the speakers of the training data (``--train-corpus``/``--train-split``, default AN4
train, or ``--train-manifest``) that the
cohort's rule selects (metadata value / threshold: from the training data's columns and ``--train-metadata``;
k-means centroid: from ``--speaker-model`` embeddings; lat/lon box), or ``--target-speakers a,b,c`` / a file,
never one of the speakers the audit scores (records.jsonl): those are left out, so every number is held out.
Methods (one `zoo fit` of configs/fairness/ewc_finetune.yaml each, from ``--model``):

    ft          plain fine-tuning on the cohort's training data
    ewc         + λ/2 Σ F_i (θ_i − θ*_i)² (F: fisher.safetensors beside the model, mean-normalised)
    l2sp        + λ/2 Σ (θ_i − θ*_i)²
    predictor   plain fine-tuning of the predictor only (the RNN-T's internal LM)
    encoder     plain fine-tuning of the encoder only (the acoustic model)
    oversample  plain fine-tuning on the *full* training set with the cohort's utterances ``--factor`` times

Each run writes <out>/<method>/ (train.log, checkpoints/last.ckpt, model/ exported with `zoo export`, DONE);
finished runs are skipped on the next call (--force retrains). Then every model (and ``--model``, "before") decodes
the audit's utterances (records.jsonl) and the table gives, per model: WER of the targeted cohort, of the other
cohorts pooled and each, overall, and the variance of the cohort WERs (population variance, cohorts of the
audit's cohort set with >= --min-words words) with their mean and max, and each ``--extra-eval CORPUS:SPLIT``
(forgetting, e.g. an4:test), with relative changes against "before". Written to
<out>/results.json and <out>/results.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from zoo.errors import one_line_errors

REPO = Path(__file__).resolve().parent.parent
CONFIG = "configs/fairness/ewc_finetune.yaml"
METHODS = ["ft", "ewc", "l2sp", "predictor", "encoder", "oversample"]


def method_args(method: str, target_manifest: str, speakers_file: str, fisher: str | None, ewc_weight: float,
                l2sp_weight: float, factor: int, full_manifest: str | None = None) -> list[str]:
    """The overrides of the config that make each method (``full_manifest``: the whole training set, for
    oversampling; default the config's corpus)."""
    data = ["--data.train_manifest", target_manifest]
    full = ["--data.train_manifest", full_manifest] if full_manifest else []
    none = ["--model.init_args.regularizer", "null"]
    return {"ft": none + data,
            "ewc": ["--model.init_args.regularizer",
                    f"{{type: ewc, weight: {ewc_weight:g}, fisher: {fisher or 'null'}}}"] + data,
            "l2sp": ["--model.init_args.regularizer", f"{{type: l2sp, weight: {l2sp_weight:g}}}"] + data,
            "predictor": none + ["--model.init_args.trainable", "predictor"] + data,
            "encoder": none + ["--model.init_args.trainable", "encoder"] + data,
            "oversample": none + full + ["--data.oversample", f"{{speakers: {speakers_file}, factor: {factor}}}"]}[method]


def plan(args, target_manifest: str, speakers_file: str) -> list[dict]:
    runs = []
    for m in args.methods:
        d = f"{args.out.rstrip('/')}/{m}"
        configs = [x for c in (args.config or [CONFIG]) for x in ("--config", c)]
        fit = ["zoo", "fit", *configs, "--model.init_args.init_from", args.model,
               *method_args(m, target_manifest, speakers_file, args.fisher, args.ewc_weight, args.l2sp_weight,
                            args.factor, args.train_manifest),
               "--trainer.max_steps", str(args.max_steps), "--trainer.default_root_dir", d,
               "--trainer.logger.init_args.name", f"fairness_{m}", "--trainer.enable_progress_bar", "false",
               "--seed", str(args.seed)]
        export = ["zoo", "export", f"{d}/checkpoints/last.ckpt", f"{d}/model", "--name", f"{Path(args.model).name}-{m}"]
        runs.append({"name": m, "dir": d, "fit": fit, "export": export})
    return runs


# --- target speakers ------------------------------------------------------------------------------------------
def load_audit(audit: Path, cohort_set: str | None, cohort: str | None) -> tuple[dict, str, str]:
    from zoo.errors import ZooError

    f = audit / "cohorts.json"
    if not f.is_file() or not (audit / "records.jsonl").is_file():
        raise ZooError(f"{audit} is not a zoo audit folder (cohorts.json, records.jsonl)")
    c = json.loads(f.read_text())
    sel = c.get("selection") or {}
    cohort_set = cohort_set or sel.get("cohort_set")
    cohort = cohort or (sel.get("cohort") if cohort_set == sel.get("cohort_set") else None)
    if cohort_set not in c["cohort_sets"]:
        raise ZooError(f"cohort set {cohort_set!r} not in {f}; choose one of {sorted(c['cohort_sets'])}")
    if cohort not in c["cohort_sets"][cohort_set]:
        raise ZooError(f"cohort {cohort!r} not in set {cohort_set!r}; choose one of {sorted(c['cohort_sets'][cohort_set])}")
    return c["cohort_sets"][cohort_set], cohort_set, cohort


def training_items(args) -> list[dict]:
    from zoo.fairness.records import attach_metadata, load_items, read_metadata

    items = load_items(args.train_manifest, args.train_corpus, args.train_split, args.data_dir)
    if args.train_metadata:
        items = attach_metadata(items, read_metadata(args.train_metadata), args.train_metadata)
    return items


def target_speakers(args, rule: dict, items: list[dict]) -> list[str] | None:
    """Training speakers of the target cohort (None: needs embeddings, skipped in --dry-run)."""
    from zoo.errors import ZooError
    from zoo.fairness.cohorts import rule_members, speaker_embeddings

    if args.target_speakers:
        p = Path(args.target_speakers)
        return sorted(p.read_text().split() if p.is_file() else [s for s in args.target_speakers.split(",") if s])
    attrs = {}
    for it in items:
        attrs.setdefault(it["speaker"], {k: v for k, v in it.items() if k not in ("audio", "text", "offset", "id")})
    emb = None
    if rule["type"] == "centroid":
        if not args.speaker_model:
            raise ZooError("this cohort comes from speaker-embedding clusters: give --speaker-model (the audit's)")
        if args.dry_run:
            return None
        from zoo.hub import from_pretrained

        emb = speaker_embeddings(from_pretrained(args.speaker_model), items, progress=sys.stderr.isatty())
    spk = rule_members(rule, attrs, emb)
    if not spk:
        raise ZooError(f"the cohort rule {rule.get('type')} selects no training speakers; pass --target-speakers")
    return spk


def write_target(items: list[dict], speakers: list[str], out: Path) -> tuple[Path, Path]:
    from zoo.io import atomic_write_text

    want = set(speakers)
    lines = []
    for it in items:
        if it["speaker"] in want:
            e = {"audio_filepath": str(Path(it["audio"]).resolve()), "duration": it["duration"], "text": it["text"],
                 "speaker": it["speaker"]}
            if it.get("offset") is not None:
                e["offset"] = it["offset"]
            lines.append(json.dumps(e))
    man = atomic_write_text(out / "target_train.jsonl", "\n".join(lines) + "\n")
    spk = atomic_write_text(out / "target_speakers.txt", "\n".join(speakers) + "\n")
    return man, spk


# --- evaluation -----------------------------------------------------------------------------------------------
def evaluate(model_ref: str, audit: Path, cohorts: dict, target: str, min_words: int, n_boot: int) -> dict:
    from zoo.fairness.metrics import cohort_stats, gap_summary, overall
    from zoo.fairness.records import error_records, read_records
    from zoo.hub import from_pretrained

    old = read_records(audit / "records.jsonl")
    items = [{"id": r["id"], "audio": r["audio"], "text": r["ref"], "speaker": r["speaker"]} for r in old]
    recs = error_records(from_pretrained(model_ref), items, progress=sys.stderr.isatty())
    spk_label = {s: c for c, v in cohorts.items() for s in v["speakers"]}
    labels = [spk_label.get(r["speaker"], "(unassigned)") for r in recs]
    rows = cohort_stats(recs, labels, n_boot=n_boot)
    summ = gap_summary(rows, min_words)
    tgt = [r for r, lab in zip(recs, labels) if lab == target]
    rest = [r for r, lab in zip(recs, labels) if lab != target]
    return {"target": overall(tgt, n_boot)["wer"], "others": overall(rest, n_boot)["wer"] if rest else None,
            "overall": overall(recs, n_boot)["wer"], "variance": summ.get("variance"),
            "mean": summ.get("mean"), "max": summ.get("max"),
            "cohorts": {r["cohort"]: r["wer"] for r in rows}}


def extra_wer(model_ref: str, sets: list[str], data_dir: str | None, n_boot: int) -> dict:
    """{"corpus:split": overall WER} of a model on each extra evaluation set (forgetting)."""
    from zoo.errors import ZooError
    from zoo.fairness.metrics import overall
    from zoo.fairness.records import error_records, load_items
    from zoo.hub import from_pretrained

    model, out = from_pretrained(model_ref), {}
    for spec in sets:
        corpus, _, split = spec.partition(":")
        if not corpus or not split:
            raise ZooError(f"--extra-eval {spec!r}: give CORPUS:SPLIT, e.g. an4:test")
        recs = error_records(model, load_items(None, corpus, split, data_dir), progress=sys.stderr.isatty())
        out[spec] = overall(recs, n_boot)["wer"]
    return out


def table(results: dict, target: str) -> str:
    base = results.get("before")

    def rel(k, v, ref=None):
        ref = base if ref is None else ref
        if ref is None or v is None or not ref.get(k):
            return ""
        return f" ({100 * (v - ref[k]) / ref[k]:+.1f}%)"

    def rel_extra(k, v):
        return rel(k, v, (base or {}).get("extra", {}))
    cohorts = sorted({c for r in results.values() for c in r["cohorts"]})
    extra = sorted({k for r in results.values() for k in r.get("extra", {})})
    lines = [f"targeted cohort: {target}; WER %, relative change vs before in ()",
             "| model | target | others | overall | cohort mean | cohort max | variance (%²) | "
             + " | ".join(cohorts + extra) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(cohorts + extra)]
    for name, r in results.items():
        var = "n/a" if r["variance"] is None else f"{1e4 * r['variance']:.2f}{rel('variance', r['variance'])}"
        oth = "n/a" if r["others"] is None else f"{100 * r['others']:.2f}{rel('others', r['others'])}"
        spread = " | ".join("n/a" if r.get(k) is None else f"{100 * r[k]:.2f}{rel(k, r[k])}" for k in ("mean", "max"))
        lines.append(f"| {name} | {100 * r['target']:.2f}{rel('target', r['target'])} | {oth} | "
                     f"{100 * r['overall']:.2f}{rel('overall', r['overall'])} | {spread} | {var} | "
                     + " | ".join([f"{100 * r['cohorts'].get(c, float('nan')):.2f}" for c in cohorts]
                                  + [f"{100 * r['extra'][k]:.2f}{rel_extra(k, r['extra'][k])}" if k in r.get("extra", {})
                                     else "n/a" for k in extra]) + " |")
    return "\n".join(lines)


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--audit", required=True, help="a zoo audit folder (cohorts.json + records.jsonl)")
    ap.add_argument("--cohort-set", default=None)
    ap.add_argument("--cohort", default=None)
    ap.add_argument("--target-speakers", default=None, help="training speakers: comma list or a file (overrides the rule)")
    ap.add_argument("--model", default="lstm-rnnt-an4")
    ap.add_argument("--config", action="append", default=None,
                    help=f"fit config (repeat to compose overlays; default {CONFIG})")
    ap.add_argument("--train-manifest", default=None, help="training data (default: --train-corpus)")
    ap.add_argument("--train-corpus", default="an4", help="corpus recipe the cohort's training speakers come from")
    ap.add_argument("--train-split", default="train", help="its split (speechocean762 train excludes the dev speakers)")
    ap.add_argument("--extra-eval", action="append", default=[], metavar="CORPUS:SPLIT",
                    help="also report every model's overall WER here (forgetting), e.g. an4:test; repeatable")
    ap.add_argument("--train-metadata", default=None, help="per-speaker CSV for the training speakers")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--speaker-model", default=None, help="for embedding cohorts: the audit's speaker model")
    ap.add_argument("--methods", nargs="*", default=METHODS, choices=METHODS)
    ap.add_argument("--max_steps", "--max-steps", type=int, default=300)
    ap.add_argument("--ewc-weight", type=float, default=10.0)
    ap.add_argument("--l2sp-weight", type=float, default=10.0)
    ap.add_argument("--fisher", default=None, help="default: fisher.safetensors beside --model")
    ap.add_argument("--factor", type=int, default=4, help="oversampling factor of the cohort's utterances")
    ap.add_argument("--min-words", type=int, default=50)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="exp/fairness/mitigation")
    ap.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    ap.add_argument("--force", action="store_true", help="retrain runs that have a DONE marker")
    args = ap.parse_args(argv)
    from zoo.errors import ZooError

    audit = Path(args.audit)
    cohorts, cset, target = load_audit(audit, args.cohort_set, args.cohort)
    items = training_items(args)
    speakers = target_speakers(args, cohorts[target]["rule"], items)
    if speakers is not None:  # held out: never fine-tune on a speaker the table scores
        scored = {json.loads(x)["speaker"] for x in (audit / "records.jsonl").read_text().splitlines() if x.strip()}
        dropped = sorted(set(speakers) & scored)
        speakers = [s for s in speakers if s not in scored]
        if dropped:
            print(f"# {len(dropped)} of the cohort's training speakers are scored by the audit: left out")
        if not speakers:
            raise ZooError("every training speaker of the cohort is a scoring speaker of the audit — train on "
                           "other speakers (--train-corpus / --train-manifest / --target-speakers)")
    out = Path(args.out)
    if speakers is None:
        man, spk = out / "target_train.jsonl", out / "target_speakers.txt"
        print(f"# target cohort {target} of {cset}: training speakers chosen by embeddings at run time")
    else:
        print(f"# target cohort {target} of {cset}: {len(speakers)} training speakers: {' '.join(speakers)}")
        if args.dry_run:
            man, spk = out / "target_train.jsonl", out / "target_speakers.txt"
        else:
            man, spk = write_target(items, speakers, out)
    runs = plan(args, str(man), str(spk))
    if args.dry_run:
        for r in runs:
            print(f"OMP_NUM_THREADS=1 {shlex.join(r['fit'])} > {shlex.quote(r['dir'] + '/train.log')} 2>&1")
            print(shlex.join(r["export"]))
        print(f"# then each model decodes {audit}/records.jsonl in-process -> {out}/results.md")
        return 0
    here = Path(sys.executable).with_name("zoo")  # the zoo of the Python running this script, else PATH's
    zoo_exe = str(here) if here.is_file() else (shutil.which("zoo") or "zoo")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for r in runs:
        d = Path(r["dir"])
        if (d / "DONE").is_file() and not args.force:
            print(f"[skip] {r['name']}: {d}/DONE exists", flush=True)
            continue
        d.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        with open(d / "train.log", "w") as log:
            rc = subprocess.call([zoo_exe, *r["fit"][1:]], stdout=log, stderr=subprocess.STDOUT, env=env)
            if rc == 0:
                shutil.rmtree(d / "model", ignore_errors=True)
                rc = subprocess.call([zoo_exe, *r["export"][1:]], stdout=log, stderr=subprocess.STDOUT, env=env)
        print(f"[{'done' if rc == 0 else 'FAIL'}] {r['name']}: {(time.time() - t0) / 60:.1f} min, log {d}/train.log",
              flush=True)
        if rc != 0:
            return 1
        (d / "DONE").write_text(shlex.join(r["fit"]) + "\n")
    results = {}
    for name, ref in [("before", args.model)] + [(r["name"], f"{r['dir']}/model") for r in runs]:
        results[name] = evaluate(ref, audit, cohorts, target, args.min_words, args.n_boot)
        if args.extra_eval:
            results[name]["extra"] = extra_wer(ref, args.extra_eval, args.data_dir, args.n_boot)
    text = table(results, target)
    print(text)
    from zoo.io import atomic_write_text

    atomic_write_text(out / "results.json", json.dumps({"cohort_set": cset, "target": target, "speakers": speakers,
                                                        "max_steps": args.max_steps, "results": results}, indent=2))
    atomic_write_text(out / "results.md", text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
