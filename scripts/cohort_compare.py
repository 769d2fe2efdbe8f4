"""Which cohort to mitigate, and did it help: the evaluation of "cohort membership as an extra model input" (Dheram
et al., Interspeech 2022, second mitigation) against its baseline, oversampling the worst cohort, with the cohorts of
``scripts/cohort_input.py`` (k-means clusters of the training speakers' embeddings).

    # 1. choose, on DEV speakers: the worst cohort of the model (the one the oversampling baseline oversamples)
    python scripts/cohort_compare.py choose --cohorts exp/fairness/cohort_input/cohorts.json \\
        --model lstm-rnnt-an4-so762-long --sets an4:dev speechocean762:dev \\
        --records speechocean762:dev=reports/fairness_v2/so762_metadata/discovery_records.jsonl
    # -> exp/fairness/cohort_input/choice.json (+ choice_records.jsonl, the dev records); prints the cohort's
    #    training-speaker list for --data.oversample '{speakers: .../cohort_<i>_speakers.txt, factor: 4}'
    # 2. compare, once, on TEST speakers: every model (name=model name, folder or Hub id; any number, the first is
    #    the reference of the relative changes)
    python scripts/cohort_compare.py compare --cohorts exp/fairness/cohort_input/cohorts.json \\
        before=lstm-rnnt-an4-so762-long cohort_input=exp/fairness/cohort_input/model \\
        oversample=exp/fairness/cohort_oversample/model --out exp/fairness/cohort_compare
    # -> <out>/results.json, results.md (the table), records_<name>.jsonl (every model's test records)

Sets (``--sets``) are ``CORPUS:SPLIT`` (``zoo.fairness.records.load_items``, e.g. an4:dev) or NeMo JSONL manifests
with a speaker per line. A set's speakers are put into cohorts the way the training speakers were: a speaker's
embedding is the re-normalised mean of its first ``max_per_speaker`` (in id order; the cohort file's value)
L2-normalised utterance embeddings by the cohort file's speaker model (``zoo.fairness.cohorts.speaker_embeddings``),
and its cohort the nearest centroid under the file's metric (``zoo.fairness.cohorts.nearest_centroids``). The
embeddings are computed once per run and shared by every model; a cohort-input model still finds each utterance's
cohort itself (its own mechanism: the first ``assign_ms`` of audio), so the table's cohorts are speaker-level.

``choose``: per-cohort WER of ``--model`` on the dev sets with speaker-bootstrap 95% CIs (``zoo.fairness.metrics``),
the worst (bottom) and best (top) cohorts among the eligible ones (``--min-words`` reference words and
``--min-speakers`` speakers, ``zoo.fairness.metrics.eligible``), written to ``choice.json`` next to the cohort file.
``--records SET=PATH`` takes the records of an earlier decode of that set by the same model instead of decoding it.

``compare``: every model decodes every test set once; per model the WER of the target cohort (the dev choice's
bottom), of each other cohort, of the others pooled, overall (and per set), the cohort mean / max / population
variance over the cohorts eligible on the test sets, and the WER gap (Dheram: (WER_bottom - WER_top) / WER_top)
with bottom and top fixed by the dev choice (measured, not re-chosen, on test). Relative changes are against the
first model; the gap's change is in percentage points. The test speakers must not overlap the dev speakers of the
choice nor the training speakers of the cohorts (every number is held out).

Bad input (a missing cohort file, a model that is not ASR, a bad set, an existing output without ``--force``, ...)
is one line ``error: <what> — <what to do>``, exit status 2, and nothing is written.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from zoo.errors import ZooError, find_zoo_error
from zoo.fairness import records as R
from zoo.fairness.cohorts import nearest_centroids, speaker_embeddings
from zoo.fairness.metrics import cohort_stats, eligible, gap_summary, overall
from zoo.io import atomic_folder, atomic_write_text

DEFAULT_COHORTS = "exp/fairness/cohort_input/cohorts.json"
DEFAULT_MODEL = "lstm-rnnt-an4-so762-long"
DEV_SETS = ["an4:dev", "speechocean762:dev"]
TEST_SETS = ["an4:test", "speechocean762:test"]
MIN_WORDS, MIN_SPEAKERS = 50, 3  # zoo audit's defaults
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# --- inputs ---------------------------------------------------------------------------------------------------
def read_cohorts(path: str | Path) -> dict:
    """The cohort file of ``scripts/cohort_input.py``, checked: ``path``, ``speaker_model``, ``centroids`` (K x D),
    ``metric``, ``speakers`` ({training speaker: cohort}), ``max_per_speaker``, ``k``, ``sha256`` (of the file)."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"cohort file not found: {path} — make it with scripts/cohort_input.py or pass --cohorts")
    raw = path.read_bytes()
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ZooError(f"{path} is not valid JSON ({getattr(e, 'msg', e)}) — give the file scripts/cohort_input.py "
                       "writes") from None
    if not isinstance(doc, dict):
        raise ZooError(f"{path} holds no cohort object — give the file scripts/cohort_input.py writes")
    cents = doc.get("centroids")
    try:
        C = np.asarray(cents, dtype=np.float64)
    except (TypeError, ValueError):
        C = np.zeros((0,))
    if C.ndim != 2 or not len(C) or not np.isfinite(C).all():
        raise ZooError(f"{path} has no K x D list of centroids — give the file scripts/cohort_input.py writes")
    if not doc.get("speaker_model"):
        raise ZooError(f"{path} names no speaker_model — give the file scripts/cohort_input.py writes")
    metric = doc.get("metric", "euclidean")
    if metric not in ("euclidean", "cosine"):
        raise ZooError(f"{path}: unknown metric {metric!r} — use euclidean or cosine")
    spk = doc.get("speakers")
    if not isinstance(spk, dict) or not spk or any(isinstance(c, bool) or not isinstance(c, int)
                                                   or not 0 <= c < len(C) for c in spk.values()):
        raise ZooError(f"{path} has no speaker -> cohort map with ids in 0..{len(C) - 1} — give the file "
                       "scripts/cohort_input.py writes")
    mps = (doc.get("data") or {}).get("max_per_speaker") or 20
    return {"path": str(path), "speaker_model": str(doc["speaker_model"]), "centroids": C, "metric": metric,
            "speakers": {str(s): int(c) for s, c in spk.items()}, "max_per_speaker": int(mps), "k": len(C),
            "sha256": hashlib.sha256(raw).hexdigest()}


