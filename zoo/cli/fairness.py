"""``zoo audit`` and ``zoo fisher``: ASR fairness audits and the Fisher information for EWC."""
from __future__ import annotations

import sys
from pathlib import Path

from zoo.errors import ZooError

AUDIT_CORPORA = ["an4", "speechocean762", "alphanumeric"]


def add_parsers(sub) -> None:
    a = sub.add_parser("audit", help="ASR fairness audit: per-utterance errors -> cohorts (metadata | embedding | "
                       "geo) -> WER per cohort with CIs, WER gap, bottom-cohort share -> report folder")
    a.add_argument("--model", default="lstm-rnnt-an4", help="ASR model: name, model folder or Hub repo id")
    a.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit sha)")
    a.add_argument("--manifest", default=None, help="NeMo JSONL manifest (needs speaker; extra fields = metadata)")
    a.add_argument("--corpus", default="an4", choices=AUDIT_CORPORA, help="without --manifest: a corpus split, "
                   "metadata from the recipe (an4: gender; speechocean762: gender, age, age_group; alphanumeric: "
                   "gender, age, age_group, nationality, native_language, accent_strength_self, lat, lon, ...)")
    a.add_argument("--split", default="test", choices=["train", "dev", "test"], help="corpus split")
    a.add_argument("--data-dir", default=None, help="corpus location (default: $ZOO_DATA or ../shared/data)")
    a.add_argument("--metadata", default=None, help="per-speaker CSV with a 'speaker' column (+ e.g. gender, "
                   "age, lat, lon)")
    a.add_argument("--method", required=True, choices=["metadata", "embedding", "geo"],
                   help="how speakers are grouped into cohorts")
    a.add_argument("--columns", default=None, help="metadata: comma-separated columns (default: all)")
    a.add_argument("--speaker-model", default=None, help="embedding: speaker-embedding model (e.g. ecapa-an4)")
    a.add_argument("--k", type=int, default=None, help="embedding: clusters (default: best silhouette, 2..--k-max)")
    a.add_argument("--k-match", default=None, metavar="COLUMN", help="embedding: k = the number of COLUMN's "
                   "metadata cohorts with >= --min-speakers discovery speakers, and those cohorts reported beside "
                   "the clusters (compare metadata vs embedding cohorts at the same number of cohorts)")
    a.add_argument("--k-max", type=int, default=8, help="embedding: most clusters tried")
    a.add_argument("--max-per-speaker", type=int, default=20, help="embedding: utterances averaged per speaker")
    a.add_argument("--min-words", type=int, default=50, help="cohorts below this many words are shown but not "
                   "ranked (and not allowed as a side of a binary partition)")
    a.add_argument("--min-speakers", type=int, default=3, help="cohorts with fewer speakers are shown but not ranked "
                   "or used for the gap, in every method (and not allowed as a partition side or geo region)")
    h = a.add_argument_group("held-out selection", "discover cohorts (and the worst cohort) on one set of speakers, "
                             "score WERs, gaps, CIs and p-values on a disjoint set: the audited set above")
    h.add_argument("--holdout-frac", type=float, default=None, help="split the audited set's speakers: this "
                   "fraction is held out for scoring, the rest discovers (e.g. 0.5)")
    h.add_argument("--holdout-seed", type=int, default=0, help="seed of the --holdout-frac speaker split")
    h.add_argument("--discover-corpus", default=None, choices=AUDIT_CORPORA, help="discovery set: a corpus split")
    h.add_argument("--discover-split", default=None, choices=["train", "dev", "test"],
                   help="split of --discover-corpus (default dev)")
    h.add_argument("--discover-manifest", default=None, help="discovery set: a NeMo JSONL manifest")
    h.add_argument("--discover-records", default=None, help="discovery set: records (e.g. discovery_records.jsonl "
                   "of an earlier held-out audit; no decoding)")
    a.add_argument("--geo-min-words", type=int, default=200, help="geo: minimum words per region")
    a.add_argument("--max-depth", type=int, default=None, help="geo: maximum tree depth (default: unlimited)")
    a.add_argument("--n-boot", type=int, default=1000, help="speaker-bootstrap resamples for the 95%% CIs")
    a.add_argument("--n-perm", type=int, default=200, help="permutations for the discovery p-values (0: none)")
    a.add_argument("--seed", type=int, default=0, help="seed of the bootstrap, permutations and clustering")
    a.add_argument("--batch-size", type=int, default=8, help="utterances decoded together")
    a.add_argument("--beam-size", type=int, default=1, help="1 = greedy; >1 = beam search")
    a.add_argument("--records", default=None, help="reuse the records.jsonl of an earlier audit (no decoding)")
    a.add_argument("--out", required=True, help="report folder (written atomically)")
    a.add_argument("--force", action="store_true", help="replace an earlier report in --out")
    a.add_argument("--quiet", action="store_true", help="no progress bars")
    a.set_defaults(func=cmd_audit)

    f = sub.add_parser("fisher", help="diagonal Fisher information of an ASR model on its training data (for "
                       "EWC fine-tuning), stored beside the model")
    f.add_argument("--model", required=True, help="ASR model: name or model folder")
    f.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit sha)")
    f.add_argument("--corpus", default="an4", help="corpus recipe, or a comma-separated mix of them weighted "
                   "equally (e.g. an4,speechocean762: the v2 models' training corpora)")
    f.add_argument("--split", default="train", choices=["train", "dev", "test"], help="corpus split")
    f.add_argument("--manifest", default=None, help="training manifest instead of a corpus split")
    f.add_argument("--data-dir", default=None, help="corpus location (default: $ZOO_DATA or ../shared/data)")
    f.add_argument("--utterances", type=int, default=1000, help="utterances averaged (per-utterance gradients; "
                   "AN4 train has 835: all of them, ~45 ms each for lstm-rnnt-an4 at 1 thread)")
    f.add_argument("--max-duration", type=float, default=60.0, help="seconds of audio per loading batch")
    f.add_argument("--seed", type=int, default=0, help="shuffling seed of the utterances")
    f.add_argument("--out", default=None, help="output .safetensors (default: <model folder>/fisher.safetensors "
                   "for a model folder given as a path; a bundled or downloaded model needs --out)")
    f.add_argument("--force", action="store_true", help="replace an existing output file (or write into a bundled "
                   "release folder)")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_fisher)


