"""Multi-talker metrics over sessions of turns: cpWER and ORC-WER (meeteval), turn-counting accuracy,
start/end-of-turn emission latency, each also split by the session's overlap ratio.

A turn is ``(speaker_or_channel, start_s, end_s, text)`` (a tuple or anything with those four fields in
order). A session is a list of turns; references and hypotheses are lists of sessions in the same order.

* **cpWER** (concatenated minimum-permutation WER): each reference speaker's turns are concatenated in time
  order, each hypothesis channel's too, and the speaker <-> channel assignment with the fewest errors is
  scored (meeteval ``cp_word_error_rate``). Corpus cpWER = summed errors / summed reference words.
* **ORC-WER** (optimal reference combination): every reference *turn* may go to any hypothesis channel; the
  assignment with the fewest errors is scored (meeteval ``orc_word_error_rate``). It ignores speaker
  identity, so ORC-WER <= cpWER.
* **turn-counting accuracy**: the fraction of sessions whose number of hypothesis turns equals the number
  of reference turns.
* **emission latency**: hypothesis turns are matched one-to-one to reference turns (greedily, by largest
  time overlap, ties by nearest start); per matched pair, start latency = hyp start - ref start (the time
  the start-of-turn was emitted) and end latency = hyp end - ref end, in ms. Reported as mean, median and
  P90 over matched turns (negative = emitted early), with the number of matched turns.
* **overlap ratio** of a session: time with two or more active speakers / time with at least one.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from zoo.metrics.wer import bootstrap_ratio

Turn = tuple  # (speaker or channel, start_s, end_s, text)

# overlap-ratio bins (lower bound inclusive, upper exclusive; the last one includes 1.0)
OVERLAP_BINS: tuple[tuple[str, float, float], ...] = (
    ("0%", 0.0, 1e-9), ("0-10%", 1e-9, 0.10), ("10-20%", 0.10, 0.20), ("20-30%", 0.20, 0.30), (">=30%", 0.30, 1.0))


def _fields(t) -> tuple:
    spk, start, end, text = t[0], t[1], t[2], t[3]
    return spk, float(start), float(end), str(text or "")


def overlap_ratio(turns: Sequence[Turn]) -> float:
    """Time with >= 2 active turns / time with >= 1 (0.0 for no speech)."""
    ev = []
    for t in turns:
        _, s, e, _ = _fields(t)
        if e > s:
            ev += [(s, 1), (e, -1)]
    ev.sort()
    active, last, speech, over = 0, 0.0, 0.0, 0.0
    for time, d in ev:
        if active >= 1:
            speech += time - last
        if active >= 2:
            over += time - last
        active += d
        last = time
    return over / speech if speech > 0 else 0.0


def _streams(turns: Sequence[Turn]) -> dict:
    """speaker/channel -> its turns' texts joined in start order."""
    out: dict = {}
    for t in sorted((_fields(t) for t in turns), key=lambda x: (x[1], x[2])):
        out.setdefault(str(t[0]), []).append(t[3])
    return {k: " ".join(x for x in v if x).strip() for k, v in out.items()}


# streams are already in time order (meeteval would otherwise warn that it cannot sort untimed text)
_UNSORTED = {"reference_sort": False, "hypothesis_sort": False}


def _ensure_stream(streams: dict) -> dict:
    return streams or {"_": ""}


def cpwer(refs: Sequence[Sequence[Turn]], hyps: Sequence[Sequence[Turn]]) -> dict:
    """Corpus cpWER: ``{"wer", "errors", "words", "sessions"}`` (+ missed/false-alarm speakers, and
    ``per_session``: [errors, words] of each session, in order)."""
    from meeteval.wer import cp_word_error_rate

    _check(refs, hyps)
    errors = words = missed = falarm = 0
    per = []
    for r, h in zip(refs, hyps):
        e = cp_word_error_rate(_ensure_stream(_streams(r)), _ensure_stream(_streams(h)), **_UNSORTED)
        errors += e.errors
        words += e.length
        missed += e.missed_speaker
        falarm += e.falarm_speaker
        per.append([e.errors, e.length])
    return {"wer": errors / max(words, 1), "errors": errors, "words": words, "sessions": len(refs),
            "missed_speakers": missed, "falarm_speakers": falarm, "per_session": per}


def orcwer(refs: Sequence[Sequence[Turn]], hyps: Sequence[Sequence[Turn]]) -> dict:
    """Corpus ORC-WER: ``{"wer", "errors", "words", "sessions", "per_session"}`` (as :func:`cpwer`)."""
    from meeteval.wer import orc_word_error_rate

    _check(refs, hyps)
    errors = words = 0
    per = []
    for r, h in zip(refs, hyps):
        utts = [t[3] for t in sorted((_fields(t) for t in r), key=lambda x: (x[1], x[2]))] or [""]
        e = orc_word_error_rate(utts, _ensure_stream(_streams(h)), **_UNSORTED)
        errors += e.errors
        words += e.length
        per.append([e.errors, e.length])
    return {"wer": errors / max(words, 1), "errors": errors, "words": words, "sessions": len(refs),
            "per_session": per}


def turn_counting_accuracy(refs: Sequence[Sequence[Turn]], hyps: Sequence[Sequence[Turn]]) -> float:
    """Fraction of sessions whose hypothesis has exactly as many turns as the reference."""
    _check(refs, hyps)
    if not refs:
        return float("nan")
    return sum(len(r) == len(h) for r, h in zip(refs, hyps)) / len(refs)


