"""Scoring a speaker model on a trial list: the one code path behind ``zoo score``, the release script and
``benchmarks/sv.py``. Utterances come from a JSONL manifest (``id``, ``audio_filepath``, ``speaker``,
``gender``, optional ``offset``/``duration``), from the AN4 recipe, or are audio paths themselves."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zoo.audio import load_audio
from zoo.data.manifest import read_manifest
from zoo.data.trials import make_trials, read_trials
from zoo.errors import ManifestError, ZooError
from zoo.metrics.speaker import P_TARGETS, cosine_trial_scores, eer, sv_report


@dataclass
class Utt:
    path: str
    speaker: str | None = None
    gender: str | None = None
    offset: float = 0.0
    duration: float | None = None


def utts_from_manifest(path: str | Path) -> dict[str, Utt]:
    """Utterance id -> Utt. Ids are the ``id`` field (else the audio file's stem); duplicates are an error."""

    out: dict[str, Utt] = {}
    for e in read_manifest(path):
        uid = str(e.get("id") or Path(e["audio_filepath"]).stem)
        if uid in out:
            raise ManifestError(f"{path}:{e['_line']}: utterance id {uid!r} appears twice")
        out[uid] = Utt(e["audio_filepath"], e.get("speaker"), e.get("gender"), float(e.get("offset", 0.0)),
                       e.get("duration") if "offset" in e else None)
    return out


def utts_from_cuts(cuts) -> dict[str, Utt]:
    out = {}
    for c in cuts:
        s = c.supervisions[0]
        out[c.id] = Utt(str(c.recording.sources[0].source), s.speaker, getattr(s, "gender", None),
                        float(c.start), c.duration if c.start else None)
    return out


def an4_sv_set(split: str, data_dir=None, max_nontarget: int | None = None):
    """(trials, utts) of the AN4 speaker-verification ``dev`` or ``eval`` set (as ``zoo data an4-sv`` writes)."""
    from zoo.data.an4 import an4_speaker_split

    cuts = an4_speaker_split(data_dir)[split]
    utts = utts_from_cuts(cuts)
    return make_trials(((u, x.speaker) for u, x in utts.items()), max_nontarget), utts


def load_sv_set(trials_path: str | Path, manifest: str | Path | None = None):
    """(trials, utts) from files. Without a manifest every utterance id must be an audio path."""

    trials = read_trials(trials_path)
    if manifest is not None:
        utts = utts_from_manifest(manifest)
        missing = sorted({u for a, b, _ in trials for u in (a, b)} - set(utts))
        if missing:
            raise ManifestError(f"{len(missing)} utterance(s) of {trials_path} are not in {manifest} "
                                f"(e.g. {missing[0]!r})")
    else:
        utts = {}
        for a, b, _ in trials:
            for u in (a, b):
                if u not in utts:
                    if not Path(u).is_file():
                        raise ZooError(f"{trials_path}: {u!r} is not an audio file; pass --manifest to map "
                                       "utterance ids to audio")
                    utts[u] = Utt(u)
    return trials, utts


def embed_utts(model, utts: dict[str, Utt], ids=None, batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Embed the given utterance ids (default all): id -> (D,) normalised embedding."""

    ids = sorted(utts if ids is None else set(ids))
    wavs = [load_audio(utts[u].path, model.sample_rate, utts[u].offset, utts[u].duration) if utts[u].offset
            or utts[u].duration else utts[u].path for u in ids]
    emb = model.embed(wavs, sample_rate=model.sample_rate, batch_size=batch_size)
    return dict(zip(ids, emb))


def score_trials(emb: dict[str, torch.Tensor], trials, utts: dict[str, Utt]):
    """Cosine scores of the trials -> (scores (N,) numpy, labels (N,) numpy, enroll/test speakers and genders)."""
    scores, labels = cosine_trial_scores(emb, trials)
    side = lambda k, attr: [getattr(utts[t[k]], attr) for t in trials]  # noqa: E731
    return scores, labels, side(0, "speaker"), side(1, "speaker"), side(0, "gender"), side(1, "gender")


def evaluate_sv(model, trials, utts: dict[str, Utt], n_boot: int = 1000, seed: int = 0,
                p_targets=P_TARGETS) -> tuple[dict, np.ndarray, np.ndarray]:
    """Embed, score and report (see ``zoo.metrics.speaker.sv_report``). Speakers missing from the utterances
    make the bootstrap resample utterances instead. Returns (report, scores, labels)."""
    emb = embed_utts(model, utts, {u for a, b, _ in trials for u in (a, b)})
    scores, labels, es, ts, eg, tg = score_trials(emb, trials, utts)
    if any(s is None for s in es + ts):
        es = [a for a, _, _ in trials]
        ts = [b for _, b, _ in trials]
        unit = "utterance"
    else:
        unit = "speaker"
    has_gender = all(g is not None for g in eg + tg)
    rep = sv_report(scores, labels, es, ts, eg if has_gender else None, tg if has_gender else None,
                    p_targets=p_targets, n_boot=n_boot, seed=seed)
    if "ci" in rep:
        rep["ci_unit"] = unit
    return rep, scores, labels


def calibrate_threshold(model, trials, utts) -> float:
    """The cosine threshold at the equal-error point of ``trials`` (written to config.json by releases)."""
    emb = embed_utts(model, utts, {u for a, b, _ in trials for u in (a, b)})
    scores, labels, *_ = score_trials(emb, trials, utts)
    return eer(scores, labels)[1]
