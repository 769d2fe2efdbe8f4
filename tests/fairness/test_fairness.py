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


# --- held-out selection and minimum speakers ---------------------------------------------------------------------
def test_split_speakers_deterministic_disjoint_and_overlap_refused():
    records, _ = geo_world(n=40)
    spk = [r["speaker"] for r in records]
    disc, score = C.split_speakers(spk, 0.25, seed=3)
    assert (disc, score) == C.split_speakers(list(reversed(spk)), 0.25, seed=3)  # order-free, seeded
    assert not set(disc) & set(score) and set(disc) | set(score) == set(spk) and len(score) == 10
    assert C.split_speakers(spk, 0.25, seed=4) != (disc, score)
    d = [r for r in records if r["speaker"] in disc]
    s = [r for r in records if r["speaker"] in score]
    rep = run_audit(d, "geo", geo_min_words=100, n_boot=20, n_perm=5, scoring=s, data=("A", "B"))
    sp = rep["speakers"]
    assert sp["held_out"] and sp["disjoint"] and (sp["discovery"]["data"], sp["scoring"]["data"]) == ("A", "B")
    assert (sp["discovery"]["speakers"], sp["scoring"]["speakers"]) == (30, 10)
    assert rep["overall"]["speakers"] == 10
    cs = rep["cohort_sets"][0]
    assert {x for c in cs["cohorts"].values() for x in c["speakers"]} == set(score)
    assert {x for c in cs["cohorts"].values() for x in c["discovery_speakers"]} == set(disc)
    from zoo.errors import ZooError
    from zoo.fairness.audit import format_markdown

    assert "disjoint (checked)" in format_markdown(rep) and "(30 speakers" in format_markdown(rep)
    with pytest.raises(ZooError, match="share 1 speaker"):
        run_audit(d, "geo", scoring=s + [r for r in d if r["speaker"] == disc[0]])


def test_worst_cohort_chosen_on_discovery_is_scored_on_held_out_speakers():
    """Discovery: accent x is worst. Scoring (other speakers): y is worse than x. The held-out report keeps x
    as bottom (measured, not re-chosen): a negative gap, WERs of the scoring speakers only."""
    def world(p, prefix):
        return [(f"{prefix}{a}{i}", int(p[a] * 10), 10, {"accent": a}) for a in "xyz" for i in range(4)
                for _ in range(3)]
    disc = recs(world({"x": 0.5, "y": 0.2, "z": 0.1}, "d"))
    score = recs(world({"x": 0.2, "y": 0.6, "z": 0.1}, "s"))
    rep = run_audit(disc, "metadata", columns=["accent"], min_words=10, n_boot=20, n_perm=50, scoring=score)
    a = rep["cohort_sets"][0]
    assert a["discovery"]["summary"]["bottom"] == "accent=x" and a["discovery"]["summary"]["top"] == "accent=z"
    m = a["summary"]
    assert (m["bottom"], m["top"]) == ("accent=x", "accent=z") and m["wer_bottom"] == pytest.approx(0.2)
    assert m["gap_abs"] == pytest.approx(0.1)  # y (0.6 on scoring) would give 0.5 if re-chosen
    assert {r["cohort"]: r["wer"] for r in a["rows"]}["accent=y"] == pytest.approx(0.6)
    assert a["cohorts"]["accent=x"]["speakers"] == [f"sx{i}" for i in range(4)]
    part = rep["cohort_sets"][1]  # the partition found on discovery ({x} vs {y, z}), scored on held-out speakers
    assert part["discovery"]["summary"]["bottom"] == "accent in {x}" and part["summary"]["bottom"] == "accent in {x}"
    assert part["summary"]["gap_abs"] < 0 and part["significance"]["p_value"] > 0.5  # one-sided test fails
    sel = rep["selection"]
    assert sel["cohort"] == "accent in {x}" and sel["chosen_on"] == "discovery speakers"
    assert sel["speakers"] == [f"sx{i}" for i in range(4)] and sel["discovery_speakers"] == [f"dx{i}" for i in range(4)]
    # a planted region found on discovery speakers holds up on the held-out ones
    records, planted = geo_world(n=240)
    d, s = C.split_speakers([r["speaker"] for r in records], 0.5, seed=0)
    rep = run_audit([r for r in records if r["speaker"] in d], "geo", geo_min_words=600, n_boot=20, n_perm=50,
                    scoring=[r for r in records if r["speaker"] in s])
    sel = set(rep["selection"]["speakers"])
    assert sel <= set(s) and len(sel & planted) / len(sel) >= 0.8
    assert rep["cohort_sets"][0]["significance"]["p_value"] < 0.05


