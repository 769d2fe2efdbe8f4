"""Fairness toolkit on synthetic error records (fast, no audio): metric definitions against hand-computed cases,
recovery of planted cohorts (a high-error lat/lon region, an attribute, embedding clusters) where a random
partition fails the same check, and the EWC penalty against its formula."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.fairness import cohorts as C
from zoo.fairness.audit import run_audit
from zoo.fairness.metrics import cohort_stats, gap_summary, overall

from helpers import geo_world, recs


# --- metric definitions on hand-computed cases -----------------------------------------------------------------
def test_cohort_wer_gap_share_and_spread_by_hand():
    r = recs([("a", 1, 10, {}), ("a", 1, 10, {}), ("b", 2, 10, {}),   # cohort X: 4/30
              ("c", 3, 10, {}), ("d", 5, 10, {}),                     # cohort Y: 8/20
              ("e", 0, 5, {})])                                       # cohort Z: 0/5 (too small to rank)
    labels = ["X", "X", "X", "Y", "Y", "Z"]
    rows = {x["cohort"]: x for x in cohort_stats(r, labels, n_boot=200)}
    assert rows["X"]["wer"] == pytest.approx(4 / 30) and rows["Y"]["wer"] == pytest.approx(8 / 20)
    assert rows["X"]["speakers"] == 2 and rows["X"]["utterances"] == 3
    assert rows["X"]["share_speakers"] == pytest.approx(2 / 5)
    assert rows["Y"]["share_words"] == pytest.approx(20 / 55)
    # speaker bootstrap of Y (speakers c: 3/10, d: 5/10): every resample is 0.3, 0.4 or 0.5
    assert 0.3 - 1e-9 <= rows["Y"]["low"] <= 0.4 <= rows["Y"]["high"] <= 0.5 + 1e-9
    assert list(rows) == ["Y", "X", "Z"]  # worst first
    s = gap_summary(list(rows.values()), min_words=10)
    assert (s["bottom"], s["top"], s["eligible"]) == ("Y", "X", 2)   # Z (0% WER, 5 words) is not the top
    assert s["gap"] == pytest.approx((0.4 - 4 / 30) / (4 / 30))  # (bottom - top) / top = 200%
    assert s["gap_abs"] == pytest.approx(0.4 - 4 / 30)
    assert s["bottom_share_speakers"] == pytest.approx(2 / 5) and s["bottom_share_words"] == pytest.approx(20 / 55)
    assert s["mean"] == pytest.approx((0.4 + 4 / 30) / 2) and s["max"] == pytest.approx(0.4)
    assert s["variance"] == pytest.approx(((0.4 - 4 / 30) / 2) ** 2)  # population variance of two values
    # with Z eligible the top WER is 0: the relative gap is undefined, the absolute one is not
    s0 = gap_summary(list(rows.values()), min_words=1)
    assert s0["top"] == "Z" and s0["gap"] is None and s0["gap_abs"] == pytest.approx(0.4)
    o = overall(r, n_boot=100)
    assert o["wer"] == pytest.approx(12 / 55) and o["speakers"] == 5 and o["utterances"] == 6


# --- planted geographic region ------------------------------------------------------------------------------
def planted_check(groups: dict[str, list[str]], table: dict, planted: set) -> dict:
    """The check both partitions must pass: the worst group is mostly planted speakers, the groups at least
    halfway from the best to the worst WER hold most planted speakers, and the WER gap is large."""
    wer = {g: sum(table[s]["errors"] for s in v) / sum(table[s]["words"] for s in v) for g, v in groups.items()}
    worst, best = max(wer, key=wer.get), min(wer, key=wer.get)
    high = [g for g in groups if wer[g] >= (wer[worst] + wer[best]) / 2]
    recall = len(planted & {s for g in high for s in groups[g]}) / len(planted)
    precision = len(planted & set(groups[worst])) / len(groups[worst])
    gap = (wer[worst] - wer[best]) / wer[best]
    return {"precision": precision, "recall": recall, "gap": gap,
            "passed": precision >= 0.8 and recall >= 0.8 and gap >= 1.5}


def test_geo_partition_recovers_planted_region_and_random_partition_does_not():
    records, planted = geo_world()
    table = C.speaker_table(records, ["lat", "lon"])
    regions = C.geo_partition(table, min_words=300)
    assert all(r["words"] >= 300 for r in regions)
    assert sum(len(r["speakers"]) for r in regions) == len(table)  # a partition
    found = planted_check({r["region"]: r["speakers"] for r in regions}, table, planted)
    assert found["passed"], found
    # the worst region's box lies inside the planted one, up to sampling of the speaker positions
    worst = max(regions, key=lambda r: r["wer"])["rule"]
    assert worst["lat"][0] is not None and worst["lat"][0] >= 39
    assert worst["lon"][1] is not None and worst["lon"][1] <= -99
    # the same number of random regions of the same sizes fails the same check
    rng = np.random.default_rng(1)
    spk = list(rng.permutation(sorted(table)))
    groups, i = {}, 0
    for r in regions:
        groups[r["region"]] = spk[i:i + len(r["speakers"])]
        i += len(r["speakers"])
    rand = planted_check(groups, table, planted)
    assert not rand["passed"], rand
    assert rand["gap"] < found["gap"] / 2


def test_geo_audit_is_significant_only_with_a_planted_region():
    records, _ = geo_world(n=120)
    rep = run_audit(records, "geo", geo_min_words=300, n_boot=50, n_perm=30)
    assert rep["cohort_sets"][0]["significance"]["p_value"] < 0.05
    assert set(rep["selection"]["speakers"]) <= {r["speaker"] for r in records}
    null, _ = geo_world(n=120, p_in=0.10)  # nothing planted
    rep0 = run_audit(null, "geo", geo_min_words=300, n_boot=50, n_perm=30)
    assert rep0["cohort_sets"][0]["significance"]["p_value"] > 0.05


def test_geo_rule_selects_new_speakers_inside_the_box():
    rule = {"type": "box", "lat": [40.0, None], "lon": [None, -100.0]}
    spk = {"in": {"lat": 45, "lon": -110}, "edge": {"lat": 40.0, "lon": -120}, "out1": {"lat": 39, "lon": -110},
           "out2": {"lat": 45, "lon": -100.0}, "nogeo": {}}
    assert C.rule_members(rule, spk) == ["edge", "in"]


# --- metadata: binary partition search ----------------------------------------------------------------------
def meta_world(seed=0, effect=True):
    """60 speakers with 3 attributes; the planted one is 'accent' in {x, y} (3x the error rate)."""
    rng = np.random.default_rng(seed)
    spec = []
    for i in range(60):
        a = {"accent": "wxyz"[i % 4], "device": "ab"[rng.integers(2)], "age": int(rng.integers(18, 80))}
        p = 0.30 if effect and a["accent"] in "xy" else 0.10
        for _ in range(4):
            spec.append((f"s{i}", int(rng.binomial(10, p)), 10, a))
    return recs(spec)


def test_partition_search_finds_planted_attribute():
    records = meta_world()
    table = C.speaker_table(records, ["accent", "device", "age"])
    best = C.partition_search(table, ["accent", "device", "age"], min_words=100)
    assert best["column"] == "accent"
    assert sorted(best["high"]["rule"]["values"]) == ["x", "y"] and best["high"]["rule"]["type"] == "values"
    assert best["high"]["wer"] > 2 * best["low"]["wer"]
    # 4 accent values: 7 splits; device: 1; age: distinct values - 1
    assert best["tried"] == 7 + 1 + len({s["age"] for s in table.values()}) - 1
    # a new speaker with accent y is in the high cohort
    assert C.rule_members(best["high"]["rule"], {"n1": {"accent": "y"}, "n2": {"accent": "w"}}) == ["n1"]
    stat = lambda t: C.partition_search(t, ["accent", "device", "age"], 100)["diff"]
    assert C.permutation_pvalue(table, stat, n_perm=30)["p_value"] < 0.05
    null = C.speaker_table(meta_world(effect=False), ["accent", "device", "age"])
    assert C.permutation_pvalue(null, stat, n_perm=30)["p_value"] > 0.05


def test_partition_search_numeric_threshold_and_min_words():
    records = recs([(f"s{i}", 5 if i >= 7 else 1, 10, {"age": 20 + i}) for i in range(10)])
    table = C.speaker_table(records, ["age"])
    best = C.partition_search(table, ["age"], min_words=20, min_speakers=2)
    assert best["high"]["rule"] == {"type": "threshold", "column": "age", "op": ">", "threshold": 26.5}
    assert C.partition_search(table, ["age"], min_words=60) is None  # no split leaves 60 words on both sides


def test_metadata_audit_report_and_missing_column():
    rep = run_audit(meta_world(), "metadata", columns=["accent", "device"], n_boot=50, n_perm=20)
    names = [s["name"] for s in rep["cohort_sets"]]
    assert names == ["accent", "device", "best binary partition"]
    assert rep["selection"]["cohort_set"] == "best binary partition"
    assert rep["selection"]["rule"]["column"] == "accent"
    from zoo.errors import ZooError

    with pytest.raises(ZooError, match="nationality"):
        run_audit(meta_world(), "metadata", columns=["nationality"])


# --- embedding cohorts ------------------------------------------------------------------------------------------
def test_kmeans_recovers_planted_clusters_and_chooses_k_by_silhouette():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16)) * 3
    emb, truth = {}, {}
    for i in range(45):
        v = centers[i % 3] + rng.normal(scale=0.3, size=16)
        emb[f"s{i}"] = v / np.linalg.norm(v)
        truth[f"s{i}"] = i % 3
    coh, info = C.kmeans_cohorts(emb, k=None, k_max=6)
    assert info["k"] == 3 and len(coh) == 3
    assert info["silhouette"]["3"] == max(info["silhouette"].values())
    for c in coh.values():  # each cluster is one planted group
        assert len({truth[s] for s in c["speakers"]}) == 1
    # the centroid rule puts a new speaker of group 1 with the others of group 1
    v = centers[1] + rng.normal(scale=0.3, size=16)
    new = {"new": v / np.linalg.norm(v)}
    home = next(name for name, c in coh.items() if truth[c["speakers"][0]] == 1)
    assert C.rule_members(coh[home]["rule"], {"new": {}}, new) == ["new"]
    coh2, info2 = C.kmeans_cohorts(emb, k=2)
    assert info2["k"] == 2 and len(coh2) == 2


def test_embedding_audit_finds_the_high_error_cluster():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(2, 8)) * 3
    emb, spec = {}, []
    for i in range(30):
        g = i % 2
        v = centers[g] + rng.normal(scale=0.2, size=8)
        emb[f"s{i}"] = v / np.linalg.norm(v)
        for _ in range(4):
            spec.append((f"s{i}", int(rng.binomial(10, 0.4 if g else 0.1)), 10, {}))
    rep = run_audit(recs(spec), "embedding", embeddings=emb, n_boot=50, n_perm=50)
    s = rep["cohort_sets"][0]
    assert s["clustering"]["k"] == 2
    assert set(rep["selection"]["speakers"]) == {f"s{i}" for i in range(1, 30, 2)}
    assert s["summary"]["gap"] > 1.5 and s["significance"]["p_value"] < 0.05


# --- EWC penalty ----------------------------------------------------------------------------------------------
def test_ewc_penalty_equals_formula_and_pulls_toward_anchor():
    from zoo.tasks.regularizers import ParameterAnchor, set_trainable

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    anchor = {n: p.detach().clone() for n, p in net.named_parameters()}
    fisher = {n: torch.rand_like(p) for n, p in net.named_parameters()}
    pen = ParameterAnchor(net, weight=4.0, fisher=fisher, normalize="none")
    assert pen(net).item() == 0.0
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    want = 0.5 * 4.0 * sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in net.named_parameters())
    got = pen(net)
    assert float(got) == pytest.approx(float(want), rel=1e-6)
    got.backward()
    for n, p in net.named_parameters():  # gradient = λ F (θ − θ*): a gradient step moves θ toward θ*
        assert torch.allclose(p.grad, 4.0 * fisher[n] * (p - anchor[n]), atol=1e-6)
    before = float(got)
    with torch.no_grad():
        for p in net.parameters():
            p.sub_(0.05 * p.grad)
    assert pen(net).item() < before
    # L2-SP: F = 1; normalize=mean rescales F to mean 1, so a constant F gives exactly L2-SP
    l2 = ParameterAnchor(net, weight=2.0)
    normed = ParameterAnchor(net, weight=2.0, fisher={n: torch.full_like(p, 7.0) for n, p in net.named_parameters()})
    moved = {n: p.detach().clone() for n, p in net.named_parameters()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1)
    want = 0.5 * 2.0 * sum(float(((p - moved[n]) ** 2).sum()) for n, p in net.named_parameters())
    assert l2(net).item() == pytest.approx(want, rel=1e-5)
    assert normed(net).item() == pytest.approx(want, rel=1e-5)
    # frozen parts
    frozen = set_trainable(torch.nn.ModuleDict({"encoder": torch.nn.Linear(2, 2), "predictor": torch.nn.Linear(2, 2)}),
                           "predictor")
    assert len(frozen) == 2