def _progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _audit_set(args, prefix: str) -> dict:
    """One set of ``zoo audit`` (``prefix`` "" = the audited / scoring set, "discover_" = the discovery set):
    {"name", "records"} from a records.jsonl, or {"name", "items"} to decode; --metadata joined to either."""
    from zoo.fairness import records as R

    rec, man = getattr(args, f"{prefix}records"), getattr(args, f"{prefix}manifest")
    corpus = getattr(args, f"{prefix}corpus")
    split = getattr(args, f"{prefix}split") or "dev"
    if rec:
        rows = R.read_records(rec)
        if not rows or any(k not in rows[0] for k in R.RECORD_KEYS):
            raise ZooError(f"{rec} is not a records.jsonl written by zoo audit")
        out = {"name": str(rec), "records": rows}
    else:
        out = {"name": man or f"{corpus} {split}", "items": R.load_items(man, corpus, split, args.data_dir)}
    if args.metadata:
        key = "records" if rec else "items"
        out[key] = R.attach_metadata(out[key], R.read_metadata(args.metadata), args.metadata)
    return out


def cmd_audit(args) -> int:
    from zoo.fairness import records as R
    from zoo.fairness.audit import run_audit, write_report
    from zoo.fairness.cohorts import split_speakers
    from zoo.hub import from_pretrained

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "report.json").is_file())):
        raise ZooError(f"--out {out} exists and is not an earlier audit report — choose a new or empty folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise ZooError(f"--out {out} holds an earlier audit report — pass --force to replace it, or choose a new "
                       "folder")
    if args.beam_size < 1:
        raise ZooError(f"--beam-size must be at least 1 (1 = greedy; got {args.beam_size})")
    for name in ("n_boot", "batch_size", "min_words", "min_speakers", "geo_min_words", "max_per_speaker"):
        if getattr(args, name) < 1:
            raise ZooError(f"--{name.replace('_', '-')} must be at least 1")
    if args.n_perm < 0:
        raise ZooError("--n-perm must be >= 0")
    if args.method == "embedding" and not args.speaker_model:
        raise ZooError("--method embedding needs --speaker-model (a speaker-embedding model, e.g. ecapa-an4)")
    if args.k_match and args.method != "embedding":
        raise ZooError("--k-match compares embedding clusters with a metadata column — use it with --method embedding")
    given = [f"--discover-{x}" for x in ("corpus", "manifest", "records") if getattr(args, f"discover_{x}")]
    if len(given) > 1:
        raise ZooError(f"give one discovery set, not {' and '.join(given)}")
    if given and args.holdout_frac is not None:
        raise ZooError(f"give --holdout-frac (split one set) or {given[0]} (a second set), not both")
    if args.discover_split and not args.discover_corpus:
        raise ZooError("--discover-split needs --discover-corpus")
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    sets = {"scoring": _audit_set(args, "")}
    if given:
        sets["discovery"] = _audit_set(args, "discover_")
    for st in sets.values():
        _check_columns(st.get("records") or st["items"], args.method, columns, args.k_match)
    model = from_pretrained(args.model, revision=args.revision) if any("items" in st for st in sets.values()) \
        else None
    spk_model = None
    if args.method == "embedding":
        spk_model = from_pretrained(args.speaker_model)
        if spk_model.task != "speaker":
            raise ZooError(f"{args.speaker_model} is not a speaker-embedding model (its task is "
                           f"{spk_model.task!r})")
    for st in sets.values():
        if "records" not in st:
            st["records"] = R.error_records(model, st.pop("items"), args.batch_size, args.beam_size,
                                            progress=_progress(args))
    records = sets["scoring"]["records"]
    discovery, names = None, (sets["scoring"]["name"],) * 2
    if given:
        discovery, names = sets["discovery"]["records"], (sets["discovery"]["name"], sets["scoring"]["name"])
    elif args.holdout_frac is not None:
        disc, _ = split_speakers([r["speaker"] for r in records], args.holdout_frac, args.holdout_seed)
        disc = set(disc)
        discovery = [r for r in records if r["speaker"] in disc]
        records = [r for r in records if r["speaker"] not in disc]
        base = sets["scoring"]["name"]
        names = (f"{base}, the other speakers", f"{base}, held-out {args.holdout_frac:g} of the speakers "
                 f"(--holdout-seed {args.holdout_seed})")
    emb = None
    if spk_model is not None:
        from zoo.fairness.cohorts import speaker_embeddings

        emb = speaker_embeddings(spk_model, records + (discovery or []), args.max_per_speaker,
                                 progress=_progress(args))
    rep = run_audit(discovery or records, args.method, columns, emb, args.k, args.k_max, args.min_words,
                    args.min_speakers, geo_min_words=args.geo_min_words, max_depth=args.max_depth,
                    n_boot=args.n_boot, n_perm=args.n_perm, seed=args.seed,
                    scoring=records if discovery is not None else None, k_match=args.k_match, data=names)
    data = names[1] if discovery is None else f"discovery {names[0]}; scoring {names[1]}"
    rep.update(model=str(args.model), data=data, speaker_model=args.speaker_model,
               normalizer=model.normalizer if model else "from records")
    write_report(rep, records, out, discovery)
    o, sp = rep["overall"], rep["speakers"]
    if sp["held_out"]:
        print(f"cohorts discovered on {sp['discovery']['speakers']} speakers, scored on {sp['scoring']['speakers']} "
              "other (disjoint) speakers")
    print(f"overall WER {100 * o['wer']:.2f}% ({o['utterances']} utterances, {o['speakers']} speakers)")
    for s in rep["cohort_sets"]:
        m = s["summary"]
        if "gap_abs" in m:
            gap = "n/a" if m["gap"] is None else f"{100 * m['gap']:.1f}%"
            print(f"{s['name']}: bottom {m['bottom']} {100 * m['wer_bottom']:.2f}% vs top {m['top']} "
                  f"{100 * m['wer_top']:.2f}%, gap {gap}, "
                  f"bottom share {100 * m['bottom_share_speakers']:.1f}% of speakers")
    print(f"wrote {out}/report.md, report.json, cohorts.json, records.jsonl, plots")
    return 0


