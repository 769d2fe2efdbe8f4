"""NeMo-style JSONL manifests <-> lhotse CutSets.

One JSON object per line: ``audio_filepath`` (relative paths resolve against the manifest's folder),
``duration`` (s), ``text``, optional ``offset``, ``speaker``, ``gender`` and any other metadata.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from zoo.errors import ManifestError

if TYPE_CHECKING:  # lhotse is imported where needed: read_manifest (used by the CLI) needs only json
    from lhotse import CutSet
    from lhotse.cut import MonoCut

_RESERVED = {"audio_filepath", "duration", "text", "offset", "speaker", "gender", "id"}


def json_lines(path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed JSON) of each non-blank line; a missing file or bad JSON raises ManifestError."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{path}:{n}: not valid JSON ({err.msg})") from None
            yield n, obj


def read_manifest(path: str | Path) -> Iterator[dict]:
    """Yield validated entries; a bad line raises ManifestError naming the file and line."""
    path = Path(path)
    for n, e in json_lines(path):
        if not isinstance(e, dict) or "audio_filepath" not in e:
            raise ManifestError(f"{path}:{n}: each line must be a JSON object with 'audio_filepath'")
        if "duration" in e and not isinstance(e["duration"], (int, float)):
            raise ManifestError(f"{path}:{n}: 'duration' must be a number of seconds")
        if "offset" in e and (not isinstance(e["offset"], (int, float)) or e["offset"] < 0):
            raise ManifestError(f"{path}:{n}: 'offset' must be a non-negative number of seconds")
        a = Path(e["audio_filepath"])
        e["audio_filepath"] = str(a if a.is_absolute() else (path.parent / a))
        e["_line"] = n
        yield e


def _entry_to_cut(e: dict, path: Path) -> MonoCut:
    from lhotse import Recording, SupervisionSegment
    from lhotse.cut import MonoCut

    if "duration" not in e:
        raise ManifestError(f"{path}:{e['_line']}: 'duration' is required for training manifests")
    offset = float(e.get("offset", 0.0))
    where = f"{path}:{e['_line']}"
    if not Path(e["audio_filepath"]).is_file():
        raise ManifestError(f"{where}: audio file not found: {e['audio_filepath']}")
    try:
        rec = Recording.from_file(e["audio_filepath"])
    except Exception:  # lhotse wraps every backend's failure in its own error type
        raise ManifestError(f"{where}: cannot read {e['audio_filepath']} as audio") from None
    if offset < 0 or offset + float(e["duration"]) > rec.duration + 0.01:
        raise ManifestError(f"{where}: offset {offset} + duration {e['duration']} s lies outside the "
                            f"{rec.duration:.3f} s recording")
    cid = e.get("id") or f"{rec.id}-{e['_line']}"
    extra = {k: v for k, v in e.items() if k not in _RESERVED and not k.startswith("_")}
    sup = SupervisionSegment(id=cid, recording_id=rec.id, start=offset, duration=float(e["duration"]),
                             text=e.get("text"), speaker=e.get("speaker"), gender=e.get("gender"),
                             custom=extra or None)
    return MonoCut(id=cid, start=offset, duration=float(e["duration"]), channel=0, recording=rec,
                   supervisions=[sup.with_offset(-offset)])


class _LazyNemo:
    """Iterable of cuts read lazily from a NeMo manifest (corpora larger than RAM)."""

    def __init__(self, path):
        self.path = Path(path)

    def __iter__(self):
        for e in read_manifest(self.path):
            yield _entry_to_cut(e, self.path)


def load_cuts(path: str | Path, lazy: bool = False) -> CutSet:
    """A NeMo JSONL manifest or a lhotse cuts manifest (``*.jsonl[.gz]`` with ``type`` keys)."""
    from lhotse import CutSet

    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    from zoo.data.mix import is_mix_manifest, read_mix_manifest

    if is_mix_manifest(path):  # two-speaker sessions written by `zoo data an4-mix`
        return read_mix_manifest(path)
    if ".jsonl" in path.name and _is_lhotse(path):
        return CutSet.from_jsonl_lazy(path) if lazy else CutSet.from_file(path)
    cuts = CutSet(_LazyNemo(path))
    return cuts if lazy else cuts.to_eager()


def _is_lhotse(path: Path) -> bool:
    from lhotse.serialization import open_best

    with open_best(path) as f:
        first = f.readline()
    try:
        obj = json.loads(first)
    except (json.JSONDecodeError, TypeError):
        return False
    return isinstance(obj, dict) and "audio_filepath" not in obj and ("type" in obj or "recording" in obj)


def write_manifest(cuts: CutSet, path: str | Path, with_id: bool = False) -> Path:
    """Write cuts as a NeMo JSONL manifest with paths relative to its folder (atomic).

    ``with_id``: also write each cut's ``id`` (trials files name utterances by it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        _write_entries(cuts, tmp, path.parent.resolve(), with_id)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # never leave a partial file behind
    return path


def _write_entries(cuts: CutSet, tmp: Path, folder: Path, with_id: bool = False) -> None:
    with open(tmp, "w", encoding="utf-8") as f:
        for c in cuts:
            s = c.supervisions[0]
            src = Path(c.recording.sources[0].source).resolve()
            e = {"id": c.id} if with_id else {}
            e.update({"audio_filepath": os.path.relpath(src, folder), "duration": round(c.duration, 4),
                      "text": s.text, "speaker": s.speaker})
            if c.start:
                e["offset"] = c.start
            gender = getattr(s, "gender", None) or (s.custom or {}).get("gender")
            if gender:
                e["gender"] = gender
            e.update({k: v for k, v in (s.custom or {}).items() if v is not None and k not in e})
            f.write(json.dumps(e) + "\n")
