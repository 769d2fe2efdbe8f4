"""Speaker-verification metrics against hand-computed cases and independent computations (scikit-learn ROC,
brute-force threshold sweeps), the torchmetrics classes, the speaker bootstrap and the DET plot."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_curve

from zoo.metrics.speaker import EER, MinDCF, det_curve, eer, min_dcf, plot_det, sv_report


def test_eer_hand_cases():
    # targets 0.9 0.8 0.3, nontargets 0.7 0.2 0.1: at t=0.7 one target missed (1/3), one nontarget accepted (1/3)
    s, y = [0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0]
    e, t = eer(s, y)
    assert e == pytest.approx(1 / 3) and t == pytest.approx(0.7)
    # perfectly separated: EER 0, threshold between the classes (interpolated)
    e, t = eer([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert e == pytest.approx(0.0) and 0.2 <= t <= 0.8
    # perfectly reversed: EER 1
    assert eer([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])[0] == pytest.approx(1.0)
    # crossing between points: 2 targets 2 nontargets interleaved t n t n (desc) -> EER 0.5 by interpolation
    assert eer([0.9, 0.7, 0.5, 0.3], [1, 0, 1, 0])[0] == pytest.approx(0.5)


def test_det_curve_hand_case():
    fnr, fpr, thr = det_curve([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0])
    np.testing.assert_allclose(thr[:-1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    np.testing.assert_allclose(fnr, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(fpr, [1, 2 / 3, 1 / 3, 1 / 3, 0, 0, 0])
    assert np.isinf(thr[-1])


def test_min_dcf_hand_case():
    # p=0.5: dcf = 0.5 fnr + 0.5 fpr, normalised by 0.5 -> fnr + fpr; min over the curve above = 1/3
    v, t = min_dcf([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0], p_target=0.5)
    assert v == pytest.approx(1 / 3) and t in (0.3, 0.8)
    # p=0.01 normalised: (0.01 fnr + 0.99 fpr) / 0.01; best is to accept nothing but the top target... min is
    # at fpr=0: 0.01*fnr/0.01 = fnr = 1/3 (t=0.8)
    v, t = min_dcf([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0], p_target=0.01)
    assert v == pytest.approx(1 / 3) and t == pytest.approx(0.8)


def _random_trials(n_t=400, n_n=4000, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    s = np.concatenate([rng.normal(1.0, 1.0, n_t), rng.normal(-0.5, 1.2, n_n)])
    if ties:
        s = np.round(s, 1)
    return s, np.concatenate([np.ones(n_t, bool), np.zeros(n_n, bool)])


@pytest.mark.parametrize("ties", [False, True])
def test_det_and_eer_against_sklearn(ties):
    s, y = _random_trials(ties=ties)
    fnr, fpr, thr = det_curve(s, y)
    fpr_sk, tpr_sk, thr_sk = roc_curve(y, s, drop_intermediate=False)
    # sklearn's points (decreasing thresholds, accept score >= t) are ours reversed, minus our +inf end
    ours = {round(float(t), 12): (a, b) for t, a, b in zip(thr[:-1], fnr[:-1], fpr[:-1])}
    for t, fp, tp in zip(thr_sk[1:], fpr_sk[1:], tpr_sk[1:]):
        a, b = ours[round(float(t), 12)]
        assert a == pytest.approx(1 - tp) and b == pytest.approx(fp)
    # EER: where sklearn's FNR and FPR cross, linearly interpolated
    fnr_sk = 1 - tpr_sk
    d = fnr_sk - fpr_sk  # decreasing along sklearn's order
    k = int(np.argmax(d <= 0))
    t = d[k - 1] / (d[k - 1] - d[k])
    eer_sk = fpr_sk[k - 1] + t * (fpr_sk[k] - fpr_sk[k - 1])
    assert eer(s, y)[0] == pytest.approx(eer_sk, abs=1e-9)


def test_min_dcf_against_brute_force():
    s, y = _random_trials(seed=3)
    for p in (0.01, 0.05):
        best = min((p * np.mean(s[y] < t) + (1 - p) * np.mean(s[~y] >= t)) / min(p, 1 - p)
                   for t in np.append(np.unique(s), np.inf))
        assert min_dcf(s, y, p)[0] == pytest.approx(best)


def test_weights_equal_repetition():
    s, y = _random_trials(50, 200, seed=1)
    w = np.random.default_rng(0).integers(0, 4, len(s))
    rep_s, rep_y = np.repeat(s, w), np.repeat(y, w)
    assert eer(s, y, w)[0] == pytest.approx(eer(rep_s, rep_y)[0])
    assert min_dcf(s, y, 0.05, weights=w)[0] == pytest.approx(min_dcf(rep_s, rep_y, 0.05)[0])


def test_metric_errors():
    with pytest.raises(ValueError, match="target and one nontarget"):
        eer([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        eer([0.1, float("nan")], [1, 0])


def test_torchmetrics_accumulate():
    s, y = _random_trials(seed=2)
    m, d = EER(), MinDCF(p_target=0.01)
    for chunk in np.array_split(np.arange(len(s)), 7):
        m.update(torch.tensor(s[chunk]), torch.tensor(y[chunk]))
        d.update(torch.tensor(s[chunk]), torch.tensor(y[chunk]))
    assert float(m.compute()) == pytest.approx(eer(s.astype(np.float32), y)[0], abs=1e-6)
    assert float(d.compute()) == pytest.approx(min_dcf(s.astype(np.float32), y, 0.01)[0], abs=1e-6)
    m.reset()
    m.update(torch.tensor([0.9, 0.1]), torch.tensor([1, 0]))
    assert float(m.compute()) == 0.0


def _speaker_trials(seed=0):
    """Trials among 8 speakers (4 f, 4 m) x 5 utterances with speaker-dependent quality."""
    rng = np.random.default_rng(seed)
    spk = [f"{g}{i}" for g in "fm" for i in range(4)]
    utts = [(s, k) for s in spk for k in range(5)]
    rows = []
    for i in range(len(utts)):
        for j in range(i + 1, len(utts)):
            (a, _), (b, _) = utts[i], utts[j]
            same = a == b
            noise = 1.5 if a[0] == "f" else 0.8
            rows.append((rng.normal(1.5 if same else 0.0, noise), same, a, b))
    s, y, es, ts = map(list, zip(*rows))
    return np.array(s), np.array(y), es, ts, [x[0] for x in es], [x[0] for x in ts]


def test_sv_report_gender_and_bootstrap():
    s, y, es, ts, eg, tg = _speaker_trials()
    rep = sv_report(s, y, es, ts, eg, tg, n_boot=200, seed=0)
    same_f = (np.array(eg) == "f") & (np.array(tg) == "f")
    assert rep["eer_f"] == pytest.approx(eer(s[same_f], y[same_f])[0])
    assert rep["gender_gap"] == pytest.approx(abs(rep["eer_m"] - rep["eer_f"]))
    assert rep["eer_f"] > rep["eer_m"]  # female trials were made noisier
    assert rep["n_trials_f"] == int(same_f.sum()) and rep["n_speakers"] == 8
    for k in ("eer", "eer_f", "eer_m", "gender_gap", "min_dcf_0.01"):
        lo, hi = rep["ci"][k]
        assert lo <= hi and lo < rep[k] * 1.5 + 1e-9
    lo, hi = rep["ci"]["eer"]
    assert lo <= rep["eer"] <= hi and hi > lo
    # deterministic in the seed
    assert sv_report(s, y, es, ts, eg, tg, n_boot=200, seed=0)["ci"] == rep["ci"]


def test_det_plot_png(tmp_path):
    s, y = _random_trials(seed=4)
    fnr, fpr, _ = det_curve(s, y)
    out = plot_det({"a": (s, y), "b": (fnr, fpr, eer(s, y)[0])}, tmp_path / "sub" / "det.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in out.parent.iterdir()] == ["det.png"]  # no temp file left