def _check_columns(rows: list[dict], method: str, columns: list[str] | None, k_match: str | None = None) -> None:
    """Fail before decoding when the method's columns are missing."""
    from zoo.fairness.records import metadata_columns

    if method == "geo":
        missing = [c for c in ("lat", "lon") if any(c not in r for r in rows)]
        if missing:
            raise ZooError(f"--method geo needs 'lat' and 'lon' for every speaker (manifest fields or --metadata "
                           f"columns); missing: {', '.join(missing)}")
        bad = [r["speaker"] for r in rows if not all(isinstance(r[c], (int, float)) for c in ("lat", "lon"))]
        if bad:
            raise ZooError(f"lat/lon of speaker {bad[0]} are not numbers")
    elif method == "metadata" or k_match:
        present = metadata_columns(rows, exclude=())
        want = [k_match] if method == "embedding" else columns or metadata_columns(rows)
        if not want:
            raise ZooError("--method metadata: no metadata columns (give --metadata speakers.csv or manifest fields)")
        bad = [c for c in want if c not in present]
        if bad:
            raise ZooError(f"metadata column(s) {', '.join(bad)} not found on every utterance; "
                           f"available: {', '.join(present) or 'none'}")


def cmd_fisher(args) -> int:
    import time

    from zoo.data import SpeechDataModule
    from zoo.fairness.fisher import FISHER_FILE, fisher_diagonal, save_fisher
    from zoo.hub import resolve
    from zoo.tasks import TransducerTask

    if args.utterances < 1:
        raise ZooError("--utterances must be at least 1")
    folder = resolve(args.model, revision=args.revision)
    out = _fisher_out(args, folder, FISHER_FILE)
    try:
        task = TransducerTask(init_from=str(folder), ctc_weight=0.0, spec_augment=None)
    except ValueError as e:
        raise ZooError(f"{args.model}: {e}") from None
    if args.manifest:
        dm = SpeechDataModule(corpus=None, train_manifest=args.manifest, max_duration=args.max_duration,
                              num_buckets=1, seed=args.seed)
        split = "train"
    else:
        from zoo.data.corpora import CORPORA

        names = [c.strip() for c in args.corpus.split(",") if c.strip()]
        unknown = [c for c in names if c not in CORPORA]
        if not names or unknown:
            raise ZooError(f"unknown corpus {', '.join(unknown) or repr(args.corpus)} — choose from "
                           f"{', '.join(sorted(CORPORA))} (comma-separated for a mix)")
        mix = {"corpus": names[0]} if len(names) == 1 else {"corpus": None, "corpora": {c: 1.0 for c in names}}
        dm = SpeechDataModule(**mix, data_dir=args.data_dir, max_duration=args.max_duration, num_buckets=1,
                              seed=args.seed)
        split = {"train": "train", "dev": "val", "test": "test"}[args.split]
    dm.setup("fit")
    loader = dm.train_dataloader() if split == "train" else dm.plain_dataloader(split)
    t0 = time.perf_counter()
    fisher, n = fisher_diagonal(task, loader, args.utterances, progress=_progress(args))
    dt = time.perf_counter() - t0
    save_fisher(fisher, out, model=str(args.model), utterances=n, data=args.manifest or f"{args.corpus} {args.split}",
                loss="rnnt, per-utterance gradients, eval mode")
    flat = [v.flatten() for v in fisher.values()]
    import torch

    allf = torch.cat(flat)
    print(f"Fisher over {n} utterances in {dt:.1f} s ({dt / n * 1000:.0f} ms/utt): mean {allf.mean():.3e}, "
          f"max {allf.max():.3e}, zero entries {100 * float((allf == 0).float().mean()):.1f}%")
    print(f"wrote {out}")
    return 0


def _fisher_out(args, folder: Path, default_name: str) -> Path:
    """Where the Fisher file goes. Never into a bundled release folder (checkpoints/<name>/) or the Hub cache
    by default, and never over an existing file, unless --force."""
    from zoo.hub.registry import CHECKPOINTS
    from zoo.io import check_new_output

    def inside(p: Path, root: Path) -> bool:
        try:
            p.resolve().relative_to(root.resolve())
            return True
        except (ValueError, OSError):
            return False

    local = Path(args.model).expanduser().exists() and not inside(folder, CHECKPOINTS)
    if args.out is None and not local:
        raise ZooError(f"--model {args.model} is a {'bundled' if inside(folder, CHECKPOINTS) else 'downloaded'} "
                       f"model whose folder zoo fisher does not write into — give --out PATH (and fisher: PATH in "
                       "the EWC regularizer config)")
    out = Path(args.out) if args.out else folder / default_name
    if inside(out, CHECKPOINTS) and not args.force:
        raise ZooError(f"--out {out} is inside the bundled release folders ({CHECKPOINTS}) — choose another path, "
                       "or pass --force to add the file to a release")
    check_new_output(out, args.force, "--out")
    return out

