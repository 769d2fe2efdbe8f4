"""WER/CER after a named normaliser, and bootstrap confidence intervals."""
from __future__ import annotations

import numpy as np
from torchmetrics.functional.text import char_error_rate, word_error_rate

from zoo.text import get_normalizer


def edit_counts(hyp: str, ref: str) -> tuple[int, int]:
    """(word errors, reference words) for one utterance (Levenshtein over words)."""
    h, r = hyp.split(), ref.split()
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1], len(r)


def error_rates(hyps: list[str], refs: list[str], normalizer: str = "upper") -> dict:
    """Corpus WER and CER (torchmetrics) after normalising both sides."""
    norm = get_normalizer(normalizer)
    h = [norm(x) for x in hyps]
    r = [norm(x) for x in refs]
    return {"wer": float(word_error_rate(h, r)), "cer": float(char_error_rate(h, r)),
            "words": sum(len(x.split()) for x in r), "utterances": len(r)}


def bootstrap_ratio(num, den, n: int = 1000, groups: list | None = None, seed: int = 0,
                    alpha: float = 0.05) -> dict:
    """sum(num) / sum(den) over items (utterances, sessions) with a percentile bootstrap CI that resamples
    the items, or ``groups`` of them (e.g. speakers): WER = errors / words, accuracy = correct / 1.

    Returns ``{"value", "low", "high", "n_boot", "unit"}`` (``unit``: "group" with ``groups``, else "item").
    """
    counts = np.stack([np.asarray(num, dtype=float).reshape(-1), np.asarray(den, dtype=float).reshape(-1)], 1)
    keys = groups or list(range(len(counts)))
    uniq = sorted(set(keys), key=str)
    idx = {k: i for i, k in enumerate(uniq)}
    per = np.zeros((len(uniq), 2))
    for k, c in zip(keys, counts):
        per[idx[k]] += c
    if not len(uniq):
        nan = float("nan")
        return {"value": nan, "low": nan, "high": nan, "n_boot": n, "unit": "group" if groups else "item"}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(uniq), size=(n, len(uniq)))
    s = per[draws].sum(1)
    boot = s[:, 0] / np.maximum(s[:, 1], 1)
    return {"value": float(per[:, 0].sum() / max(per[:, 1].sum(), 1)),
            "low": float(np.quantile(boot, alpha / 2)), "high": float(np.quantile(boot, 1 - alpha / 2)),
            "n_boot": n, "unit": "group" if groups else "item"}


def bootstrap_wer(hyps: list[str], refs: list[str], normalizer: str = "upper", n: int = 1000,
                  groups: list[str] | None = None, seed: int = 0, alpha: float = 0.05) -> dict:
    """Corpus WER with a percentile bootstrap CI, resampling utterances (or ``groups``, e.g. speakers).

    Returns ``{"wer", "low", "high", "n_boot", "unit"}``.
    """
    norm = get_normalizer(normalizer)
    counts = np.array([edit_counts(norm(h), norm(r)) for h, r in zip(hyps, refs)], dtype=float).reshape(-1, 2)
    b = bootstrap_ratio(counts[:, 0], counts[:, 1], n=n, groups=groups, seed=seed, alpha=alpha)
    return {"wer": b["value"], "low": b["low"], "high": b["high"], "n_boot": n,
            "unit": "speaker" if groups else "utterance"}