def speakers_file(cohorts: dict, cohort: int) -> Path:
    """The training-speaker list of a cohort (``cohort_<i>_speakers.txt`` beside the cohort file)."""
    return Path(cohorts["path"]).parent / f"cohort_{cohort}_speakers.txt"


def parse_set(spec: str) -> dict:
    """``CORPUS:SPLIT`` or a JSONL manifest -> ``load_items`` arguments."""
    if spec.endswith(".jsonl") or Path(spec).is_file():
        return {"manifest": spec, "corpus": None, "split": "test"}
    corpus, sep, split = spec.partition(":")
    if not sep or not corpus or not split or ":" in split:
        raise ZooError(f"set {spec!r} is neither CORPUS:SPLIT nor a manifest — give e.g. an4:dev or a .jsonl file")
    return {"manifest": None, "corpus": corpus, "split": split}


def load_sets(specs: list[str], data_dir: str | None) -> dict[str, list[dict]]:
    """{set: items}; every item a whole audio file with a speaker (speaker embeddings embed whole files)."""
    if len(set(specs)) != len(specs):
        raise ZooError(f"a set is given twice in {' '.join(specs)} — give each once")
    out = {}
    for spec in specs:
        items = R.load_items(data_dir=data_dir, **parse_set(spec))
        for it in items:
            if it.get("offset"):
                raise ZooError(f"{spec}: utterance {it['id']} is part of an audio file (offset) — speaker embeddings "
                               "here embed whole files; cut the audio into files first")
            if it.get("speaker") in (None, ""):
                raise ZooError(f"{spec}: utterance {it['id']} has no speaker — cohorts are sets of speakers")
        out[spec] = items
    return out