def test_min_speakers_excludes_a_one_speaker_cohort_from_the_gap():
    spec = [(f"a{i}", 1, 10, {"g": "a"}) for i in range(4) for _ in range(3)] + \
        [(f"b{i}", 2, 10, {"g": "b"}) for i in range(4) for _ in range(3)] + [("c0", 9, 10, {"g": "c"})] * 12
    rep = run_audit(recs(spec), "metadata", columns=["g"], min_words=10, n_boot=20, n_perm=5)
    m = rep["cohort_sets"][0]["summary"]
    assert (m["bottom"], m["eligible"]) == ("g=b", 2)  # g=c (1 speaker, 90% WER, 120 words) is not ranked
    assert "g=c" in [r["cohort"] for r in rep["cohort_sets"][0]["rows"]]
    assert "g in {c}" not in rep["cohort_sets"][1]["cohorts"]  # nor is c alone a side of a partition
    one = run_audit(recs(spec), "metadata", columns=["g"], min_words=10, min_speakers=1, n_boot=20, n_perm=5)
    assert one["cohort_sets"][0]["summary"]["bottom"] == "g=c" and one["selection"]["cohort"] == "g in {c}"
    # embedding: an outlier speaker forms its own cluster, shown but not ranked
    rng = np.random.default_rng(0)
    emb = {f"a{i}": np.array([1.0, 0.0]) + rng.normal(scale=0.01, size=2) for i in range(4)}
    emb |= {f"b{i}": np.array([0.0, 1.0]) + rng.normal(scale=0.01, size=2) for i in range(4)}
    emb["c0"] = np.array([-1.0, 0.0])
    rep = run_audit(recs(spec), "embedding", embeddings=emb, k=3, min_words=10, n_boot=20, n_perm=5)
    s = rep["cohort_sets"][0]
    assert s["summary"]["eligible"] == 2 and "c0" not in rep["selection"]["speakers"]
    from zoo.fairness.audit import format_markdown

    assert " † |" in format_markdown(rep) and "3 speakers" in format_markdown(rep)


def test_embedding_compared_with_metadata_at_the_same_k_and_missing_values():
    rng = np.random.default_rng(0)
    emb, spec = {}, []
    for i in range(24):
        g = "fmu"[i % 3] if i < 23 else "u"
        emb[f"s{i}"] = rng.normal(size=4)
        spec += [(f"s{i}", 1, 10, {"gender": None if g == "u" else g, "age": None if i < 2 else 20 + i})] * 2
    records = recs(spec)
    rep = run_audit(records, "embedding", embeddings=emb, k_match="gender", min_words=10, min_speakers=3,
                    n_boot=20, n_perm=5)
    names = [s["name"] for s in rep["cohort_sets"]]
    assert names == ["k-means (k=3)", "gender"]  # f, m and unknown (None) each have >= 3 speakers
    assert "gender=unknown" in rep["cohort_sets"][1]["cohorts"]
    assert rep["cohort_sets"][0]["comparison"]["k"] == 3 and rep["selection"]["cohort_set"] == "k-means (k=3)"
    from zoo.fairness.audit import format_markdown

    assert "Embedding vs metadata (`gender`) at k = 3" in format_markdown(rep)
    # held out: clusters of the discovery speakers; each scoring speaker joins its nearest centroid
    d, sc = C.split_speakers(emb, 0.5, seed=0)
    rep = run_audit([r for r in records if r["speaker"] in d], "embedding", embeddings=emb, k_match="gender",
                    min_words=10, min_speakers=2, n_boot=20, n_perm=5,
                    scoring=[r for r in records if r["speaker"] in sc])
    km = rep["cohort_sets"][0]["cohorts"]
    cents = np.asarray(next(iter(km.values()))["rule"]["centroids"])
    for name, c in km.items():
        assert set(c["discovery_speakers"]) <= set(d)
        assert all(f"e{np.argmin(((cents - emb[x]) ** 2).sum(1))}" == name for x in c["speakers"])
    assert sorted(x for c in km.values() for x in c["speakers"]) == sc
    # a missing numeric value is on neither side of a threshold
    best = C.partition_search(C.speaker_table(records, ["age"]), ["age"], min_words=10, min_speakers=3)
    assert best["high"]["rule"]["type"] == "threshold"
    assert not {"s0", "s1"} & set(best["high"]["speakers"] + best["low"]["speakers"])


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
