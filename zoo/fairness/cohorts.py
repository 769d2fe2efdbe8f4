"""Cohort discovery over error records: metadata columns, binary partitions by majority attribute, speaker-embedding
k-means clusters and a recursive latitude/longitude partition. Every method works on a *speaker table*
(``speaker_table``): one row per speaker with its summed errors / words and its attributes, because cohorts are
sets of speakers (Dheram et al.: speakers grouped by geodemographics or by speaker-embedding clusters; Trinh et
al.: speakers grouped by location).

Each discovered cohort also carries a **rule** (JSON) that decides membership of speakers never seen in the audit
(``rule_members``), so a cohort found on a test set can select fine-tuning data from a training set:
``{"type": "values", "column", "values"}``, ``{"type": "threshold", "column", "op": "<=" | ">", "threshold"}``,
``{"type": "centroid", "centroids", "cluster"}`` (nearest k-means centroid of the speaker's mean embedding),
``{"type": "box", "lat": [lo, hi], "lon": [lo, hi]}`` (``lo <= x < hi``, null = unbounded) or
``{"type": "speakers", "speakers"}``. The same rules put *held-out* speakers into cohorts discovered on other
speakers (``assign_cohorts``; ``split_speakers`` makes a deterministic discovery / scoring split).

A missing attribute value (None or empty, e.g. an alphanumeric speaker without a gender) is the value
``MISSING`` ("unknown"): its own metadata cohort, never on either side of a numeric threshold.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict

import numpy as np
import torch

from zoo.errors import ZooError
from zoo.nets.cohort import nearest_centroid

MISSING = "unknown"


# --- speaker table ------------------------------------------------------------------------------------------
def speaker_table(records: list[dict], columns: list[str] | tuple = ()) -> dict[str, dict]:
    """{speaker: {"errors", "words", "utterances", column: majority value over the speaker's utterances}}.

    The *majority attribute*: a column that varies within a speaker takes its most frequent value (ties: the
    first seen), as Dheram et al. give each speaker the majority attribute of their area. A column absent from a
    record is an error; a None / empty value is ``MISSING``."""
    acc: dict[str, dict] = {}
    vals: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for r in records:
        s = acc.setdefault(r["speaker"], {"errors": 0, "words": 0, "utterances": 0})
        s["errors"] += r["errors"]; s["words"] += r["words"]; s["utterances"] += 1
        for c in columns:
            if c not in r:
                raise ZooError(f"utterance {r.get('id')} (speaker {r['speaker']}) has no {c!r} column")
            vals[r["speaker"]][c][_key(r[c])] += 1
    for spk, s in acc.items():
        for c in columns:
            s[c] = vals[spk][c].most_common(1)[0][0]
    return acc


def _key(v):
    if v is None or v == "":
        return MISSING
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def labels_for(records: list[dict], spk_label: dict[str, str]) -> list[str]:
    """Per-record cohort labels from a speaker -> cohort map."""
    return [spk_label[r["speaker"]] for r in records]


def _wer(e, w):
    return e / w if w else float("nan")


# --- (a) metadata -------------------------------------------------------------------------------------------
def metadata_cohorts(records: list[dict], column: str) -> dict[str, dict]:
    """Each value of ``column`` (a speaker's majority value) is a cohort: {cohort: {"speakers", "rule"}}."""
    table = speaker_table(records, [column])
    out: dict[str, dict] = {}
    for spk, s in sorted(table.items()):
        name = f"{column}={s[column]}"
        out.setdefault(name, {"speakers": [], "rule": {"type": "values", "column": column, "values": [s[column]]}})
        out[name]["speakers"].append(spk)
    return out


def _is_numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _candidates(column: str, values: list, exhaustive_max: int):
    """Binary partitions of a column's values as (rule of side A, rule of side B)."""
    uniq = sorted(set(values), key=lambda v: (str(type(v)), v))
    known = [v for v in uniq if v != MISSING]
    if len(uniq) < 2:
        return
    if len(known) >= 2 and _is_numeric(known):  # MISSING speakers fall on neither side
        uniq = known
        for a, b in zip(uniq, uniq[1:]):
            t = (a + b) / 2
            yield ({"type": "threshold", "column": column, "op": "<=", "threshold": t},
                   {"type": "threshold", "column": column, "op": ">", "threshold": t})
        return
    if len(uniq) <= exhaustive_max:  # every split {S, rest} once: S contains the first value, S != all
        rest_vals = uniq[1:]
        for n in range(0, len(rest_vals)):
            for combo in itertools.combinations(rest_vals, n):
                a = [uniq[0], *combo]
                b = [v for v in uniq if v not in a]
                yield ({"type": "values", "column": column, "values": a},
                       {"type": "values", "column": column, "values": b})
    else:  # one value against the rest
        for v in uniq:
            yield ({"type": "values", "column": column, "values": [v]},
                   {"type": "values", "column": column, "values": [u for u in uniq if u != v]})


def _in_rule(rule: dict, attrs: dict) -> bool:
    v = attrs.get(rule["column"])
    if rule["type"] == "threshold":
        return _is_numeric([v]) and (v <= rule["threshold"] if rule["op"] == "<=" else v > rule["threshold"])
    return _key(v) in [_key(x) for x in rule["values"]]


def _rule_text(rule: dict) -> str:
    if rule["type"] == "threshold":
        return f"{rule['column']} {rule['op']} {rule['threshold']:g}"
    return f"{rule['column']} in {{{', '.join(map(str, rule['values']))}}}"


def partition_search(table: dict[str, dict], columns: list[str], min_words: int = 100, min_speakers: int = 2,
                     exhaustive_max: int = 8) -> dict | None:
    """The binary partition of speakers by one attribute that maximises the WER discrepancy.

    For every column: numeric columns are cut at every midpoint between consecutive distinct values
    (``x <= t`` vs ``x > t``); categorical columns with at most ``exhaustive_max`` values are split into every
    pair {S, complement} (2^(m-1) - 1 splits), more values into one-vs-rest. A split is admissible when each
    side has at least ``min_words`` reference words and ``min_speakers`` speakers. The objective is the
    absolute WER difference |WER_A - WER_B| (corpus WER of each side), which unlike the relative gap stays
    defined when one side has no errors. Returns the best split (None if no admissible split) with both
    sides' cohorts ``{"high": ..., "low": ...}`` and the number of splits tried.

    Searching many splits finds *some* difference even in pure noise: ``permutation_pvalue`` says how
    often a search on shuffled data finds one as large.
    """
    best, tried = None, 0
    for col in columns:
        values = [s[col] for s in table.values()]
        for ra, rb in _candidates(col, values, exhaustive_max):
            tried += 1
            sides = []
            for rule in (ra, rb):
                spk = [k for k, s in table.items() if _in_rule(rule, s)]
                e = sum(table[k]["errors"] for k in spk); w = sum(table[k]["words"] for k in spk)
                sides.append({"rule": rule, "speakers": sorted(spk), "errors": e, "words": w, "wer": _wer(e, w)})
            if any(s["words"] < min_words or len(s["speakers"]) < min_speakers for s in sides):
                continue
            diff = abs(sides[0]["wer"] - sides[1]["wer"])
            if best is None or diff > best["diff"]:
                hi, lo = sorted(sides, key=lambda s: -s["wer"])
                best = {"column": col, "diff": diff, "high": hi, "low": lo}
    if best is None:
        return None
    best["tried"] = tried
    for side in ("high", "low"):
        best[side]["name"] = _rule_text(best[side]["rule"])
    return best


def permutation_pvalue(table: dict[str, dict], statistic, n_perm: int = 200, seed: int = 0) -> dict:
    """How surprising is a discovered discrepancy? ``statistic(table) -> float`` (e.g. the best partition's
    WER difference) is recomputed on ``n_perm`` tables whose speakers' (errors, words) are shuffled across
    speakers, which keeps attributes, cohort sizes and the search but breaks any attribute-WER link.
    p = (1 + #{perm >= observed}) / (1 + n_perm)."""
    obs = statistic(table)
    rng = np.random.default_rng(seed)
    keys = list(table)
    perf = [(table[k]["errors"], table[k]["words"]) for k in keys]
    null = []
    for _ in range(n_perm):
        order = rng.permutation(len(keys))
        shuffled = {k: {**table[k], "errors": perf[j][0], "words": perf[j][1]} for k, j in zip(keys, order)}
        null.append(statistic(shuffled))
    null_a = np.array([x if x is not None else -np.inf for x in null])
    o = obs if obs is not None else -np.inf
    return {"observed": obs, "p_value": float((1 + (null_a >= o).sum()) / (1 + n_perm)), "n_perm": n_perm,
            "null_q95": float(np.quantile(null_a, 0.95)) if n_perm else None}


# --- (b) speaker embeddings + k-means ------------------------------------------------------------------------
def speaker_embeddings(model, records: list[dict], max_per_speaker: int = 20, progress: bool = True
                       ) -> dict[str, np.ndarray]:
    """Mean of the L2-normalised utterance embeddings of each speaker (up to ``max_per_speaker`` utterances,
    in id order), re-normalised to unit length."""
    if model.task != "speaker" or not hasattr(model, "embed"):
        raise ZooError(f"{getattr(model, 'source', 'the model')} is not a speaker-embedding model "
                       f"(task {getattr(model, 'task', '?')!r})")
    by: dict[str, list[str]] = defaultdict(list)
    for r in sorted(records, key=lambda r: str(r["id"])):
        if len(by[r["speaker"]]) < max_per_speaker:
            by[r["speaker"]].append(r["audio"])
    it = sorted(by)
    if progress:
        from rich.progress import track

        it = track(it, description="embedding speakers", transient=True)
    out = {}
    for spk in it:
        m = model.embed(by[spk]).mean(0).numpy()
        out[spk] = m / max(np.linalg.norm(m), 1e-12)
    return out


def kmeans_cohorts(embeddings: dict[str, np.ndarray], k: int | None = None, k_max: int = 8,
                   seed: int = 0) -> tuple[dict[str, dict], dict]:
    """k-means (scikit-learn, Euclidean on the unit-length speaker means, ``n_init=10``) over speakers.

    ``k`` given: use it. Otherwise k in 2..min(k_max, speakers - 1) with the highest mean silhouette
    coefficient (``sklearn.metrics.silhouette_score``, same metric), ties to the smaller k. Cohort ``e<i>`` =
    cluster i. Returns ({cohort: {"speakers", "rule"}}, {"k", "criterion", "silhouette": {k: score}})."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    spk = sorted(embeddings)
    X = np.stack([embeddings[s] for s in spk]).astype(np.float64)
    n = len(spk)
    if k is not None and not 1 <= k <= n:
        raise ZooError(f"--k {k}: need 1 <= k <= number of speakers ({n})")
    if k is None and n < 3:
        raise ZooError(f"choosing k needs at least 3 speakers (got {n}); pass --k")
    scores: dict[int, float] = {}
    fits = {}
    for kk in ([k] if k is not None else range(2, min(k_max, n - 1) + 1)):
        km = KMeans(n_clusters=kk, n_init=10, random_state=seed).fit(X)
        fits[kk] = km
        if 1 < kk < n:
            scores[kk] = float(silhouette_score(X, km.labels_))
    chosen = k if k is not None else max(scores, key=lambda kk: (scores[kk], -kk))
    km = fits[chosen]
    cents = km.cluster_centers_.tolist()
    cohorts: dict[str, dict] = {}
    for s, lab in zip(spk, km.labels_):
        name = f"e{int(lab)}"
        cohorts.setdefault(name, {"speakers": [], "rule": {"type": "centroid", "centroids": cents,
                                                           "cluster": int(lab)}})
        cohorts[name]["speakers"].append(s)
    info = {"k": int(chosen), "criterion": "given" if k is not None else "max mean silhouette (Euclidean)",
            "silhouette": {str(kk): v for kk, v in scores.items()}}
    return dict(sorted(cohorts.items())), info


# --- (c) geography ------------------------------------------------------------------------------------------
def geo_partition(table: dict[str, dict], min_words: int = 200, max_depth: int | None = None,
                  min_gain: float = 0.0, min_speakers: int = 1) -> list[dict]:
    """Recursive latitude/longitude partition of speakers (needs ``lat``/``lon`` in ``table``): a word-weighted
    regression tree on the per-word error rate.

    At each node, for each axis (lat, lon) and each threshold between consecutive distinct coordinates that
    leaves at least ``min_words`` reference words on each side, the split gain is
    ``G = w_L w_R / (w_L + w_R) * (WER_L - WER_R)^2`` (w = words): the between-child WER difference, weighted
    by a harmonic-mean size term. G is exactly the drop in word-weighted squared error of a regression tree
    predicting each word's error count, so this is CART with word weights. The best split is taken when
    G > ``min_gain`` and depth < ``max_depth``; otherwise the node is a region (leaf). A split must also leave
    ``min_speakers`` speakers on each side.

    How it maps to Trinh et al. (2022): their regions come from "a decision-tree-like algorithm" over
    latitude/longitude that maximises WER differences, with a minimum region size (126 regions on their data);
    the exact criterion is not in our notes. We maximise the WER difference between the two children, weighted
    so that a small noisy child cannot win on an extreme WER alone, and ``min_words`` is the minimum region size.

    Returns regions ``{"region", "speakers", "errors", "words", "wer", "rule": {"type": "box", ...},
    "depth", "path"}`` in tree order (left first).
    """
    for s, v in table.items():
        for c in ("lat", "lon"):
            if not isinstance(v.get(c), (int, float)) or isinstance(v.get(c), bool) or not math.isfinite(v[c]):
                raise ZooError(f"speaker {s} has no numeric {c!r}; the geographic method needs lat and lon")
    regions: list[dict] = []

    def node(spk: list[str], box: dict, depth: int, path: str):
        e = sum(table[s]["errors"] for s in spk); w = sum(table[s]["words"] for s in spk)
        best = None
        if max_depth is None or depth < max_depth:
            for axis in ("lat", "lon"):
                order = sorted(spk, key=lambda s: table[s][axis])
                ce = np.cumsum([table[s]["errors"] for s in order]); cw = np.cumsum([table[s]["words"] for s in order])
                for i in range(1, len(order)):
                    a, b = table[order[i - 1]][axis], table[order[i]][axis]
                    wl, wr = cw[i - 1], w - cw[i - 1]
                    if a == b or wl < min_words or wr < min_words or min(i, len(order) - i) < min_speakers:
                        continue
                    el, er = ce[i - 1], e - ce[i - 1]
                    g = wl * wr / (wl + wr) * (el / wl - er / wr) ** 2
                    if g > min_gain and (best is None or g > best[0]):
                        best = (float(g), axis, (a + b) / 2, order[:i], order[i:])
        if best is None:
            regions.append({"region": f"r{len(regions)}", "speakers": sorted(spk), "errors": e, "words": w,
                            "wer": _wer(e, w), "depth": depth, "path": path or "root",
                            "rule": {"type": "box", "lat": list(box["lat"]), "lon": list(box["lon"])}})
            return
        _, axis, t, left, right = best
        lo, hi = box[axis]
        node(left, {**box, axis: (lo, t)}, depth + 1, f"{path}{' & ' if path else ''}{axis}<{t:.4g}")
        node(right, {**box, axis: (t, hi)}, depth + 1, f"{path}{' & ' if path else ''}{axis}>={t:.4g}")

    node(sorted(table), {"lat": (None, None), "lon": (None, None)}, 0, "")
    return regions


# --- membership of new speakers ------------------------------------------------------------------------------
def nearest_centroids(embeddings: dict[str, np.ndarray], centroids, metric: str = "euclidean") -> dict[str, int]:
    """{speaker: index of the nearest centroid} for speaker embeddings (``speaker_embeddings``: the re-normalised
    mean of a speaker's L2-normalised utterance embeddings, the recipe k-means clustered the training speakers
    with). ``euclidean``: smallest squared distance (k-means' own assignment); ``cosine``: largest cosine
    similarity; the metrics of ``zoo.nets.cohort.nearest_centroid``. Ties go to the lower index."""
    C = np.asarray(centroids, dtype=np.float64)
    if C.ndim != 2 or not len(C):
        raise ZooError(f"cohort centroids must be a non-empty K x D list (got shape {C.shape})")
    if metric not in ("euclidean", "cosine"):
        raise ZooError(f"cohort metric {metric!r} is unknown — use euclidean or cosine")
    speakers = sorted(embeddings)
    E = [np.asarray(embeddings[s], dtype=np.float64).reshape(-1) for s in speakers]
    for s, e in zip(speakers, E):
        if e.shape[0] != C.shape[1]:
            raise ZooError(f"speaker {s}'s embedding has {e.shape[0]} dimensions, the cohort centroids "
                           f"{C.shape[1]} — embed with the speaker model the cohorts were made with")
    if not speakers:
        return {}
    idx = nearest_centroid(torch.from_numpy(np.stack(E)).double(), torch.from_numpy(C), metric)
    return dict(zip(speakers, idx.tolist()))


def rule_members(rule: dict, speakers: dict[str, dict], embeddings: dict[str, np.ndarray] | None = None) -> list[str]:
    """Speakers (``{speaker: attributes}``) that a cohort rule selects (see the module docstring)."""
    kind = rule.get("type")
    if kind == "speakers":
        want = set(map(str, rule["speakers"]))
        return sorted(s for s in speakers if s in want)
    if kind in ("values", "threshold"):
        return sorted(s for s, a in speakers.items() if rule["column"] in a and _in_rule(rule, a))
    if kind == "box":
        def inside(a):
            for c in ("lat", "lon"):
                lo, hi = rule[c]
                x = a.get(c)
                if x is None or (lo is not None and x < lo) or (hi is not None and x >= hi):
                    return False
            return True
        return sorted(s for s, a in speakers.items() if inside(a))
    if kind == "centroid":
        if embeddings is None:
            raise ZooError("an embedding cohort selects speakers by their speaker embeddings; give a speaker model")
        C = np.asarray(rule["centroids"])
        return sorted(s for s in speakers if s in embeddings
                      and int(np.argmin(((C - embeddings[s]) ** 2).sum(1))) == rule["cluster"])
    raise ZooError(f"unknown cohort rule type {kind!r}")


# --- held-out selection ----------------------------------------------------------------------------------------
def split_speakers(speakers, frac: float = 0.5, seed: int = 0) -> tuple[list[str], list[str]]:
    """Deterministic speaker split -> (discovery, scoring): the sorted speakers shuffled by ``seed``; the first
    ``round(frac * n)`` (at least 1, at most n - 1) are held out for scoring. Same speakers + seed = same split."""
    spk = sorted(set(speakers))
    if not 0 < frac < 1:
        raise ZooError(f"--holdout-frac must be between 0 and 1 (got {frac})")
    if len(spk) < 2:
        raise ZooError(f"a held-out split needs at least 2 speakers (got {len(spk)})")
    order = [spk[i] for i in np.random.default_rng(seed).permutation(len(spk))]
    n = min(max(round(frac * len(spk)), 1), len(spk) - 1)
    return sorted(order[n:]), sorted(order[:n])


def assign_cohorts(cohorts: dict[str, dict], table: dict[str, dict],
                   embeddings: dict[str, np.ndarray] | None = None) -> dict[str, list[str]]:
    """Members among ``table``'s speakers (held-out speakers, with their attributes) of cohorts discovered on
    other speakers, by each cohort's rule (``rule_members``): {cohort: [speaker]}. A speaker that no rule selects
    (a value never seen in discovery, a missing value on a threshold) is in no cohort."""
    return {name: rule_members(c["rule"], table, embeddings) for name, c in cohorts.items()}