def check_held_out(sets: dict[str, list[dict]], cohorts: dict) -> None:
    """No speaker of ``sets`` is a training speaker of the cohorts."""
    seen = sorted({it["speaker"] for items in sets.values() for it in items} & set(cohorts["speakers"]))
    if seen:
        raise ZooError(f"{len(seen)} speaker(s) of the sets are training speakers of {cohorts['path']} (e.g. "
                       f"{', '.join(seen[:3])}) — choose and compare on held-out speakers (dev / test splits)")


def given_records(args_records: list[str] | None, sets: dict[str, list[dict]]) -> dict[str, tuple[str, list[dict]]]:
    """``--records SET=PATH`` -> {set: (path, records)}, checked against the set's utterances."""
    out: dict[str, tuple[str, list[dict]]] = {}
    for arg in args_records or []:
        spec, sep, path = arg.partition("=")
        if not sep or spec not in sets:
            raise ZooError(f"--records {arg!r} names no set of --sets — give SET=PATH, SET one of: "
                           f"{', '.join(sets)}")
        if spec in out:
            raise ZooError(f"--records: {spec} is given twice — give one records file per set")
        if not Path(path).is_file():
            raise ZooError(f"records file not found: {path} — give the records.jsonl of an earlier decode, or drop "
                           "--records to decode the set")
        recs = R.read_records(path)
        bad = next((n for n, r in enumerate(recs, 1) if not isinstance(r, dict)
                    or any(k not in r for k in ("id", "speaker", "errors", "words"))), None)
        if bad is not None:
            raise ZooError(f"{path}:{bad}: not an error record (id, speaker, errors, words) — give the records "
                           "zoo audit writes")
        want = {str(it["id"]): it["speaker"] for it in sets[spec]}
        got = {str(r["id"]): str(r["speaker"]) for r in recs}
        if set(got) != set(want) or len(recs) != len(want):
            raise ZooError(f"{path} holds {len(recs)} records, {spec} {len(want)} utterances ({len(set(want) - set(got))} "
                           f"missing, {len(set(got) - set(want))} others) — give the records of that set, or drop "
                           "--records to decode it")
        differ = [i for i in want if got[i] != want[i]]
        if differ:
            raise ZooError(f"{path}: utterance {differ[0]} has speaker {got[differ[0]]!r}, {spec} says "
                           f"{want[differ[0]]!r} — give the records of that set")
        out[spec] = (path, [{**r, "speaker": str(r["speaker"])} for r in recs])
    return out


def load_asr(ref: str, label: str):
    from zoo.hub import from_pretrained

    model = from_pretrained(ref)
    if getattr(model, "task", None) != "asr" or not hasattr(model, "transcribe"):
        raise ZooError(f"{label} {ref} is not a single-speaker ASR model (task {getattr(model, 'task', '?')!r}) — "
                       f"give an ASR model name or folder, e.g. {DEFAULT_MODEL}")
    return model


def check_cohort_model(model, ref: str, cohorts: dict) -> None:
    """A model with a cohort input must use the centroids of the cohort file (else its cohorts are other ones)."""
    cohort = getattr(model, "cohort", None)
    if cohort is None:
        return
    c = cohort.centroids.detach().cpu().numpy()
    if c.shape != cohorts["centroids"].shape or not np.allclose(c, cohorts["centroids"], atol=1e-5):
        raise ZooError(f"{ref} has a cohort input with other centroids than {cohorts['path']} — compare with the "
                       "cohort file the model was fine-tuned with")


