"""Manifests -> entries / lhotse CutSets: the one place that reads (and validates) them.

Formats:

* NeMo-style JSONL: one JSON object per line: ``audio_filepath`` (relative paths resolve against the manifest's
  folder), ``duration`` (s), ``text``, optional ``offset``, ``speaker``, ``gender`` and any other metadata.
* two-speaker mixture sessions (``zoo data an4-mix``): one session per line, ``id`` and a list of ``turns``.
* lhotse cut manifests (``*.jsonl[.gz]`` with ``type`` keys).

Every error is a one-line :class:`~zoo.errors.ManifestError` ``path:line: what is wrong — what to do``.
This module is the lowest layer of ``zoo.data``: it imports no other ``zoo.data`` module (``zoo.data.mix``
imports it), and lhotse / soundfile only where needed, so ``zoo transcribe --manifest`` stays light.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from zoo.errors import ManifestError
from zoo.io import atomic_path

if TYPE_CHECKING:  # lhotse is imported where needed: read_manifest (used by the CLI) needs only json
    from lhotse import CutSet, Recording
    from lhotse.cut import MixedCut, MonoCut

_RESERVED = {"audio_filepath", "duration", "text", "offset", "speaker", "gender", "id"}
SLACK = 0.02  # s: offset + duration may pass the end of the audio by this much (times rounded to 10 ms)
_RELATIVE = "a relative path is resolved against the manifest's folder"


def json_lines(path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed JSON) of each non-blank line of a UTF-8 file (a BOM is allowed).

    A missing file, a line that is not UTF-8 and a line that is not JSON raise ManifestError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path} — check the path")
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise ManifestError(f"{path}:{n}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column "
                                    f"{err.start + 1}) — save the manifest as UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{path}:{n}: not valid JSON ({err.msg}) — write one JSON object per line") \
                    from None
            yield n, obj


# --- field checks (shared by the NeMo and the mixture-session readers) -----------------------------------------
def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _seconds(e: dict, key: str, where: str, positive: bool) -> None:
    """``e[key]``, when present, is a finite number of seconds, > 0 (``positive``) or >= 0."""
    if key not in e:
        return
    v = e[key]
    if not _is_number(v):
        raise ManifestError(f"{where}: '{key}' must be a number of seconds (got {json.dumps(v)}) — "
                            f"write e.g. \"{key}\": 1.5")
    if positive and not (math.isfinite(v) and v > 0):
        raise ManifestError(f"{where}: '{key}' must be a positive, finite number of seconds (got {v}) — "
                            "fix or drop the line")
    if not positive and not (math.isfinite(v) and v >= 0):
        raise ManifestError(f"{where}: '{key}' must be a non-negative number of seconds (got {v}) — "
                            "fix or drop the line")


def _text(e: dict, where: str, require_text: bool) -> None:
    t = e.get("text")
    if t is not None and not isinstance(t, str):
        raise ManifestError(f"{where}: 'text' must be a string (got {json.dumps(t)}) — quote the transcript, "
                            f"e.g. \"text\": \"{t}\"")
    if require_text and t is None:
        raise ManifestError(f"{where}: no 'text' (reference transcript) — add one to every line; only "
                            "`zoo transcribe` reads manifests without references")


def _audio_path(e: dict, where: str, folder: Path) -> Path:
    a = e.get("audio_filepath")
    if not isinstance(a, str) or not a.strip():
        raise ManifestError(f"{where}: 'audio_filepath' must be a non-empty string (got {json.dumps(a)}) — "
                            "give the audio file's path")
    p = Path(a)
    return p if p.is_absolute() else folder / p


def _check_span(offset: float, duration: float | None, total: float, audio, where: str) -> None:
    end = offset + (duration or 0.0)
    if offset >= total or end > total + SLACK:
        span = f"offset {offset} + duration {duration} s" if duration is not None else f"offset {offset} s"
        raise ManifestError(f"{where}: {span} lies outside the {total:.3f} s recording {audio} — "
                            "fix 'offset' / 'duration'")


def _audio_seconds(p: Path, cache: dict) -> float | None:
    """Length (s) of an audio file from its header (soundfile.info), None when libsndfile cannot read it (the
    loader then tries its other backends and reports the file)."""
    key = str(p)
    if key not in cache:
        import soundfile as sf

        try:
            info = sf.info(key)
            cache[key] = info.frames / info.samplerate if info.samplerate > 0 and info.frames > 0 else None
        except Exception:  # libsndfile's own error types
            cache[key] = None
    return cache[key]


def _check_audio(p: Path, offset: float, duration: float | None, where: str, cache: dict) -> None:
    if not p.is_file():
        raise ManifestError(f"{where}: audio file not found: {p} — fix 'audio_filepath' ({_RELATIVE})")
    total = _audio_seconds(p, cache)
    if total is not None:
        _check_span(offset, duration, total, p, where)


# --- NeMo manifests -------------------------------------------------------------------------------------------
def iter_manifest(path: str | Path, *, require_text: bool = False, check_audio: bool = True) -> Iterator[dict]:
    """:func:`read_manifest`, lazily: each entry is validated as it is read (an empty manifest raises when the
    iteration ends)."""
    path = Path(path)
    cache: dict[str, float | None] = {}
    count = 0
    for n, e in json_lines(path):
        where = f"{path}:{n}"
        if not isinstance(e, dict) or "audio_filepath" not in e:
            raise ManifestError(f"{where}: each line must be a JSON object with 'audio_filepath' — e.g. "
                                '{"audio_filepath": "a.wav", "duration": 1.5, "text": "HELLO"}')
        audio = _audio_path(e, where, path.parent)
        _seconds(e, "duration", where, positive=True)
        _seconds(e, "offset", where, positive=False)
        _text(e, where, require_text)
        if check_audio:
            _check_audio(audio, float(e.get("offset", 0.0)), e.get("duration"), where, cache)
        e["audio_filepath"] = str(audio)
        e["_line"] = n
        count += 1
        yield e
    if not count:
        raise ManifestError(f"{path}: the manifest is empty — write one JSON object per utterance (line)")


def read_manifest(path: str | Path, *, require_text: bool = False, check_audio: bool = True) -> list[dict]:
    """The validated entries of a NeMo JSONL manifest: the manifest validator every reader uses.

    Checks, each failure a one-line ``ManifestError`` ``path:line: what is wrong — what to do``:

    * the file exists, is UTF-8 and has at least one entry (an empty manifest is an error);
    * each non-blank line is a JSON object with ``audio_filepath`` (a non-empty string);
    * ``duration``, if present, is a positive finite number; ``offset``, if present, a finite number >= 0;
    * ``text``, if present and not null, is a string (``"text": 42`` is an error); with ``require_text``
      (evaluation, training) every line must have one (``""`` is allowed); without it (transcription) a
      missing or null ``text`` is fine;
    * with ``check_audio``: the audio file exists and, when ``soundfile.info`` can read its header,
      ``offset`` (+ ``duration``) lies inside it (up to ``SLACK`` s).

    Returns the entries in file order: the line's fields, ``audio_filepath`` made absolute (relative paths
    resolve against the manifest's folder) and ``_line`` (its 1-based line number). ``duration`` and
    ``offset`` are left as written (possibly absent). See :func:`iter_manifest` for a lazy version.
    """
    return list(iter_manifest(path, require_text=require_text, check_audio=check_audio))


def _entry_to_cut(e: dict, path: Path) -> MonoCut:
    from lhotse import Recording, SupervisionSegment
    from lhotse.cut import MonoCut

    where = f"{path}:{e['_line']}"
    if "duration" not in e:
        raise ManifestError(f"{where}: 'duration' is required for training manifests — add the utterance's "
                            "length in seconds")
    offset = float(e.get("offset", 0.0))
    if not Path(e["audio_filepath"]).is_file():
        raise ManifestError(f"{where}: audio file not found: {e['audio_filepath']} — fix 'audio_filepath' "
                            f"({_RELATIVE})")
    try:
        rec = Recording.from_file(e["audio_filepath"])
    except Exception:  # lhotse wraps every backend's failure in its own error type
        raise ManifestError(f"{where}: cannot read {e['audio_filepath']} as audio — convert it to WAV or FLAC") \
            from None
    _check_span(offset, float(e["duration"]), rec.duration, e["audio_filepath"], where)
    cid = e.get("id") or f"{rec.id}-{e['_line']}"
    extra = {k: v for k, v in e.items() if k not in _RESERVED and not k.startswith("_")}
    sup = SupervisionSegment(id=cid, recording_id=rec.id, start=offset, duration=float(e["duration"]),
                             text=e.get("text"), speaker=e.get("speaker"), gender=e.get("gender"),
                             custom=extra or None)
    return MonoCut(id=cid, start=offset, duration=float(e["duration"]), channel=0, recording=rec,
                   supervisions=[sup.with_offset(-offset)])


class _LazyNemo:
    """Iterable of cuts read lazily from a NeMo manifest (corpora larger than RAM)."""

    def __init__(self, path, require_text: bool = False):
        self.path = Path(path)
        self.require_text = require_text

    def __iter__(self):
        # the audio is checked by _entry_to_cut, which reads every header anyway
        for e in iter_manifest(self.path, require_text=self.require_text, check_audio=False):
            yield _entry_to_cut(e, self.path)


def load_cuts(path: str | Path, lazy: bool = False, *, require_text: bool = False) -> CutSet:
    """A NeMo JSONL manifest, a mixture-session manifest or a lhotse cuts manifest (``*.jsonl[.gz]`` with
    ``type`` keys) as a CutSet, validated as :func:`read_manifest` does (NeMo: ``duration`` is also required
    and the audio must be readable). ``require_text``: every utterance needs a reference transcript (training
    and evaluation of ASR). ``lazy``: read as iterated; errors are then raised when iteration reaches them
    (a lazily read lhotse cut manifest is not checked)."""
    from lhotse import CutSet

    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path} — check the path")
    if is_mix_manifest(path):  # two-speaker sessions written by `zoo data an4-mix`
        return read_mix_manifest(path, require_text=require_text)
    if ".jsonl" in path.name and _is_lhotse(path):
        if lazy:
            return CutSet.from_jsonl_lazy(path)
        cuts = CutSet.from_file(path)
        _check_lhotse_cuts(cuts, path, require_text)
        return cuts
    cuts = CutSet(_LazyNemo(path, require_text))
    return cuts if lazy else cuts.to_eager()


def _check_lhotse_cuts(cuts: CutSet, path: Path, require_text: bool) -> None:
    if not len(cuts):
        raise ManifestError(f"{path}: the manifest is empty — write one cut per line")
    if require_text:
        for n, c in enumerate(cuts, 1):  # one cut per line
            if not c.supervisions or any(s.text is None for s in c.supervisions):
                raise ManifestError(f"{path}:{n}: cut {c.id} has no transcript (a supervision without 'text') "
                                    "— add one to every supervision")


def _is_lhotse(path: Path) -> bool:
    from lhotse.serialization import open_best

    try:
        with open_best(path) as f:
            obj = json.loads(f.readline())
    except (ValueError, TypeError, OSError):  # not JSON / not UTF-8 (ValueErrors): the NeMo reader names the line
        return False
    return isinstance(obj, dict) and "audio_filepath" not in obj and ("type" in obj or "recording" in obj)


# --- two-speaker mixture sessions (zoo.data.mix writes them) --------------------------------------------------
def _turn_cut(rec: Recording, offset: float, duration: float, speaker: str, text: str,
              gender: str | None = None) -> MonoCut:
    """One session turn: ``duration`` s of ``rec`` from ``offset``, one supervision over all of it."""
    from lhotse import SupervisionSegment
    from lhotse.cut import MonoCut

    cid = f"{rec.id}_{int(round(offset * 100))}_{int(round(duration * 100))}"
    sup = SupervisionSegment(id=cid, recording_id=rec.id, start=0.0, duration=duration, text=text,
                             speaker=speaker, gender=gender, language="en")
    return MonoCut(id=cid, start=offset, duration=duration, channel=0, recording=rec, supervisions=[sup])


def build_session(session_id: str, turns: Sequence[tuple[MonoCut, float]]) -> MixedCut:
    """A MixedCut of ``(cut, start_s)`` turns at their session start times (0 dB, no gain change)."""
    from lhotse.cut import MixedCut
    from lhotse.cut.mixed import MixTrack

    turns = sorted(turns, key=lambda x: x[1])
    return MixedCut(id=session_id, tracks=[MixTrack(cut=c, offset=s) for c, s in turns])


def is_mix_manifest(path: str | Path) -> bool:
    """Whether the first line is a mixture session (a JSON object with a list of ``turns``)."""
    from lhotse.serialization import open_best

    try:
        with open_best(path) as f:
            obj = json.loads(f.readline())
    except (ValueError, OSError):  # not JSON / not text (JSONDecodeError and UnicodeDecodeError are ValueErrors)
        return False
    return isinstance(obj, dict) and isinstance(obj.get("turns"), list)


_SESSION = "as written by `zoo data an4-mix`"


def read_mix_manifest(path: str | Path, *, require_text: bool = False) -> CutSet:
    """Sessions of a ``zoo.data.mix.write_mix_manifest`` file as MixedCuts (the same audio, sample for sample).

    Validated like :func:`read_manifest`: every line a JSON object with ``id`` and a non-empty list of
    ``turns``; every turn a JSON object with ``audio_filepath`` (an existing, readable file), ``offset`` (>= 0),
    ``duration`` (> 0; offset + duration inside the file), ``start`` (>= 0, in the session), ``speaker`` and a
    string ``text`` (required with ``require_text``); at least one session."""
    from lhotse import CutSet, Recording

    path = Path(path)
    recs: dict[str, Recording] = {}
    out = []
    for n, e in json_lines(path):
        where = f"{path}:{n}"
        if not isinstance(e, dict) or "id" not in e or not isinstance(e.get("turns"), list):
            raise ManifestError(f"{where}: not a mixture-session line — each line needs an 'id' and a list of "
                                f"'turns' ({_SESSION})")
        if not e["turns"]:
            raise ManifestError(f"{where}: a session needs at least one turn — drop the line or add its turns")
        turns = []
        for i, t in enumerate(e["turns"], 1):
            tw = f"{where}: turn {i}"
            if not isinstance(t, dict):
                raise ManifestError(f"{tw} is not a JSON object — write each turn as {{\"audio_filepath\": ..., "
                                    f"\"offset\": ..., \"duration\": ..., \"start\": ..., \"speaker\": ...}}")
            missing = [k for k in ("audio_filepath", "offset", "duration", "start", "speaker") if k not in t]
            if missing:
                raise ManifestError(f"{tw}: no {', '.join(repr(k) for k in missing)} — every turn needs "
                                    f"audio_filepath, offset, duration, start and speaker ({_SESSION})")
            p = _audio_path(t, tw, path.parent)
            _seconds(t, "offset", tw, positive=False)
            _seconds(t, "duration", tw, positive=True)
            _seconds(t, "start", tw, positive=False)
            _text(t, tw, require_text)
            if str(p) not in recs:
                if not p.is_file():
                    raise ManifestError(f"{tw}: audio file not found: {p} — fix 'audio_filepath' ({_RELATIVE})")
                try:
                    recs[str(p)] = Recording.from_file(p)
                except Exception:  # lhotse wraps every backend's failure in its own error type
                    raise ManifestError(f"{tw}: cannot read {p} as audio — convert it to WAV or FLAC") from None
            rec = recs[str(p)]
            _check_span(float(t["offset"]), float(t["duration"]), rec.duration, p, tw)
            c = _turn_cut(rec, float(t["offset"]), float(t["duration"]), str(t["speaker"]), t.get("text") or "",
                          t.get("gender"))
            turns.append((c, float(t["start"])))
        m = build_session(str(e["id"]), turns)
        m.custom = {"overlap_bin": e.get("overlap_bin")}
        out.append(m)
    if not out:
        raise ManifestError(f"{path}: the manifest is empty — write one session per line ({_SESSION})")
    return CutSet.from_cuts(out)


# --- writing ----------------------------------------------------------------------------------------------------
def write_manifest(cuts: CutSet, path: str | Path, with_id: bool = False) -> Path:
    """Write cuts as a NeMo JSONL manifest with paths relative to its folder (atomic).

    ``with_id``: also write each cut's ``id`` (trials files name utterances by it)."""
    path = Path(path)
    with atomic_path(path) as tmp:  # never leaves a partial file behind
        _write_entries(cuts, tmp, path.parent.resolve(), with_id)
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
