"""``zoo data`` and ``zoo mix``: corpus recipes, manifests and two-speaker demo mixes."""
from __future__ import annotations

import sys
from pathlib import Path

from zoo.errors import ZooError


def add_parsers(sub) -> None:
    d = sub.add_parser("data", help="write NeMo JSONL manifests of a corpus recipe (an4-sv: + trials files)")
    d.add_argument("corpus", choices=["an4", "speechocean762", "alphanumeric", "an4-sv", "an4-mix"])
    d.add_argument("--out", required=True, help="output folder for train/dev/test .jsonl "
                   "(an4-sv: train/dev/eval .jsonl with ids + dev_trials.txt, eval_trials.txt)")
    d.add_argument("--data-dir", default=None, help="corpus location (default $ZOO_DATA or ../shared/data)")
    d.add_argument("--sessions", type=int, default=None, help="an4-mix: two-speaker sessions (default 200)")
    d.add_argument("--seed", type=int, default=None, help="an4-mix: seed (default 0: the fixed test set)")
    d.add_argument("--split", default="test", choices=["test", "dev"], help="an4-mix: whose speakers (test)")
    d.set_defaults(func=cmd_data)

    x = sub.add_parser("mix", help="mix two audio files (b starts --offset s into a) for demos")
    x.add_argument("audio", nargs=2, metavar="AUDIO")
    x.add_argument("--offset", type=float, required=True, help="start of the second file in the first (s)")
    x.add_argument("-o", "--output", required=True, help="output .wav or .flac (at the first file's rate)")
    x.set_defaults(func=cmd_mix)


def cmd_data(args) -> int:
    from zoo.data import write_manifest, write_sv_data

    if args.corpus == "an4-sv":
        for p in write_sv_data(args.out, args.data_dir):
            print(p)
        return 0
    if args.corpus == "an4-mix":
        from zoo.data.mix import write_an4_mix

        print(write_an4_mix(args.out, args.sessions, args.seed, args.data_dir, args.split))
        return 0

    from zoo.data.corpora import corpus_cuts

    for split, cuts in corpus_cuts(args.corpus, args.data_dir).items():
        print(write_manifest(cuts, Path(args.out) / f"{split}.jsonl"))
        lhotse_path, tmp = Path(args.out) / f"{split}.cuts.jsonl.gz", Path(args.out) / f".tmp-{split}.cuts.jsonl.gz"
        try:  # the lhotse manifest keeps every metadata field; written atomically
            cuts.to_file(tmp)
            tmp.replace(lhotse_path)
        finally:
            tmp.unlink(missing_ok=True)
        print(lhotse_path)
    return 0


def cmd_mix(args) -> int:
    from zoo.data.mix import mix_files

    out, dur, sr = mix_files(args.audio[0], args.audio[1], args.offset, args.output)
    print(f"wrote {out} ({dur:.2f} s, {sr} Hz)")
    return 0