def assign_speakers(sets: dict[str, list[dict]], cohorts: dict) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """{speaker: cohort} of every speaker of ``sets`` (speaker-level, the training speakers' recipe) and the
    embeddings."""
    from zoo.hub import from_pretrained

    spk_model = from_pretrained(cohorts["speaker_model"])
    if getattr(spk_model, "task", None) != "speaker":
        raise ZooError(f"{cohorts['path']}: speaker_model {cohorts['speaker_model']} is not a speaker-embedding model "
                       f"(task {getattr(spk_model, 'task', '?')!r}) — give the file scripts/cohort_input.py writes")
    items = [it for its in sets.values() for it in its]
    emb = speaker_embeddings(spk_model, items, max_per_speaker=cohorts["max_per_speaker"],
                             progress=sys.stderr.isatty())
    return nearest_centroids(emb, cohorts["centroids"], cohorts["metric"]), emb


def decode(model, items: list[dict], batch_size: int, beam_size: int) -> list[dict]:
    return R.error_records(model, items, batch_size=batch_size, beam_size=beam_size, progress=sys.stderr.isatty())


def labels(records: list[dict], assign: dict[str, int]) -> list[str]:
    return [str(assign[r["speaker"]]) for r in records]


def pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.2f}"


# --- choose ---------------------------------------------------------------------------------------------------
def choose(args) -> int:
    cohorts = read_cohorts(args.cohorts)
    out = Path(args.out) if args.out else Path(cohorts["path"]).parent / "choice.json"
    rec_out = out.with_name(f"{out.stem}_records.jsonl")
    for f in (out, rec_out):
        if f.exists() and not args.force:
            raise ZooError(f"{f} exists — pass --force to replace it, or choose another --out")
    if out.is_dir() or rec_out.is_dir():
        raise ZooError(f"{out if out.is_dir() else rec_out} is a folder — give --out a JSON file path")
    missing = [str(speakers_file(cohorts, i)) for i in range(cohorts["k"]) if not speakers_file(cohorts, i).is_file()]
    if missing:
        raise ZooError(f"{missing[0]} not found — rerun scripts/cohort_input.py (it writes the training-speaker "
                       "list of every cohort next to the cohort file)")
    sets = load_sets(args.sets, args.data_dir)
    check_held_out(sets, cohorts)
    given = given_records(args.records, sets)
    model = load_asr(args.model, "--model") if set(sets) - set(given) else None
    assign, _ = assign_speakers(sets, cohorts)
    recs: list[dict] = []
    for spec, items in sets.items():
        got = given[spec][1] if spec in given else decode(model, items, args.batch_size, args.beam_size)
        recs += [{**r, "set": spec} for r in got]
    labs = labels(recs, assign)
    rows = cohort_stats(recs, labs, n_boot=args.n_boot, seed=args.seed)
    summ = gap_summary(rows, args.min_words, args.min_speakers)
    if summ["eligible"] < 2:
        raise ZooError(f"{summ['eligible']} cohort(s) have >= {args.min_words} words and >= {args.min_speakers} "
                       "speakers on the dev sets, a choice needs 2 — lower --min-words / --min-speakers or add dev "
                       "sets")
    target, top = int(summ["bottom"]), int(summ["top"])
    tot = overall(recs, n_boot=args.n_boot, seed=args.seed)
    train_n = {i: sum(c == i for c in cohorts["speakers"].values()) for i in range(cohorts["k"])}
    by = {r["cohort"]: r for r in rows}
    lines = ["dev sets: " + ", ".join(f"{s} ({len(it)} utterances, {len({i['speaker'] for i in it})} speakers"
                                        + (f"; records {given[s][0]}" if s in given else "") + ")"
                                        for s, it in sets.items()),
             f"model {args.model}; speakers -> nearest centroid ({cohorts['metric']}) of {cohorts['path']} "
             f"(speaker model {cohorts['speaker_model']}); eligible: >= {args.min_words} words and >= "
             f"{args.min_speakers} speakers",
             "",
             "| cohort | dev speakers | utterances | words | WER % | 95% CI | eligible | training speakers |",
             "|---|---|---|---|---|---|---|---|"]
    for i in range(cohorts["k"]):
        r = by.get(str(i))
        if r is None:
            lines.append(f"| {i} | 0 | 0 | 0 | n/a | | no | {train_n[i]} |")
            continue
        lines.append(f"| {i} | {r['speakers']} | {r['utterances']} | {r['words']} | {pct(r['wer'])} | "
                     f"{pct(r['low'])}–{pct(r['high'])} | {'yes' if eligible(r, args.min_words, args.min_speakers) else 'no'} "
                     f"| {train_n[i]} |")
    lines.append(f"| all | {tot['speakers']} | {tot['utterances']} | {tot['words']} | {pct(tot['wer'])} | "
                 f"{pct(tot['low'])}–{pct(tot['high'])} | | {len(cohorts['speakers'])} |")
    gap = "n/a" if summ["gap"] is None else f"{100 * summ['gap']:.1f}%"
    tfile = speakers_file(cohorts, target)
    lines += ["", f"worst eligible cohort (target): {target} ({pct(summ['wer_bottom'])}% WER); best: {top} "
                  f"({pct(summ['wer_top'])}%); WER gap {gap}",
              f"training speakers of cohort {target}: {tfile} ({train_n[target]} speakers)",
              f"oversampling baseline: --data.oversample '{{speakers: {tfile}, factor: 4}}'"]
    doc = {"cohorts": cohorts["path"], "cohorts_sha256": cohorts["sha256"], "speaker_model": cohorts["speaker_model"],
           "metric": cohorts["metric"], "max_per_speaker": cohorts["max_per_speaker"], "model": args.model,
           "beam_size": args.beam_size, "sets": list(sets), "records": {s: p for s, (p, _) in given.items()},
           "dev_records": str(rec_out), "min_words": args.min_words, "min_speakers": args.min_speakers,
           "n_boot": args.n_boot, "seed": args.seed, "target": target, "top": top,
           "target_speakers_file": str(tfile), "target_training_speakers": train_n[target],
           "dev_speakers": dict(sorted(assign.items())), "overall": tot, "rows": rows, "summary": summ}
    atomic_write_text(rec_out, "".join(json.dumps(r) + "\n" for r in recs))
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    print("\n".join(lines))
    print(f"wrote {out} (+ {rec_out.name})")
    return 0


