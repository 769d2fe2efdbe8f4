"""One way to turn "a corpus split or a manifest" into evaluation items (plain dicts), for ``zoo evaluate``,
``zoo audit`` and the benchmarks."""
from __future__ import annotations

from pathlib import Path

from zoo.data.manifest import read_manifest
from zoo.errors import ZooError

# manifest fields that are not metadata columns
_NOT_META = {"audio_filepath", "duration", "text", "offset", "id", "speaker", "_line"}


def cut_item(cut, corpus: str | None = None) -> dict:
    """A single-supervision cut -> ``{"id", "audio", "offset", "duration", "text", "speaker", "gender",
    "language", "corpus", **custom metadata}`` (speechocean762: ``age``, ``age_group``; alphanumeric:
    ``kind``, ``nationality``, ``native_language``, ``lat``, ``lon``, ...)."""
    sup = cut.supervisions[0]
    custom = dict(sup.custom or {})
    item = {"id": sup.id, "audio": cut.recording.sources[0].source, "offset": cut.start or None,
            "duration": cut.duration, "text": sup.text, "speaker": sup.speaker, "gender": sup.gender,
            "language": sup.language, "corpus": custom.pop("corpus", corpus)}
    item.update({k: v for k, v in custom.items() if k not in item})
    return item


def load_items(corpus: str | None = "an4", split: str = "test", manifest: str | None = None,
               data_dir: str | None = None, require_text: bool = True, require_speaker: bool = False) -> list[dict]:
    """Items of a NeMo JSONL manifest (validated by :func:`zoo.data.manifest.read_manifest`; every extra field
    is kept as metadata) or of a corpus recipe split (:func:`zoo.data.corpora.corpus_cuts`).

    ``require_text``: every item needs a reference (scoring); ``require_speaker``: every item needs a speaker
    (cohort audits and per-speaker confidence intervals).
    """
    if manifest:

        items = []
        for e in read_manifest(manifest, require_text=require_text):
            if require_speaker and e.get("speaker") in (None, ""):
                raise ZooError(f"{manifest}:{e['_line']}: no 'speaker' field — an audit needs a speaker per "
                               "utterance (cohorts and confidence intervals are per speaker)")
            items.append({"id": e.get("id") or f"{Path(e['audio_filepath']).stem}-{e['_line']}",
                          "audio": e["audio_filepath"], "offset": e.get("offset"), "duration": e.get("duration"),
                          "text": e.get("text") or "",
                          "speaker": None if e.get("speaker") is None else str(e["speaker"]),
                          **{k: v for k, v in e.items() if k not in _NOT_META}})
        return items
    from zoo.data.corpora import CORPORA, corpus_cuts

    corpus = corpus or "an4"
    if corpus not in CORPORA:
        raise ZooError(f"unknown corpus {corpus!r} — choose one of {', '.join(sorted(CORPORA))} or give --manifest")
    splits = corpus_cuts(corpus, data_dir)
    if split not in splits:
        raise ZooError(f"corpus {corpus} has no {split!r} split — choose one of {', '.join(sorted(splits))}")
    return [cut_item(c, corpus) for c in splits[split]]
