"""Speaker-verification trial lists in the Kaldi / WeSpeaker format: one ``enroll_utt test_utt target|nontarget``
per line, utterance ids resolved through a JSONL manifest (``id``, ``audio_filepath``, ``speaker``, ``gender``)."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable

import numpy as np

from zoo.errors import ManifestError

LABELS = {"target": True, "nontarget": False}


def make_trials(utts: Iterable[tuple[str, str]], max_nontarget: int | None = None,
                seed: int = 0) -> list[tuple[str, str, bool]]:
    """Every cross-utterance pair of ``(utt_id, speaker)`` items, as ``(enroll, test, is_target)``.

    Utterances are sorted by id and each unordered pair appears once (enroll < test). With ``max_nontarget``,
    nontarget pairs are subsampled to that many (uniformly, ``numpy.random.default_rng(seed)``, original
    order kept); target pairs are always all kept.
    """
    items = sorted(set(utts))
    ids = [u for u, _ in items]
    if len(ids) != len(set(ids)):
        raise ValueError("an utterance id appears with two different speakers")
    pairs = [(a[0], b[0], a[1] == b[1]) for a, b in itertools.combinations(items, 2)]
    if max_nontarget is not None:
        non = [i for i, p in enumerate(pairs) if not p[2]]
        if len(non) > max_nontarget:
            keep = set(np.random.default_rng(seed).choice(non, size=max_nontarget, replace=False).tolist())
            pairs = [p for i, p in enumerate(pairs) if p[2] or i in keep]
    return pairs


def write_trials(trials: Iterable[tuple[str, str, bool]], path: str | Path) -> Path:
    """Write a trials file atomically."""
    from zoo.io import atomic_write_text

    return atomic_write_text(path, "".join(f"{a} {b} {'target' if t else 'nontarget'}\n" for a, b, t in trials))


def read_trials(path: str | Path) -> list[tuple[str, str, bool]]:
    """Read a trials file; a malformed line raises ManifestError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"trials file not found: {path}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        f = line.split()
        if len(f) != 3 or f[2] not in LABELS:
            raise ManifestError(f"{path}:{n}: expected 'enroll_utt test_utt target|nontarget', got {line.strip()!r}")
        out.append((f[0], f[1], LABELS[f[2]]))
    if not out:
        raise ManifestError(f"{path} has no trials")
    return out


def write_sv_data(out_dir: str | Path, data_dir=None, max_nontarget: int | None = None) -> list[Path]:
    """The AN4 speaker-verification split: ``{train,dev,eval}.jsonl`` (with ids, speaker, gender) and
    ``{dev,eval}_trials.txt`` (all cross-utterance pairs within each set) in ``out_dir``."""
    from zoo.data.an4 import an4_speaker_split
    from zoo.data.manifest import write_manifest

    out_dir = Path(out_dir)
    split = an4_speaker_split(data_dir)
    paths = [write_manifest(cuts, out_dir / f"{name}.jsonl", with_id=True) for name, cuts in split.items()]
    for name in ("dev", "eval"):
        utts = [(c.id, c.supervisions[0].speaker) for c in split[name]]
        paths.append(write_trials(make_trials(utts, max_nontarget), out_dir / f"{name}_trials.txt"))
    return paths
