"""``zoo data`` and ``zoo mix``: corpus recipes, manifests and two-speaker demo mixes."""
from __future__ import annotations

from pathlib import Path

from zoo.audio import check_audio_files
from zoo.errors import ZooError

MAX_MIX_OFFSET = 600.0  # s; a demo mix longer than this is a typo (1e6 would allocate ~60 GB)


def add_parsers(sub) -> None:
    d = sub.add_parser("data", help="write NeMo JSONL manifests of a corpus recipe (an4-sv: + trials files)")
    d.add_argument("corpus", choices=["an4", "speechocean762", "alphanumeric", "an4-sv", "so762-sv", "an4-mix"],
                   help="corpus recipe")
    d.add_argument("--out", required=True, help="output folder for train/dev/test .jsonl "
                   "(an4-sv: train/dev/eval .jsonl with ids + dev_trials.txt, eval_trials.txt)")
    d.add_argument("--data-dir", default=None, help="corpus location (default: $ZOO_DATA or ../shared/data)")
    d.add_argument("--sessions", type=int, default=None, help="an4-mix: two-speaker sessions (default 200)")
    d.add_argument("--seed", type=int, default=None, help="an4-mix: seed (default 0: the fixed test set)")
    d.add_argument("--split", default="test", choices=["test", "dev"], help="an4-mix: whose speakers")
    d.add_argument("--force", action="store_true", help="replace manifests that already exist in --out")
    d.set_defaults(func=cmd_data)

    x = sub.add_parser("mix", help="mix two audio files (b starts --offset s into a) for demos")
    x.add_argument("audio", nargs=2, metavar="AUDIO", help="the two audio files (a, b)")
    x.add_argument("--offset", type=float, required=True, help="start of the second file in the first (s; at "
                   f"most {MAX_MIX_OFFSET:.0f} s and 10x the first file's length)")
    x.add_argument("-o", "--output", required=True, help="output .wav or .flac (at the first file's rate)")
    x.add_argument("--force", action="store_true", help="replace an existing --output file")
    x.set_defaults(func=cmd_mix)


def _outputs(args) -> list[Path]:
    """The files ``zoo data`` writes for this corpus (checked before any work)."""
    out = Path(args.out)
    if args.corpus == "an4-sv":
        names = ["train.jsonl", "dev.jsonl", "eval.jsonl", "dev_trials.txt", "eval_trials.txt"]
    elif args.corpus == "so762-sv":
        names = ["so762_test.jsonl", "so762_test_trials.txt", "so762_test_trials.adult.txt",
                 "so762_test_trials.child.txt"]
    elif args.corpus == "an4-mix":
        names = [f"{args.split}.jsonl"]
    else:
        names = [f"{s}{ext}" for s in ("train", "dev", "test") for ext in (".jsonl", ".cuts.jsonl.gz")]
    return [out / n for n in names]


def cmd_data(args) -> int:
    from zoo.data import write_manifest, write_sv_data
    from zoo.io import atomic_path, check_new_output

    if not args.force:
        for p in _outputs(args):
            check_new_output(p, False, "--out")
    if args.corpus == "an4-sv":
        for p in write_sv_data(args.out, args.data_dir):
            print(p)
        return 0
    if args.corpus == "so762-sv":  # the published speechocean762-test list (data/trials/), this machine's paths
        from zoo.data.trials import SO762_TRIALS, TRIALS_DIR, write_cohort_trials, write_so762_manifest
        from zoo.io import atomic_write_text

        out = Path(args.out)
        print(write_so762_manifest(out / "so762_test.jsonl", args.data_dir))
        print(atomic_write_text(out / SO762_TRIALS, (TRIALS_DIR / SO762_TRIALS).read_text()))
        for p in write_cohort_trials(out):
            print(p)
        return 0
    if args.corpus == "an4-mix":
        from zoo.data.mix import write_an4_mix

        print(write_an4_mix(args.out, args.sessions, args.seed, args.data_dir, args.split))
        return 0

    from zoo.data.corpora import corpus_cuts

    for split, cuts in corpus_cuts(args.corpus, args.data_dir).items():
        print(write_manifest(cuts, Path(args.out) / f"{split}.jsonl"))
        lhotse_path = Path(args.out) / f"{split}.cuts.jsonl.gz"
        with atomic_path(lhotse_path, suffix=".jsonl.gz") as tmp:  # keeps every metadata field
            cuts.to_file(tmp)
        print(lhotse_path)
    return 0


def cmd_mix(args) -> int:
    import soundfile as sf

    from zoo.audio import audio_duration
    from zoo.data.mix import mix_files
    from zoo.io import check_new_output

    # the inputs first (their problems are the real ones), then the output, all before anything is allocated
    check_audio_files(args.audio)
    if args.offset < 0:
        raise ZooError(f"--offset must be >= 0 s (got {args.offset:g})")
    first = audio_duration(args.audio[0])
    audio_duration(args.audio[1])  # readable?
    limit = min(MAX_MIX_OFFSET, 10 * first)
    if args.offset > limit:
        raise ZooError(f"--offset {args.offset:g} s is far beyond {args.audio[0]} ({first:.2f} s long): the mix "
                       f"would be mostly silence — give an offset of at most {limit:.1f} s (10x the first file, "
                       f"{MAX_MIX_OFFSET:.0f} s at most)")
    out = Path(args.output)
    if out.suffix.lower().lstrip(".").upper() not in sf.available_formats():
        raise ZooError(f"cannot write {out.name}: unknown audio format {out.suffix or '(no suffix)'} — use .wav "
                       "or .flac")
    check_new_output(out, args.force, "--output")
    out, dur, sr = mix_files(args.audio[0], args.audio[1], args.offset, out)
    print(f"wrote {out} ({dur:.2f} s, {sr} Hz)")
    return 0
