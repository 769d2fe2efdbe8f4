"""Speaker-verification metrics: DET curve, EER, normalised minDCF, per-gender EER and gender gap, bootstrap
CIs that resample speakers, a DET plot, and torchmetrics classes.

Conventions: ``scores`` higher = more likely the same speaker; ``labels`` 1 = target (same speaker), 0 =
nontarget. A trial is accepted when ``score >= threshold``. Optional ``weights`` (one per trial) make every
metric a weighted one; the speaker bootstrap uses them (a trial's weight = how often its speakers were drawn).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchmetrics import Metric

from zoo.io import atomic_write_bytes

P_TARGETS = (0.01, 0.05)


def cosine_trial_scores(emb, trials) -> tuple[np.ndarray, np.ndarray]:
    """Cosine score of every trial: ``emb`` maps utterance id -> (D,) embedding, ``trials`` are
    (enroll id, test id, is_target) -> scores (N,) float, labels (N,) bool (numpy)."""
    import torch

    a = torch.stack([torch.as_tensor(emb[t[0]]) for t in trials])
    b = torch.stack([torch.as_tensor(emb[t[1]]) for t in trials])
    scores = torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1).numpy()
    return scores, np.array([bool(t[2]) for t in trials], dtype=bool)


def _arrays(scores, labels, weights=None):
    s = np.asarray(torch.as_tensor(scores).detach().cpu().double().numpy() if torch.is_tensor(scores) else scores,
                   dtype=np.float64).ravel()
    y = np.asarray(labels.detach().cpu().numpy() if torch.is_tensor(labels) else labels).ravel().astype(bool)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if not (len(s) == len(y) == len(w)):
        raise ValueError(f"scores, labels and weights differ in length ({len(s)}, {len(y)}, {len(w)})")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or Inf")
    if w[y].sum() <= 0 or w[~y].sum() <= 0:
        raise ValueError("need at least one target and one nontarget trial (with non-zero weight)")
    return s, y, w


def det_curve(scores, labels, weights=None):
    """Miss and false-alarm rates at every distinct threshold.

    Returns ``(fnr, fpr, thresholds)``, each (M+1,) for M distinct scores: threshold ``thresholds[k]`` (the
    k-th smallest score; the last is +inf, accept nothing) gives FNR = P(score < t | target) (non-decreasing
    from 0 to 1) and FPR = P(score >= t | nontarget) (non-increasing from 1 to 0).
    """
    s, y, w = _arrays(scores, labels, weights)
    order = np.argsort(s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    thr, first = np.unique(s, return_index=True)  # first index of each distinct score
    tw = np.concatenate([[0.0], np.cumsum(w * y)])  # target weight strictly below index i: tw[i]
    nw = np.concatenate([[0.0], np.cumsum(w * ~y)])
    below_t = np.append(tw[first], tw[-1])
    below_n = np.append(nw[first], nw[-1])
    fnr = below_t / tw[-1]
    fpr = 1.0 - below_n / nw[-1]
    return fnr, fpr, np.append(thr, np.inf)


def eer(scores, labels, weights=None) -> tuple[float, float]:
    """Equal error rate, linearly interpolated where FNR and FPR cross. Returns ``(eer, threshold)``.

    Between the last point with FNR < FPR and the next one, both rates are interpolated linearly in the
    point index; EER is their common value there (as in the NIST / WeSpeaker scorers), and the threshold is
    interpolated the same way (the next point's threshold when it is +inf).
    """
    fnr, fpr, thr = det_curve(scores, labels, weights)
    d = fnr - fpr
    k = int(np.argmax(d >= 0))  # d[0] = -1 < 0 and d[-1] = 1 > 0, so 1 <= k
    d0, d1 = d[k - 1], d[k]
    t = -d0 / (d1 - d0)
    e = fnr[k - 1] + t * (fnr[k] - fnr[k - 1])
    th = thr[k - 1] + t * (thr[k] - thr[k - 1]) if np.isfinite(thr[k]) else thr[k - 1]
    return float(e), float(th)


def min_dcf(scores, labels, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0,
            weights=None) -> tuple[float, float]:
    """Normalised minimum detection cost: min over thresholds of
    ``(c_miss * p * FNR + c_fa * (1 - p) * FPR) / min(c_miss * p, c_fa * (1 - p))``.
    Returns ``(min_dcf, threshold)``."""
    fnr, fpr, thr = det_curve(scores, labels, weights)
    dcf = c_miss * p_target * fnr + c_fa * (1 - p_target) * fpr
    k = int(np.argmin(dcf))
    return float(dcf[k] / min(c_miss * p_target, c_fa * (1 - p_target))), float(thr[k])


# --- reports: overall, per gender, speaker bootstrap ------------------------------------------------------
def _gender_masks(enroll_gender, test_gender) -> dict[str, np.ndarray]:
    """Trials whose two sides share the gender, per gender (``f``, ``m``, ...); None genders are skipped."""
    eg, tg = np.asarray(enroll_gender, dtype=object), np.asarray(test_gender, dtype=object)
    out = {}
    for g in sorted({x for x in eg if x is not None} & {x for x in tg if x is not None}):
        out[str(g)] = (eg == g) & (tg == g)
    return out


def _point(s, y, w, gmasks, p_targets) -> dict:
    r = {"eer": eer(s, y, w)[0]}
    for p in p_targets:
        r[f"min_dcf_{p:g}"] = min_dcf(s, y, p, weights=w)[0]
    for g, m in gmasks.items():
        if (w[m] * y[m]).sum() > 0 and (w[m] * ~y[m]).sum() > 0:
            r[f"eer_{g}"] = eer(s[m], y[m], w[m])[0]
    if "eer_f" in r and "eer_m" in r:
        r["gender_gap"] = abs(r["eer_m"] - r["eer_f"])
    return r


def sv_report(scores, labels, enroll_speaker=None, test_speaker=None, enroll_gender=None, test_gender=None,
              p_targets=P_TARGETS, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Every metric, with bootstrap CIs when speakers are given.

    Per-gender EER uses the trials whose two sides share the gender (cross-gender nontargets are left out);
    ``gender_gap = |EER_m - EER_f|``. The bootstrap resamples speakers with replacement, within each gender
    (so every resample keeps the gender mix); a trial enters with weight ``count(enroll spk) * count(test
    spk)``. Returns ``{metric: value, "ci": {metric: [low, high]}, "n_trials", "n_target", "n_speakers", ...}``.
    """
    s, y, _ = _arrays(scores, labels)
    gm = _gender_masks(enroll_gender, test_gender) if enroll_gender is not None else {}
    rep = _point(s, y, np.ones_like(s), gm, p_targets)
    rep.update(n_trials=int(len(s)), n_target=int(y.sum()), n_nontarget=int((~y).sum()), p_targets=list(p_targets))
    for g, m in gm.items():
        rep[f"n_trials_{g}"] = int(m.sum())
    if enroll_speaker is None or n_boot <= 0:
        return rep
    es, ts = np.asarray(enroll_speaker, dtype=object), np.asarray(test_speaker, dtype=object)
    spk = sorted(set(es) | set(ts), key=str)
    idx = {k: i for i, k in enumerate(spk)}
    ei, ti = np.array([idx[x] for x in es]), np.array([idx[x] for x in ts])
    # speaker -> gender (from either side of any trial); strata of the resampling
    sg: dict[int, object] = {}
    if enroll_gender is not None:
        for i, g in zip(ei, enroll_gender):
            sg.setdefault(i, g)
        for i, g in zip(ti, test_gender):
            sg.setdefault(i, g)
    strata: dict[object, list[int]] = {}
    for i in range(len(spk)):
        strata.setdefault(sg.get(i), []).append(i)
    rng = np.random.default_rng(seed)
    boots: dict[str, list[float]] = {}
    for _ in range(n_boot):
        counts = np.zeros(len(spk))
        for members in strata.values():
            np.add.at(counts, rng.choice(members, size=len(members), replace=True), 1)
        w = counts[ei] * counts[ti]
        try:
            r = _point(s, y, w, gm, p_targets)
        except ValueError:  # a resample without targets or nontargets: skip it
            continue
        for k, v in r.items():
            boots.setdefault(k, []).append(v)
    rep["ci"] = {k: [float(np.quantile(v, alpha / 2)), float(np.quantile(v, 1 - alpha / 2))]
                 for k, v in boots.items()}
    rep.update(n_speakers=len(spk), n_boot=n_boot, ci_unit="speaker", ci_level=1 - alpha)
    return rep


def format_sv_report(title: str, rep: dict) -> str:
    """A plain-text table of :func:`sv_report` (rates in %, minDCF as is)."""
    ci = rep.get("ci", {})
    lines = [title, f"{rep['n_trials']} trials ({rep['n_target']} target, {rep['n_nontarget']} nontarget)"
             + (f", {rep['n_speakers']} speakers, {100 * rep['ci_level']:.0f}% CI over {rep['n_boot']} speaker "
                "resamples" if ci else ""),
             f"{'metric':<16}{'value':>9}{'CI':>18}"]
    keys = ["eer"] + [f"min_dcf_{p:g}" for p in rep["p_targets"]] + \
        sorted(k for k in rep if k.startswith("eer_")) + (["gender_gap"] if "gender_gap" in rep else [])
    for k in keys:
        pct = not k.startswith("min_dcf")
        f = (lambda v: f"{100 * v:.2f}") if pct else (lambda v: f"{v:.4f}")
        name = k + (" %" if pct else "")
        c = f"{f(ci[k][0])}-{f(ci[k][1])}" if k in ci else "-"
        lines.append(f"{name:<16}{f(rep[k]):>9}{c:>18}")
    return "\n".join(lines)


# --- DET plot -------------------------------------------------------------------------------------------
def probit(p):
    """Inverse standard normal CDF (scipy if installed, else torch.special.ndtri)."""
    try:
        from scipy.stats import norm

        return norm.ppf(p)
    except ImportError:  # pragma: no cover - scipy is a dependency, this is the fallback
        return torch.special.ndtri(torch.as_tensor(p, dtype=torch.float64)).numpy()


def plot_det(curves: dict[str, tuple], path: str | Path, title: str = "DET") -> Path:
    """DET curves on probit axes. ``curves``: label -> (scores, labels) or (fnr, fpr, eer). Written atomically."""
    import io

    import matplotlib


    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ticks = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    lo, hi = 5e-4, 0.5
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, c in curves.items():
        if len(c) == 2:
            fnr, fpr, _ = det_curve(*c)
            e = eer(*c)[0]
        else:
            fnr, fpr, e = c
        x, yv = np.clip(fpr, lo, 0.999), np.clip(fnr, lo, 0.999)  # the axes crop at hi
        ax.plot(probit(x), probit(yv), label=f"{label} (EER {100 * e:.2f}%)")
    ax.plot(probit([lo, hi]), probit([lo, hi]), color="grey", lw=0.5, ls=":")
    ax.set_xticks(probit(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(probit(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlim(probit(lo), probit(hi))
    ax.set_ylim(probit(lo), probit(hi))
    ax.set_xlabel("false alarm rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title(title)
    ax.grid(True, lw=0.3)
    ax.legend(loc="upper right", fontsize=8)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


# --- torchmetrics ----------------------------------------------------------------------------------------
class _ScoreMetric(Metric):
    """Accumulates (scores, labels) over ``update`` calls (and DDP ranks) for a whole-list metric."""

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
        self.scores.append(torch.as_tensor(scores, dtype=torch.float32).detach().flatten())
        self.labels.append(torch.as_tensor(labels).detach().flatten().long())

    def _cat(self):
        cat = lambda x: torch.cat(x) if isinstance(x, list) else x  # noqa: E731 (synced states are tensors)
        return cat(self.scores).cpu(), cat(self.labels).cpu()


class EER(_ScoreMetric):
    """Equal error rate (interpolated; see :func:`eer`) of all accumulated trials."""

    def compute(self) -> torch.Tensor:
        return torch.tensor(eer(*self._cat())[0])


class MinDCF(_ScoreMetric):
    """Normalised minDCF at ``p_target`` (see :func:`min_dcf`) of all accumulated trials."""

    def __init__(self, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.p_target, self.c_miss, self.c_fa = p_target, c_miss, c_fa

    def compute(self) -> torch.Tensor:
        return torch.tensor(min_dcf(*self._cat(), self.p_target, self.c_miss, self.c_fa)[0])
