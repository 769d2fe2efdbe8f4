"""Cohort metrics, with their definitions.

Given error records and a cohort label per record:

* **cohort WER** = Σ errors / Σ reference words over the cohort's utterances (corpus-level, so long utterances
  weigh more), with a 95% percentile-bootstrap CI that resamples the cohort's *speakers* (utterances of one
  speaker are not independent) — ``zoo.metrics.wer.bootstrap_ratio``.
* **eligible cohort**: at least ``min_words`` reference words *and* ``min_speakers`` speakers; the others (and
  ``UNASSIGNED``, held-out speakers that no discovered cohort's rule selects) are shown but never ranked.
* **top / bottom cohort**: the lowest- / highest-WER eligible cohort. With held-out selection they are chosen on
  the discovery speakers and then *measured* on the scoring speakers (not re-chosen there).
* **WER gap** (Dheram et al. 2022, "relative WER gap between top and bottom cohorts"; the exact formula is not
  in our notes, this is the reading they support): ``gap = (WER_bottom − WER_top) / WER_top``, reported in %.
  Undefined (null) when WER_top = 0; ``gap_abs`` = WER_bottom − WER_top (WER points) is always given.
* **bottom-cohort share**: the fraction of all *speakers* in the bottom cohort (Dheram et al.'s "share of the
  population"); ``bottom_share_words`` gives the same by reference words.
* **regional / cohort spread** (Trinh et al. 2022): mean, max and population variance (ddof = 0) of the
  cohort WERs, each cohort counting once (unweighted), over the eligible cohorts.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from zoo.metrics.wer import bootstrap_ratio

UNASSIGNED = "(unassigned)"


def wer(errors: float, words: float) -> float:
    return float(errors) / words if words else float("nan")


def cohort_stats(records: list[dict], labels: list[str], n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """One row per cohort, worst WER first: ``cohort, wer, low, high, errors, words, utterances, speakers,
    share_speakers, share_words`` (shares of all speakers / words)."""
    if len(labels) != len(records):
        raise ValueError(f"{len(labels)} labels for {len(records)} records")
    by: dict[str, list[dict]] = defaultdict(list)
    for r, c in zip(records, labels):
        by[str(c)].append(r)
    n_spk = len({r["speaker"] for r in records})
    n_words = sum(r["words"] for r in records)
    rows = []
    for c, rs in by.items():
        b = bootstrap_ratio([r["errors"] for r in rs], [r["words"] for r in rs], n=n_boot,
                            groups=[r["speaker"] for r in rs], seed=seed)
        e, w = sum(r["errors"] for r in rs), sum(r["words"] for r in rs)
        spk = {r["speaker"] for r in rs}
        rows.append({"cohort": c, "wer": wer(e, w), "low": b["low"], "high": b["high"], "errors": e, "words": w,
                     "utterances": len(rs), "speakers": len(spk), "share_speakers": len(spk) / max(n_spk, 1),
                     "share_words": w / max(n_words, 1)})
    return sorted(rows, key=lambda r: (-np.nan_to_num(r["wer"], nan=-1.0), r["cohort"]))


def eligible(row: dict, min_words: int = 1, min_speakers: int = 1) -> bool:
    """May a ``cohort_stats`` row be ranked (see the module docstring)?"""
    return row["cohort"] != UNASSIGNED and row["words"] >= max(min_words, 1) and row["speakers"] >= min_speakers


def gap_summary(rows: list[dict], min_words: int = 1, min_speakers: int = 1,
                fixed: tuple[str, str] | None = None) -> dict:
    """WER gap, bottom-cohort share and the spread of cohort WERs (see the module docstring) over the eligible
    cohorts of ``cohort_stats``. ``fixed`` = (bottom, top) chosen elsewhere (on discovery speakers): measured
    here, not re-chosen, so the gap may come out negative; when either is not eligible here the summary has no
    gap (``"unscored"`` names them). A summary has a gap iff it has ``gap_abs``."""
    ok = [r for r in rows if eligible(r, min_words, min_speakers)]
    base = {"eligible": len(ok), "min_words": min_words, "min_speakers": min_speakers}
    if fixed is not None:
        by = {r["cohort"]: r for r in ok}
        base.update(fixed=True, bottom=fixed[0], top=fixed[1])
        if fixed[0] not in by or fixed[1] not in by:
            return {**base, "unscored": [c for c in dict.fromkeys(fixed) if c not in by]}
        bottom, top = by[fixed[0]], by[fixed[1]]
    elif not ok:
        return base
    else:
        bottom = max(ok, key=lambda r: r["wer"])
        top = min(ok, key=lambda r: r["wer"])
    w = np.array([r["wer"] for r in ok])
    return {**base, "bottom": bottom["cohort"], "top": top["cohort"],
            "wer_bottom": bottom["wer"], "wer_top": top["wer"],
            "gap": (bottom["wer"] - top["wer"]) / top["wer"] if top["wer"] > 0 else None,
            "gap_abs": bottom["wer"] - top["wer"],
            "bottom_share_speakers": bottom["share_speakers"], "bottom_share_words": bottom["share_words"],
            "mean": float(w.mean()), "max": float(w.max()), "variance": float(w.var()), "std": float(w.std())}


def overall(records: list[dict], n_boot: int = 1000, seed: int = 0) -> dict:
    """Overall WER with a speaker-bootstrap CI, and counts."""
    b = bootstrap_ratio([r["errors"] for r in records], [r["words"] for r in records], n=n_boot,
                        groups=[r["speaker"] for r in records], seed=seed)
    e, w = sum(r["errors"] for r in records), sum(r["words"] for r in records)
    return {"wer": wer(e, w), "low": b["low"], "high": b["high"], "errors": e, "words": w,
            "utterances": len(records), "speakers": len({r["speaker"] for r in records})}