def match_turns(ref: Sequence[Turn], hyp: Sequence[Turn]) -> list[tuple[int, int]]:
    """One-to-one (ref index, hyp index) pairs: each reference turn, in start order, takes the unmatched
    hypothesis turn with the largest time overlap (ties: nearest start); a hypothesis turn that does not
    overlap any reference turn can still be matched to the nearest-start reference turn."""
    r = [_fields(t) for t in ref]
    h = [_fields(t) for t in hyp]
    free = set(range(len(h)))
    pairs = []
    for i in sorted(range(len(r)), key=lambda i: r[i][1]):
        if not free:
            break
        _, rs, re_, _ = r[i]
        j = max(free, key=lambda j: (max(0.0, min(re_, h[j][2]) - max(rs, h[j][1])), -abs(h[j][1] - rs)))
        pairs.append((i, j))
        free.remove(j)
    return pairs


def _summary(x: list[float]) -> dict:
    if not x:
        return {"mean": float("nan"), "median": float("nan"), "p90": float("nan"), "n": 0}
    a = np.asarray(x, dtype=float)
    return {"mean": float(a.mean()), "median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "n": len(x)}


def emission_latency(refs: Sequence[Sequence[Turn]], hyps: Sequence[Sequence[Turn]]) -> dict:
    """``{"start": {mean, median, p90, n}, "end": {...}}`` in ms over matched turns (see module doc)."""
    _check(refs, hyps)
    starts, ends = [], []
    for r, h in zip(refs, hyps):
        rf, hf = [_fields(t) for t in r], [_fields(t) for t in h]
        for i, j in match_turns(r, h):
            starts.append(1000 * (hf[j][1] - rf[i][1]))
            ends.append(1000 * (hf[j][2] - rf[i][2]))
    return {"start": _summary(starts), "end": _summary(ends)}


def _scores(refs, hyps, n_boot: int = 0, seed: int = 0) -> dict:
    """Every metric over these sessions; with ``n_boot`` also ``ci``: 95% percentile-bootstrap CIs of cpWER,
    ORC-WER and turn-counting accuracy, resampling sessions (``zoo.metrics.wer.bootstrap_ratio``)."""
    cp, orc = cpwer(refs, hyps), orcwer(refs, hyps)
    out = {"sessions": len(refs), "cpwer": cp, "orcwer": orc,
           "turn_counting_accuracy": turn_counting_accuracy(refs, hyps),
           "latency_ms": emission_latency(refs, hyps)}
    per = {"cpwer": cp.pop("per_session"), "orcwer": orc.pop("per_session")}
    if n_boot > 0 and refs:

        correct = [float(len(r) == len(h)) for r, h in zip(refs, hyps)]
        out["ci"] = {k: bootstrap_ratio([e for e, _ in v], [w for _, w in v], n=n_boot, seed=seed)
                     for k, v in per.items()}
        out["ci"]["turn_counting_accuracy"] = bootstrap_ratio(correct, [1.0] * len(correct), n=n_boot, seed=seed)
        for v in out["ci"].values():
            v["unit"] = "session"
    return out


def overlap_bin(ratio: float, bins=OVERLAP_BINS) -> str:
    for name, lo, hi in bins:
        if lo <= ratio < hi or (hi >= 1.0 and ratio >= lo):
            return name
    raise ValueError(f"overlap ratio {ratio} is outside every bin")


def evaluate_sessions(refs: Sequence[Sequence[Turn]], hyps: Sequence[Sequence[Turn]], bins=OVERLAP_BINS,
                      n_boot: int = 0, seed: int = 0) -> dict:
    """Every metric over all sessions (``"all"``) and per overlap-ratio bin of the reference (``"by_overlap"``;
    empty bins are left out). ``n_boot`` > 0: each subset also gets ``ci`` (bootstrap over its sessions)."""
    _check(refs, hyps)
    out = {"all": _scores(refs, hyps, n_boot, seed), "by_overlap": {}}
    names = [overlap_bin(overlap_ratio(r), bins) for r in refs]
    for name, _, _ in bins:
        idx = [i for i, n in enumerate(names) if n == name]
        if idx:
            out["by_overlap"][name] = _scores([refs[i] for i in idx], [hyps[i] for i in idx], n_boot, seed)
    return out


def format_sessions_report(title: str, res: dict) -> str:
    """A plain-text table of :func:`evaluate_sessions` results (with 95% CIs where it has them)."""
    cis = "ci" in res["all"]
    w = 21 if cis else 7
    lines = [title, f"{'subset':>8} {'n':>5} {'cpWER% (95% CI)' if cis else 'cpWER%':>{w}} "
                    f"{'ORC% (95% CI)' if cis else 'ORC%':>{w}} {'turns% (95% CI)' if cis else 'turns%':>{w}} "
                    f"{'sot mean/med/p90 ms':>22} {'eot mean/med/p90 ms':>22}"]
    rows = [("all", res["all"])] + list(res["by_overlap"].items())
    for name, r in rows:
        lat = r["latency_ms"]
        f = lambda d: f"{d['mean']:.0f}/{d['median']:.0f}/{d['p90']:.0f}"  # noqa: E731

        def cell(key, value, digits):
            s = f"{100 * value:.{digits}f}"
            if cis:
                c = r["ci"][key]
                s += f" ({100 * c['low']:.{digits}f}-{100 * c['high']:.{digits}f})"
            return f"{s:>{w}}"
        lines.append(f"{name:>8} {r['sessions']:>5} {cell('cpwer', r['cpwer']['wer'], 2)} "
                     f"{cell('orcwer', r['orcwer']['wer'], 2)} "
                     f"{cell('turn_counting_accuracy', r['turn_counting_accuracy'], 1)} "
                     f"{f(lat['start']):>22} {f(lat['end']):>22}")
    return "\n".join(lines)


def _check(refs, hyps) -> None:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} reference sessions but {len(hyps)} hypothesis sessions")
