"""CMU AN4 recipe: lhotse CutSets for train / dev (speaker-disjoint slice of AN4 train) / test."""
from __future__ import annotations

import os
import random
import re
from pathlib import Path

from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

from zoo.errors import ZooError
from zoo.text import normalize_an4

# Speaker-disjoint dev slice of AN4 train: every 9th speaker in sorted order (8 of 74; 2 f, 6 m).
DEV_EVERY = 9

# Speaker-verification split of all 84 AN4 speakers (train dir: 74 = 21 f + 53 m; test dir: 10 = 3 f + 7 m).
# eval = the 10 test-dir speakers + SV_EVAL_EXTRA held-out train speakers (-> 10 f + 10 m);
# dev = SV_DEV other held-out train speakers (5 f + 5 m); train = the remaining 54 (9 f + 45 m).
# Held-out speakers are drawn per gender from the sorted ids with random.Random(SV_SEED).
SV_EVAL_EXTRA = {"f": 7, "m": 3}
SV_DEV = {"f": 5, "m": 5}
SV_SEED = 0


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir``, else ``$ZOO_DATA``, else ``../shared/data`` (relative to the working directory)."""
    return Path(data_dir or os.environ.get("ZOO_DATA") or "../shared/data")


def an4_dir(data_dir=None) -> Path:
    root = data_root(data_dir)
    d = root / "an4" if (root / "an4").is_dir() else root
    if not (d / "etc" / "an4_train.fileids").is_file():
        raise ZooError(f"AN4 not found under {root} (expected an4/etc/an4_train.fileids); "
                       "pass --data_dir or set ZOO_DATA to the folder that holds an4/")
    return d


def _read_split(d: Path, split: str):
    ids = (d / "etc" / f"an4_{split}.fileids").read_text().split()
    lines = (d / "etc" / f"an4_{split}.transcription").read_text().splitlines()
    if len(ids) != len(lines):
        raise ZooError(f"AN4 {split}: {len(ids)} fileids but {len(lines)} transcriptions")
    recs, sups = [], []
    for n, (fid, line) in enumerate(zip(ids, lines), 1):
        path = d / "wav" / f"{fid}.wav"
        tag = re.search(r"\(([^)]*)\)\s*$", line)
        if tag is None or tag.group(1) != Path(fid).name:
            raise ZooError(f"AN4 {split}: transcription line {n} does not belong to {fid}: {line.strip()!r}")
        spk = fid.split("/")[1]
        rec = Recording.from_file(path, recording_id=Path(fid).name)
        recs.append(rec)
        sups.append(SupervisionSegment(id=rec.id, recording_id=rec.id, start=0.0, duration=rec.duration,
                                       text=normalize_an4(line), speaker=spk, gender=spk[0],
                                       language="en", custom={"corpus": "an4"}))
    return CutSet.from_manifests(RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups))


def an4_cuts(data_dir=None) -> dict[str, CutSet]:
    """{"train", "dev", "test"} CutSets with text, speaker and gender (``f``/``m``) on each supervision."""
    d = an4_dir(data_dir)
    train_all = _read_split(d, "train")
    speakers = sorted({c.supervisions[0].speaker for c in train_all})
    dev_spk = set(speakers[::DEV_EVERY])
    return {
        "train": train_all.filter(lambda c: c.supervisions[0].speaker not in dev_spk).to_eager(),
        "dev": train_all.filter(lambda c: c.supervisions[0].speaker in dev_spk).to_eager(),
        "test": _read_split(d, "test"),
    }


def _speaker(c) -> str:
    return c.supervisions[0].speaker


def an4_speaker_split(data_dir=None, seed: int = SV_SEED) -> dict[str, CutSet]:
    """{"train", "dev", "eval"}: a speaker-disjoint split of all 84 AN4 speakers for speaker verification
    (see ``SV_EVAL_EXTRA`` / ``SV_DEV``; gender = first letter of the speaker id, on each supervision)."""
    d = an4_dir(data_dir)
    train_all, test = _read_split(d, "train"), _read_split(d, "test")
    by_gender: dict[str, list[str]] = {}
    for spk in sorted({_speaker(c) for c in train_all}):
        by_gender.setdefault(spk[0], []).append(spk)
    rng = random.Random(seed)
    eval_spk, dev_spk = set(), set()
    for g in sorted(by_gender):
        pool = by_gender[g][:]
        rng.shuffle(pool)
        ne, nd = SV_EVAL_EXTRA.get(g, 0), SV_DEV.get(g, 0)
        if ne + nd >= len(pool):
            raise ZooError(f"AN4 has only {len(pool)} '{g}' training speakers; cannot hold out {ne + nd}")
        eval_spk.update(pool[:ne])
        dev_spk.update(pool[ne:ne + nd])
    held = eval_spk | dev_spk
    return {
        "train": train_all.filter(lambda c: _speaker(c) not in held).to_eager(),
        "dev": train_all.filter(lambda c: _speaker(c) in dev_spk).to_eager(),
        "eval": (test + train_all.filter(lambda c: _speaker(c) in eval_spk)).to_eager(),
    }
