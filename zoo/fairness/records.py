"""Per-utterance error records: what every fairness analysis starts from.

A record is a flat dict: ``id``, ``audio``, ``speaker``, ``errors`` (word-level Levenshtein distance after the
model's text normaliser), ``words`` (reference words), ``ref``, ``hyp``, and the metadata columns of the
utterance (manifest fields other than the reserved ones, joined with a per-speaker metadata CSV).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from zoo.audio import load_audio
from zoo.data.items import load_items as _load_items
from zoo.data.manifest import json_lines
from zoo.errors import ZooError
from zoo.io import atomic_write_text
from zoo.metrics.wer import edit_counts
from zoo.text import get_normalizer

RECORD_KEYS = ("id", "audio", "speaker", "errors", "words", "ref", "hyp")


def load_items(manifest: str | None = None, corpus: str | None = "an4", split: str = "test",
               data_dir: str | None = None) -> list[dict]:
    """Utterances to audit: ``[{"id", "audio", "text", "speaker", "offset", "duration", **metadata}]`` from a
    NeMo JSONL manifest (every extra field is a metadata column; ``speaker`` is required, since cohorts and
    confidence intervals are per speaker) or from a corpus recipe split (with its speaker metadata)."""
    items = _load_items(corpus, split, manifest, data_dir, require_text=True, require_speaker=True)
    if not items:
        raise ZooError(f"{manifest or f'{corpus} {split}'} has no utterances")
    return items


def _number(v: str):
    try:
        return float(v) if any(ch in v for ch in ".eE") else int(v)
    except ValueError:
        return v


def read_metadata(path: str | Path) -> dict[str, dict]:
    """A per-speaker metadata CSV (header row with a ``speaker`` column) -> {speaker: {column: value}}.

    Numeric cells become numbers (so ``lat``/``lon``/``age`` can be split by threshold); empty cells are
    dropped (the speaker then lacks that column)."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"metadata file not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "speaker" not in reader.fieldnames:
            raise ZooError(f"{path}: the header must have a 'speaker' column (found {reader.fieldnames or 'none'})")
        out: dict[str, dict] = {}
        for n, row in enumerate(reader, 2):
            spk = (row.get("speaker") or "").strip()
            if not spk:
                raise ZooError(f"{path}:{n}: empty speaker")
            if spk in out:
                raise ZooError(f"{path}:{n}: speaker {spk!r} appears twice")
            out[spk] = {k.strip(): _number(v.strip()) for k, v in row.items()
                        if k and k != "speaker" and v is not None and v.strip() != ""}
    if not out:
        raise ZooError(f"{path}: no speakers")
    return out


def attach_metadata(items: list[dict], metadata: dict[str, dict], source: str = "metadata") -> list[dict]:
    """Add each speaker's metadata columns to its utterances (CSV values win over manifest fields)."""
    missing = sorted({it["speaker"] for it in items} - set(metadata))
    if missing:
        more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ZooError(f"{source} has no row for speaker(s) {', '.join(missing[:5])}{more}")
    return [{**it, **metadata[it["speaker"]]} for it in items]


def error_records(model, items: list[dict], batch_size: int = 8, beam_size: int = 1,
                  progress: bool = True) -> list[dict]:
    """Decode ``items`` with any zoo ASR model (``model.transcribe``, batched, rich progress bar) and count
    word errors per utterance after the model's normaliser."""

    if model.task != "asr" or not hasattr(model, "transcribe"):
        raise ZooError(f"{getattr(model, 'source', 'the model')} is not a single-speaker ASR model "
                       f"(task {getattr(model, 'task', '?')!r})")
    for it in items:
        if not Path(it["audio"]).is_file():
            raise ZooError(f"audio file not found: {it['audio']}")
    sr = model.sample_rate
    inputs = [load_audio(it["audio"], sr, float(it["offset"]), it.get("duration")) if it.get("offset") is not None
              else str(it["audio"]) for it in items]
    hyps = model.transcribe(inputs, sample_rate=sr, batch_size=batch_size, beam_size=beam_size, progress=progress)
    norm = get_normalizer(model.normalizer)
    out = []
    for it, hyp in zip(items, hyps):
        ref, h = norm(it["text"]), norm(hyp)
        errors, words = edit_counts(h, ref)
        meta = {k: v for k, v in it.items() if k not in ("id", "audio", "text", "speaker", "offset", "duration")}
        out.append({"id": it["id"], "audio": str(it["audio"]), "speaker": it["speaker"], "errors": errors,
                    "words": words, "ref": ref, "hyp": h, **meta})
    return out


def write_records(records: list[dict], path: str | Path) -> Path:

    return atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def read_records(path: str | Path) -> list[dict]:

    return [r for _, r in json_lines(path)]


def metadata_columns(records: list[dict], exclude=("lat", "lon")) -> list[str]:
    """Metadata columns present on every record (minus ``exclude``), in first-seen order."""
    cols: list[str] = []
    for r in records:
        cols += [k for k in r if k not in RECORD_KEYS and k not in cols]
    return [c for c in cols if c not in exclude and all(c in r for r in records)]
