"""Corpus recipes beside AN4: speechocean762 (Kaldi dirs, Ogg/Opus) and the alphanumeric accent corpus (FLAC +
prompts), as lhotse CutSets whose supervisions carry speaker metadata; ``sv_speaker_split``: the speaker
verification split over AN4 + speechocean762 (corpus-prefixed speaker ids); ``corpus_cuts`` dispatches by name.

Supervision fields: ``speaker``, ``gender`` (``f``/``m``), ``language``; ``custom``: ``corpus``, ``age`` (years),
``age_group`` (``child`` <= 15 < ``adult``) and, for alphanumeric, ``kind``, ``nationality``,
``native_language``, ``accent_strength_self``, ``english_familiarity``, ``lat``, ``lon``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.utils import fastcopy

from zoo.data.an4 import an4_cuts, an4_speaker_split, data_root
from zoo.errors import ZooError

CHILD_MAX_AGE = 15
# Speaker-disjoint dev slice of speechocean762 train: every DEV_EVERY-th speaker after sorting by
# (age group, gender, id), so dev has children and adults of both genders (16 of 125 speakers).
SO762_DEV_EVERY = 8


def _corpus_dir(data_dir, name: str, marker: str) -> Path:
    root = data_root(data_dir)
    d = root / name if (root / name).is_dir() else root
    if not (d / marker).exists():
        raise ZooError(f"{name} not found under {root} (expected {name}/{marker}); "
                       "pass --data-dir or set ZOO_DATA to the folder that holds it")
    return d


def _recording(path: Path, rec_id: str) -> Recording:
    if not path.is_file():
        raise ZooError(f"audio file not found: {path} — check the corpus copy")
    try:
        return Recording.from_file(path, recording_id=rec_id)
    except Exception:  # lhotse wraps each backend's failure differently
        raise ZooError(f"cannot read {path} as audio — the file is damaged or its codec is unsupported "
                       "(Ogg/Opus needs libsndfile >= 1.1)") from None


def age_group(age) -> str | None:
    return None if age is None else ("child" if int(age) <= CHILD_MAX_AGE else "adult")


# --- speechocean762 ----------------------------------------------------------------------------------
def _kaldi_map(path: Path, min_fields: int = 2) -> dict[str, str]:
    """``key value...`` lines (tab or space separated) -> {key: rest}; a malformed line raises ZooError."""
    if not path.is_file():
        raise ZooError(f"missing Kaldi file {path} — the corpus copy is incomplete")
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) < min_fields:
            raise ZooError(f"{path}:{n}: expected '<id> <value>', got {line.strip()!r}")
        out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return out


def _so762_split(d: Path, split: str) -> CutSet:
    kd = d / split
    text, wav, utt2spk = (_kaldi_map(kd / f) for f in ("text", "wav.scp", "utt2spk"))
    gender, age = _kaldi_map(kd / "spk2gender"), _kaldi_map(kd / "spk2age")
    recs, sups = [], []
    for utt in sorted(text):
        if utt not in wav or utt not in utt2spk:
            raise ZooError(f"{kd}: utterance {utt} has text but no wav.scp / utt2spk line")
        spk = utt2spk[utt]
        try:
            years = int(age[spk]) if spk in age else None
        except ValueError:
            raise ZooError(f"{kd / 'spk2age'}: age of speaker {spk} is not a number: {age[spk]!r}") from None
        rec = _recording(d / wav[utt], utt)
        recs.append(rec)
        sups.append(SupervisionSegment(
            id=utt, recording_id=utt, start=0.0, duration=rec.duration, text=text[utt].upper(), speaker=spk,
            gender=gender.get(spk), language="en",
            custom={"corpus": "speechocean762", "age": years, "age_group": age_group(years)}))
    return CutSet.from_manifests(RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups))


def speechocean762_cuts(data_dir=None) -> dict[str, CutSet]:
    """{"train", "dev", "test"}: dev = every ``SO762_DEV_EVERY``-th train speaker (sorted by age group,
    gender, id), train = the other train speakers, test = upstream test (disjoint speakers)."""
    d = _corpus_dir(data_dir, "speechocean762", "train/text")
    train_all = _so762_split(d, "train")
    spk_meta = {}
    for c in train_all:
        s = c.supervisions[0]
        spk_meta[s.speaker] = (s.custom["age_group"] or "", s.gender or "", s.speaker)
    ordered = sorted(spk_meta, key=lambda s: spk_meta[s])
    dev = set(ordered[::SO762_DEV_EVERY])
    return {"train": train_all.filter(lambda c: c.supervisions[0].speaker not in dev).to_eager(),
            "dev": train_all.filter(lambda c: c.supervisions[0].speaker in dev).to_eager(),
            "test": _so762_split(d, "test")}


# --- alphanumeric --------------------------------------------------------------------------------------
def _float_or_none(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _speakers_csv(path: Path) -> dict[str, dict]:
    if not path.is_file():
        raise ZooError(f"missing {path} — the corpus copy is incomplete")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for n, r in enumerate(rows, 2):
        if not r.get("speaker"):
            raise ZooError(f"{path}:{n}: row without a speaker id")
        age = _float_or_none(r.get("age"))
        out[r["speaker"]] = {
            "gender": {"female": "f", "male": "m"}.get((r.get("gender") or "").strip().lower()),
            "age": int(age) if age is not None else None,
            "nationality": r.get("nationality") or None, "native_language": r.get("native_language") or None,
            "english_familiarity": r.get("english_familiarity") or None,
            "accent_strength_self": _float_or_none(r.get("accent_strength_self")),
            "recording_device": r.get("recording_device") or None,
            "lat": _float_or_none(r.get("lat")), "lon": _float_or_none(r.get("lon"))}
    return out


def alphanumeric_cuts(data_dir=None, kinds: tuple[str, ...] = ("names", "numbers")) -> dict[str, CutSet]:
    """{"test"}: the recordings of ``kinds`` that have AN4-style prompt words (names spelled letter by letter,
    phone numbers digit by digit). References are the *prompts*, not checked transcripts. Evaluation only."""
    d = _corpus_dir(data_dir, "alphanumeric", "prompts.jsonl")
    speakers = _speakers_csv(d / "speakers.csv")
    recs, sups = [], []
    path = d / "prompts.jsonl"
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            audio, spk, kind = e["audio"], e["speaker"], e["kind"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ZooError(f"{path}:{n}: expected a JSON object with audio, speaker, kind") from None
        if kind not in kinds or not e.get("prompt_words"):
            continue
        rid = f"{kind}-{spk}"
        rec = _recording(d / audio, rid)
        meta = dict(speakers.get(spk, {}))
        recs.append(rec)
        sups.append(SupervisionSegment(
            id=rid, recording_id=rid, start=0.0, duration=rec.duration, text=e["prompt_words"], speaker=spk,
            gender=meta.pop("gender", None), language="en",
            custom={"corpus": "alphanumeric", "kind": kind, "age_group": age_group(meta.get("age")), **meta}))
    if not recs:
        raise ZooError(f"{path}: no recordings of kinds {list(kinds)} with prompt words")
    return {"test": CutSet.from_manifests(RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups))}


# --- speaker verification: AN4 + speechocean762 --------------------------------------------------------
# Speaker ids are prefixed with their corpus so they can never collide across corpora.
SV_SPEAKER_PREFIX = {"an4": "an4_", "speechocean762": "so762_"}


def prefix_speakers(cuts: CutSet, corpus: str) -> CutSet:
    """``cuts`` with every supervision's speaker prefixed by ``SV_SPEAKER_PREFIX[corpus]`` and ``custom``
    holding ``corpus``, ``age`` and ``age_group`` (None where the corpus does not say, e.g. AN4)."""
    pre = SV_SPEAKER_PREFIX[corpus]

    def fix(s):
        custom = {"corpus": corpus, "age": None, "age_group": None, **(s.custom or {})}
        return fastcopy(s, speaker=pre + s.speaker, custom=custom)

    return cuts.map_supervisions(fix).to_eager()


def sv_speaker_split(data_dir=None) -> dict[str, CutSet]:
    """Speaker-verification split over AN4 and speechocean762 (speakers prefixed ``an4_`` / ``so762_``):

    * ``train``: AN4-SV train (54 speakers, adults) + speechocean762 train minus its dev slice (109 speakers,
      51 children) = 163 speakers, 2,872 utterances;
    * ``dev``: AN4-SV dev (10) + speechocean762 dev (16: 7 children, 9 adults) = 26 speakers, 450 utterances
      (``val_eer``: checkpoint and threshold choice);
    * ``test``: speechocean762 test (125 speakers, 64 children; 2,500 utterances), the evaluation set of the
      fixed trial list ``data/trials/so762_test_trials.txt`` (``zoo.data.trials.so762_test_trials``);
    * ``an4_eval``: AN4-SV eval (20 speakers; ``zoo data an4-sv`` scores it with unprefixed ids).

    All four are speaker-disjoint. Supervisions keep ``gender`` and ``custom`` ``corpus``, ``age``,
    ``age_group`` (AN4 has no ages: None).
    """
    an4 = an4_speaker_split(data_dir)
    so = speechocean762_cuts(data_dir)
    a = {k: prefix_speakers(v, "an4") for k, v in an4.items()}
    s = {k: prefix_speakers(v, "speechocean762") for k, v in so.items()}
    return {"train": (a["train"] + s["train"]).to_eager(), "dev": (a["dev"] + s["dev"]).to_eager(),
            "test": s["test"], "an4_eval": a["eval"]}


# --- dispatch ------------------------------------------------------------------------------------------
CORPORA = {"an4": an4_cuts, "an4_spk": an4_speaker_split, "speechocean762": speechocean762_cuts,
           "alphanumeric": alphanumeric_cuts, "an4_so762_spk": sv_speaker_split}
# Recipes whose splits are speaker-disjoint speaker-verification sets (SpeechDataModule adds speaker labels).
SPEAKER_RECIPES = ("an4_spk", "an4_so762_spk")


def corpus_cuts(name: str, data_dir=None) -> dict[str, CutSet]:
    """The splits of a named corpus recipe (``train`` / ``dev`` / ``test``; an4_spk: ``eval`` for test;
    an4_so762_spk: + ``an4_eval``)."""
    if name not in CORPORA:
        raise ZooError(f"unknown corpus {name!r} — choose one of {', '.join(sorted(CORPORA))}")
    return CORPORA[name](data_dir)