# --- compare --------------------------------------------------------------------------------------------------
def parse_models(specs: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for s in specs:
        name, sep, ref = s.partition("=")
        if not sep or not ref or not NAME.match(name):
            raise ZooError(f"model {s!r} has no name — give NAME=MODEL (NAME: letters, digits, _ . -; MODEL: a name, "
                           f"folder or Hub id), e.g. before={DEFAULT_MODEL}")
        if name in dict(out):
            raise ZooError(f"model name {name!r} is given twice — give each model its own name")
        out.append((name, ref))
    return out


def model_result(recs: list[dict], assign: dict[str, int], target: int, top: int, k: int, min_words: int,
                 min_speakers: int, n_boot: int, seed: int) -> dict:
    """One model's numbers on the pooled test records: overall and per set, every cohort (speaker-bootstrap CIs),
    the target cohort, the others pooled, the spread (mean / max / variance) of the cohorts eligible here, and
    ``gap_summary`` with (bottom, top) fixed by the dev choice (no gap when either is not eligible here)."""
    labs = labels(recs, assign)
    rows = cohort_stats(recs, labs, n_boot=n_boot, seed=seed)
    for r in rows:
        r["eligible"] = eligible(r, min_words, min_speakers)
    rest = [r for r, c in zip(recs, labs) if c != str(target)]
    sets = list(dict.fromkeys(r["set"] for r in recs))
    by = {r["cohort"]: r for r in rows}
    free = gap_summary(rows, min_words, min_speakers)  # the spread: every cohort eligible here
    return {"overall": overall(recs, n_boot=n_boot, seed=seed),
            "sets": {s: overall([r for r in recs if r["set"] == s], n_boot=n_boot, seed=seed) for s in sets},
            "cohorts": {str(i): by.get(str(i)) for i in range(k)},
            "target": by.get(str(target)),
            "others": overall(rest, n_boot=n_boot, seed=seed) if rest else None,
            "spread": {k: free.get(k) for k in ("eligible", "mean", "max", "variance", "std")},
            "summary": gap_summary(rows, min_words, min_speakers, fixed=(str(target), str(top)))}


def rel(v, ref) -> str:
    """`` (+x.x%)``: relative change of ``v`` against ``ref`` ("" when either is missing or ``ref`` is 0)."""
    if v is None or ref is None or not ref or np.isnan(v) or np.isnan(ref):
        return ""
    return f" ({100 * (v - ref) / ref:+.1f}%)"


def compare_table(results: dict, target: int, top: int, k: int, sets: list[str]) -> str:
    """The markdown table (WER %; relative change against the first model in (); the gap's change in points)."""
    names = list(results)
    others = [str(i) for i in range(k) if i != target]

    def w(row):
        return None if row is None else row["wer"]

    def cell(v, ref, ci=None):
        s = pct(v)
        if v is None:
            return s
        if ci is not None and ci[0] is not None:
            s += f" [{pct(ci[0])}–{pct(ci[1])}]"
        return s + rel(v, ref)

    def summ(r, key):
        return None if r is None else (r["summary"] if key == "gap" else r["spread"]).get(key)

    head = ([f"target: cohort {target}"] + [f"cohort {c}" for c in others] + ["others", "overall"]
            + (sets if len(sets) > 1 else []) + ["cohort mean", "cohort max", "variance (%²)",
                                                 f"WER gap ({target} vs {top})"])
    lines = [f"target cohort {target} (worst on dev), top cohort {top} (best on dev); WER % [95% CI, speaker "
             f"bootstrap], relative change vs {names[0]} in (); the gap's change in points; * = not eligible on "
             "these sets (not in mean / max / variance)",
             "", "| model | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for name, r in results.items():
        b = None if name == names[0] else results[names[0]]  # the reference row has no changes
        t = r["target"]
        cells = [cell(w(t), b and w(b["target"]), None if t is None else (t["low"], t["high"]))
                 + ("" if t is None or t["eligible"] else " *")]
        for c in others:
            row = r["cohorts"][c]
            cells.append(cell(w(row), b and w(b["cohorts"][c])) + ("" if row is None or row["eligible"] else " *"))
        cells.append(cell(w(r["others"]), b and w(b["others"])))
        o = r["overall"]
        cells.append(cell(o["wer"], b and b["overall"]["wer"], (o["low"], o["high"])))
        if len(sets) > 1:
            cells += [cell(r["sets"][s]["wer"], b and b["sets"][s]["wer"]) for s in sets]
        cells += [cell(summ(r, "mean"), summ(b, "mean")), cell(summ(r, "max"), summ(b, "max"))]
        v, bv = summ(r, "variance"), summ(b, "variance")
        cells.append("n/a" if v is None else f"{1e4 * v:.2f}{rel(v, bv)}")
        g, bg = summ(r, "gap"), summ(b, "gap")
        cells.append("n/a" if g is None else f"{100 * g:.1f}%" + ("" if bg is None else f" ({100 * (g - bg):+.1f} pts)"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_choice(args, cohorts: dict) -> dict:
    """(target, top, min_words, min_speakers, the choice document or None) from choice.json and the options."""
    path = Path(args.choice) if args.choice else Path(cohorts["path"]).parent / "choice.json"
    doc = None
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ZooError(f"{path} is not valid JSON ({e.msg}) — rerun choose") from None
        if not isinstance(doc, dict) or not {"target", "top", "cohorts_sha256"} <= set(doc):
            raise ZooError(f"{path} is not a choice of `cohort_compare.py choose` — rerun choose")
        if doc["cohorts_sha256"] != cohorts["sha256"]:
            raise ZooError(f"{path} was chosen with another cohort file than {cohorts['path']} — rerun choose with "
                           "this cohort file")
    elif args.choice or args.target is None or args.top is None:
        raise ZooError(f"dev choice not found: {path} — run `scripts/cohort_compare.py choose` first (or pass "
                       "--target and --top, the worst and best dev cohorts)")
    chosen = doc or {}  # no choice file: --target and --top are both given
    target = args.target if args.target is not None else int(chosen["target"])
    top = args.top if args.top is not None else int(chosen["top"])
    for what, c in (("--target", target), ("--top", top)):
        if not 0 <= c < cohorts["k"]:
            raise ZooError(f"{what} {c}: cohorts are 0..{cohorts['k'] - 1} — give one of them")
    if target == top:
        raise ZooError(f"--target and --top are both cohort {target} — the gap needs two cohorts")
    mw = args.min_words if args.min_words is not None else (doc or {}).get("min_words", MIN_WORDS)
    ms = args.min_speakers if args.min_speakers is not None else (doc or {}).get("min_speakers", MIN_SPEAKERS)
    return {"path": str(path) if doc else None, "doc": doc, "target": target, "top": top, "min_words": mw,
            "min_speakers": ms}


def compare(args) -> int:
    cohorts = read_cohorts(args.cohorts)
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "results.json").is_file())):
        raise ZooError(f"--out {out} exists and is not an earlier comparison — choose a new or empty folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise ZooError(f"--out {out} holds an earlier comparison — pass --force to replace it, or choose a new folder")
    models = parse_models(args.models)
    ch = load_choice(args, cohorts)
    target, top = ch["target"], ch["top"]
    sets = load_sets(args.sets, args.data_dir)
    check_held_out(sets, cohorts)
    if ch["doc"]:
        reused = sorted(set(sets) & set(ch["doc"].get("sets", [])))
        if reused:
            raise ZooError(f"{reused[0]} chose the target ({ch['path']}) and cannot also score it — compare on "
                           "held-out sets (test), choose on dev")
        shared = sorted({it["speaker"] for its in sets.values() for it in its} & set(ch["doc"].get("dev_speakers", {})))
        if shared:
            raise ZooError(f"{len(shared)} speaker(s) of the sets chose the target on dev (e.g. {shared[0]}) — "
                           "compare on speakers the choice never saw")
    loaded = []
    for name, ref in models:
        m = load_asr(ref, name)
        check_cohort_model(m, ref, cohorts)
        loaded.append((name, ref, m))
    assign, _ = assign_speakers(sets, cohorts)
    results, recs_of = {}, {}
    for name, ref, m in loaded:
        recs = []
        for spec, items in sets.items():
            recs += [{**r, "set": spec} for r in decode(m, items, args.batch_size, args.beam_size)]
        recs_of[name] = recs
        results[name] = {"model": ref, **model_result(recs, assign, target, top, cohorts["k"], ch["min_words"],
                                                      ch["min_speakers"], args.n_boot, args.seed)}
    text = compare_table(results, target, top, cohorts["k"], list(sets))
    doc = {"cohorts": cohorts["path"], "cohorts_sha256": cohorts["sha256"], "speaker_model": cohorts["speaker_model"],
           "metric": cohorts["metric"], "choice": ch["path"], "target": target, "top": top,
           "target_speakers_file": str(speakers_file(cohorts, target)), "sets": list(sets),
           "min_words": ch["min_words"], "min_speakers": ch["min_speakers"], "n_boot": args.n_boot,
           "seed": args.seed, "beam_size": args.beam_size, "speakers": dict(sorted(assign.items())),
           "reference": models[0][0], "results": results}
    try:
        with atomic_folder(out, marker="results.json") as tmp:
            for name, recs in recs_of.items():
                atomic_write_text(tmp / f"records_{name}.jsonl", "".join(json.dumps(r) + "\n" for r in recs))
            atomic_write_text(tmp / "results.json", json.dumps(doc, indent=1) + "\n")
            atomic_write_text(tmp / "results.md", text + "\n")
    except FileExistsError as e:
        raise ZooError(f"{e} — choose a new or empty --out") from None
    print(text)
    print(f"wrote {out}/results.json, results.md (+ records_<model>.jsonl)")
    return 0


# --- command line ---------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    def common(p, sets):
        p.add_argument("--cohorts", default=DEFAULT_COHORTS, help="the cohort file of scripts/cohort_input.py")
        p.add_argument("--sets", nargs="+", default=sets, metavar="SET",
                       help=f"CORPUS:SPLIT or JSONL manifests (default: {' '.join(sets)})")
        p.add_argument("--data-dir", default=None)
        p.add_argument("--min-words", type=int, default=MIN_WORDS if sets is DEV_SETS else None,
                       help="eligible cohorts have at least this many reference words"
                       + ("" if sets is DEV_SETS else " (default: the choice's)"))
        p.add_argument("--min-speakers", type=int, default=MIN_SPEAKERS if sets is DEV_SETS else None,
                       help="... and at least this many speakers" + ("" if sets is DEV_SETS else " (default: the choice's)"))
        p.add_argument("--n-boot", type=int, default=1000, help="speaker-bootstrap resamples of the 95%% CIs")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--batch-size", type=int, default=8)
        p.add_argument("--beam-size", type=int, default=1, help="1 = greedy")
        p.add_argument("--force", action="store_true", help="replace an existing output")

    c = sub.add_parser("choose", help="the worst cohort of a model on dev speakers -> choice.json")
    common(c, DEV_SETS)
    c.add_argument("--model", default=DEFAULT_MODEL, help="ASR model: name, folder or Hub id")
    c.add_argument("--records", action="append", default=None, metavar="SET=PATH",
                   help="records of an earlier decode of SET by --model (skips decoding it); repeatable")
    c.add_argument("--out", default=None, help="default: choice.json next to the cohort file")
    m = sub.add_parser("compare", help="every model on held-out (test) speakers -> results.json, results.md")
    common(m, TEST_SETS)
    m.add_argument("models", nargs="+", metavar="NAME=MODEL", help="models to compare; the first is the reference")
    m.add_argument("--choice", default=None, help="choice.json of choose (default: next to the cohort file)")
    m.add_argument("--target", type=int, default=None, help="target (bottom) cohort; default: the choice's")
    m.add_argument("--top", type=int, default=None, help="top cohort of the gap; default: the choice's")
    m.add_argument("--out", default="exp/fairness/cohort_compare")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        for name in ("n_boot", "batch_size", "beam_size"):
            if getattr(args, name) < 1:
                raise ZooError(f"--{name.replace('_', '-')} is {getattr(args, name)} — give a whole number >= 1")
        for name in ("min_words", "min_speakers"):
            if getattr(args, name) is not None and getattr(args, name) < 1:
                raise ZooError(f"--{name.replace('_', '-')} is {getattr(args, name)} — give a whole number >= 1")
        return choose(args) if args.command == "choose" else compare(args)
    except Exception as e:  # noqa: BLE001 — user errors become one line, anything else a traceback
        z = find_zoo_error(e)
        if z is None or os.environ.get("ZOO_DEBUG"):
            raise
        print(f"error: {' '.join(str(z).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
