"""Two-speaker sessions mixed on the fly from single-speaker cuts (lhotse ``MixedCut``), fixed evaluation
sets written as manifests, and ``zoo mix``.

A session has ``min_turns``..``max_turns`` turns spoken alternately by two different speakers A, B, A, B...
Each turn is one source utterance trimmed to its speech (frame energy within ``trim_db`` of the loudest
frame, plus ``margin`` s). Per session an overlap bin is drawn (``overlap_weights``); every transition
turn k-1 -> k then gets an overlap ratio r ~ U(lo, hi) of that bin, relative to the shorter of the two
turns: turn k starts ``r * min(d_{k-1}, d_k)`` s before turn k-1 ends; with r = 0 it starts after a gap
drawn from ``gap`` (s). With r <= 0.5 a speaker never overlaps their own previous turn, so each transition's
overlap is exactly what was drawn. Times are multiples of 10 ms, so a manifest stores them exactly.

Each session's turns are its supervisions: (speaker, start, end, text) in session time, read with
:func:`cut_turns` (the DataModule puts them in every batch as ``turns``).
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
from lhotse import CutSet
from lhotse.cut import MixedCut, MonoCut

from zoo.audio import load_audio

# the session manifest reader lives with the other readers (zoo.data.manifest imports no zoo.data module)
from zoo.data.manifest import _turn_cut, build_session, is_mix_manifest, read_mix_manifest  # noqa: F401
from zoo.errors import ZooError
from zoo.io import atomic_path, atomic_write_text
from zoo.metrics.multitalker import overlap_ratio

# per-transition overlap ratio ranges (overlap / shorter turn); "none" = a gap instead
OVERLAP_BINS: dict[str, tuple[float, float]] = {"none": (0.0, 0.0), "light": (0.05, 0.2),
                                                "medium": (0.2, 0.35), "heavy": (0.35, 0.5)}
STEP = 0.01  # s: every time is a multiple of this
# the fixed AN4 mixture evaluation set (zoo data an4-mix defaults; the DataModule's test split)
AN4_MIX_TEST = {"sessions": 200, "seed": 0}
AN4_MIX_DEV = {"sessions": 100, "seed": 1}


def _q(x: float) -> float:
    return round(round(x / STEP) * STEP, 2)


def _floor(x: float) -> float:
    return round(int(x / STEP + 1e-6) * STEP, 2)


def cut_turns(cut) -> list[tuple[str, float, float, str]]:
    """(speaker, start_s, end_s, text) of each supervision, clipped to the cut, in start order."""
    out = []
    for s in cut.supervisions:
        start, end = max(0.0, s.start), min(cut.duration, s.end)
        if end > start:
            out.append((s.speaker, round(start, 4), round(end, 4), s.text or ""))
    return sorted(out, key=lambda t: (t[1], t[2]))


def speech_bounds(audio: np.ndarray, sr: int, trim_db: float = 35.0, frame_s: float = 0.025,
                  hop_s: float = 0.01) -> tuple[float, float]:
    """(start_s, end_s) of the frames whose energy is within ``trim_db`` of the loudest frame."""
    a = np.asarray(audio, dtype=np.float64).reshape(-1)
    win, hop = int(frame_s * sr), int(hop_s * sr)
    if a.size < win:
        return 0.0, a.size / sr
    n = 1 + (a.size - win) // hop
    idx = np.arange(win)[None] + hop * np.arange(n)[:, None]
    db = 10 * np.log10((a[idx] ** 2).mean(1) + 1e-12)
    on = np.nonzero(db >= db.max() - trim_db)[0]
    return on[0] * hop / sr, min(a.size / sr, (on[-1] * hop + win) / sr)


class SessionMixer:
    """Cut transform (``CutSet -> CutSet``, the DataModule's ``cut_transforms`` hook): every cut of a batch
    becomes the first turn of a two-speaker session whose other turns come from ``pool``.

    Args:
        pool: single-speaker cuts to draw turns from (the training cuts); needs >= 2 speakers.
        min_turns, max_turns: turns per session (uniform).
        overlap_bins: name -> (lo, hi) per-transition overlap ratio (0 <= lo <= hi <= 0.5); ``(0, 0)``: a gap.
        overlap_weights: name -> probability of a session drawing that bin (default: uniform).
        gap: (lo, hi) s of silence between non-overlapping turns.
        trim_db, margin: trim each source utterance to its speech (None: no trimming), + margin s each side.
        seed: the transform draws from ``Random(seed, call number, batch cut ids)``: deterministic in the
            sequence of batches it sees.
    """

    def __init__(self, pool: CutSet, min_turns: int = 2, max_turns: int = 4,
                 overlap_bins: dict[str, tuple[float, float]] | None = None,
                 overlap_weights: dict[str, float] | None = None, gap: tuple[float, float] = (0.1, 1.0),
                 trim_db: float | None = 35.0, margin: float = 0.05, seed: int = 0):
        self.bins = {k: (float(v[0]), float(v[1])) for k, v in (overlap_bins or OVERLAP_BINS).items()}
        for k, (lo, hi) in self.bins.items():
            if not 0.0 <= lo <= hi <= 0.5:
                raise ValueError(f"overlap bin {k!r}: need 0 <= lo <= hi <= 0.5 (got {lo}, {hi})")
        w = overlap_weights or {k: 1.0 for k in self.bins}
        unknown = set(w) - set(self.bins)
        if unknown:
            raise ValueError(f"overlap_weights name unknown bins {sorted(unknown)}; bins: {sorted(self.bins)}")
        self.weights = {k: float(w.get(k, 0.0)) for k in self.bins}
        if sum(self.weights.values()) <= 0:
            raise ValueError("overlap_weights must give some bin a positive weight")
        if not 1 <= min_turns <= max_turns:
            raise ValueError(f"need 1 <= min_turns <= max_turns (got {min_turns}, {max_turns})")
        if not 0 <= gap[0] <= gap[1]:
            raise ValueError(f"gap must be (lo, hi) with 0 <= lo <= hi (got {gap})")
        self.min_turns, self.max_turns, self.gap = min_turns, max_turns, (float(gap[0]), float(gap[1]))
        self.trim_db, self.margin, self.seed = trim_db, margin, seed
        self.by_spk: dict[str, list] = {}
        for c in pool:
            self.by_spk.setdefault(c.supervisions[0].speaker, []).append(c)
        self.speakers = sorted(self.by_spk)
        if len(self.speakers) < 2:
            raise ValueError(f"mixing needs cuts of at least 2 speakers (got {len(self.speakers)})")
        self._bounds: dict[str, tuple[float, float]] = {}
        self._calls = 0

    # --- one session ---------------------------------------------------------------------------
    def _trimmed(self, c) -> MonoCut:
        """The cut trimmed to its speech (+ margin), times on the 10 ms grid, one supervision over all of it."""
        if c.id not in self._bounds:
            if self.trim_db is None:
                s, e = 0.0, c.duration
            else:
                s, e = speech_bounds(c.load_audio(), c.sampling_rate, self.trim_db)
                s, e = max(0.0, s - self.margin), min(c.duration, e + self.margin)
            s = _q(s)
            self._bounds[c.id] = (s, max(STEP, _floor(min(e, c.duration) - s)))
        s, d = self._bounds[c.id]
        sup = c.supervisions[0]
        return _turn_cut(c.recording, _q(c.start + s), d, sup.speaker, sup.text or "",
                         getattr(sup, "gender", None))

    def session(self, first, rng: random.Random, session_id: str | None = None) -> MixedCut:
        """A session whose first turn is ``first`` (speaker A) and whose speaker B differs from A."""
        a = first.supervisions[0].speaker
        b = rng.choice([s for s in self.speakers if s != a])
        n = rng.randint(self.min_turns, self.max_turns)
        names = list(self.bins)
        bin_name = rng.choices(names, weights=[self.weights[k] for k in names])[0]
        lo, hi = self.bins[bin_name]
        used = {first.id}
        cuts = [self._trimmed(first)]
        for k in range(1, n):
            spk = (a, b)[k % 2]
            cands = [c for c in self.by_spk.get(spk, []) if c.id not in used] or self.by_spk.get(spk, [first])
            c = rng.choice(cands)
            used.add(c.id)
            cuts.append(self._trimmed(c))
        starts = [0.0]
        for k in range(1, n):
            prev_end = starts[-1] + cuts[k - 1].duration
            if hi <= 0:
                starts.append(_q(prev_end + rng.uniform(*self.gap)))
            else:
                r = rng.uniform(lo, hi)
                ov = _q(r * min(cuts[k - 1].duration, cuts[k].duration))
                starts.append(_q(prev_end - ov))
        sid = session_id or f"mix-{first.id}-{rng.randrange(1 << 30):08x}"
        m = build_session(sid, list(zip(cuts, starts)))
        m.custom = {"overlap_bin": bin_name}
        return m

    def __call__(self, cuts: CutSet) -> CutSet:
        ids = [c.id for c in cuts]
        rng = random.Random(f"{self.seed}:{self._calls}:{','.join(ids)}")
        self._calls += 1
        return CutSet.from_cuts([self.session(c, rng) for c in cuts])


def make_sessions(cuts: CutSet, num_sessions: int, seed: int = 0, prefix: str = "an4mix", **mixer_kwargs) -> CutSet:
    """``num_sessions`` fixed sessions from ``cuts`` only (first turns drawn from the cuts sorted by id)."""
    if num_sessions < 1:
        raise ZooError(f"--sessions must be at least 1 (got {num_sessions})")
    mixer = SessionMixer(cuts, seed=seed, **mixer_kwargs)
    rng = random.Random(seed)
    pool = sorted(cuts, key=lambda c: c.id)
    return CutSet.from_cuts([mixer.session(rng.choice(pool), rng, f"{prefix}-{seed}-{i:04d}")
                             for i in range(num_sessions)])


# --- manifests -------------------------------------------------------------------------------------
def write_mix_manifest(sessions: CutSet, path: str | Path) -> Path:
    """One JSON line per session: ``id``, ``duration``, ``overlap_ratio``, ``overlap_bin``, ``turns`` (each:
    ``audio_filepath`` relative to the manifest's folder, ``offset`` and ``duration`` in the source file,
    ``start`` in the session, ``speaker``, ``gender``, ``text``). Written atomically."""

    path = Path(path)
    folder = path.parent.resolve() if path.parent.exists() else Path(os.path.abspath(path.parent))
    lines = []
    for s in sessions:
        turns = []
        for tr in s.tracks:
            c = tr.cut
            sup = c.supervisions[0]
            src = Path(c.recording.sources[0].source).resolve()
            turns.append({"audio_filepath": os.path.relpath(src, folder), "offset": round(c.start, 2),
                          "duration": round(c.duration, 2), "start": round(tr.offset, 2), "speaker": sup.speaker,
                          "gender": getattr(sup, "gender", None), "text": sup.text})
        lines.append(json.dumps({"id": s.id, "duration": round(s.duration, 2),
                                 "overlap_ratio": round(overlap_ratio(cut_turns(s)), 4),
                                 "overlap_bin": (s.custom or {}).get("overlap_bin"), "turns": turns}))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def fixed_sessions(cuts: CutSet, split: str, sessions: int | None = None, seed: int | None = None) -> CutSet:
    """The fixed evaluation sessions of a split (``test`` / ``dev``) from that split's cuts only, with the
    default mixer settings (the same for every model, whatever its training mix)."""
    d = AN4_MIX_TEST if split == "test" else AN4_MIX_DEV
    return make_sessions(cuts, d["sessions"] if sessions is None else sessions, d["seed"] if seed is None else seed,
                         prefix=f"an4mix-{split}")


def write_an4_mix(out: str | Path, sessions: int | None = None, seed: int | None = None, data_dir=None,
                  split: str = "test") -> Path:
    """The fixed AN4 mixture set of ``split`` (``test``: AN4 test speakers only) as ``OUT/<split>.jsonl``."""
    from zoo.data.an4 import an4_cuts

    cuts = an4_cuts(data_dir)[split]
    return write_mix_manifest(fixed_sessions(cuts, split, sessions, seed), Path(out) / f"{split}.jsonl")


# --- zoo mix ---------------------------------------------------------------------------------------
def mix_files(a: str | Path, b: str | Path, offset: float, out: str | Path) -> tuple[Path, float, int]:
    """Write ``a`` + ``b`` starting ``offset`` s into ``a`` (at ``a``'s sample rate; mono) to ``out``.

    Peaks above full scale are scaled down. Written to a temp file in ``out``'s folder, then renamed.
    Returns (out, duration_s, sample_rate).
    """
    import soundfile as sf

    if offset < 0:
        raise ZooError(f"--offset must be >= 0 s (got {offset})")
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt.upper() not in sf.available_formats():
        raise ZooError(f"cannot write {out.name}: unknown audio format {out.suffix or '(no suffix)'}; "
                       "use .wav or .flac")
    for p in (a, b):
        if not Path(p).exists():
            raise ZooError(f"audio file not found: {p}")
    try:
        sr = sf.info(str(a)).samplerate
    except Exception as e:  # libsndfile's own error types
        raise ZooError(f"cannot read {a} as audio ({str(e).strip() or type(e).__name__})") from None
    xa, xb = load_audio(a, sr).numpy(), load_audio(b, sr).numpy()
    start = int(round(offset * sr))
    y = np.zeros(max(xa.size, start + xb.size), dtype=np.float32)
    y[:xa.size] += xa
    y[start:start + xb.size] += xb
    peak = float(np.abs(y).max())
    if peak > 0.999:
        y *= 0.999 / peak
    if not out.parent.is_dir():
        raise ZooError(f"output folder does not exist: {out.parent}")
    with atomic_path(out) as tmp:
        sf.write(str(tmp), y, sr, format=fmt.upper())
    return out, y.size / sr, sr
