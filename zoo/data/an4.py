"""CMU AN4 recipe: lhotse CutSets for train / dev (speaker-disjoint slice of AN4 train) / test."""
from __future__ import annotations

import os
import re
from pathlib import Path

from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

from zoo.errors import ZooError
from zoo.text import normalize_an4

# Speaker-disjoint dev slice of AN4 train: every 9th speaker in sorted order (8 of 74; 2 f, 6 m).
DEV_EVERY = 9


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
                                       language="en"))
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
