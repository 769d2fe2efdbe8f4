"""Multi-talker metrics against hand-computed cases."""
from __future__ import annotations

import math

import pytest

from zoo.metrics.multitalker import (
    cpwer,
    emission_latency,
    evaluate_sessions,
    format_sessions_report,
    match_turns,
    orcwer,
    overlap_bin,
    overlap_ratio,
    turn_counting_accuracy,
)


def test_overlap_ratio():
    assert overlap_ratio([("A", 0, 2, ""), ("B", 1, 3, "")]) == pytest.approx(1 / 3)
    assert overlap_ratio([("A", 0, 1, ""), ("B", 2, 3, "")]) == 0.0
    assert overlap_ratio([("A", 0, 4, ""), ("B", 1, 2, "")]) == pytest.approx(1 / 4)
    assert overlap_ratio([]) == 0.0
    assert overlap_bin(0.0) == "0%" and overlap_bin(0.05) == "0-10%" and overlap_bin(1.0) == ">=30%"


def test_cpwer_concatenates_speakers_and_permutes():
    ref = [("A", 0, 1, "a b"), ("B", 0.5, 2, "d e"), ("A", 2, 3, "c")]       # A: "a b c", B: "d e"
    hyp = [(0, 0, 1, "d e"), (1, 0, 1, "a b"), (1, 2, 3, "x c")]            # ch1 "a b x c", ch0 "d e"
    r = cpwer([ref], [hyp])
    assert (r["errors"], r["words"]) == (1, 5) and r["wer"] == pytest.approx(0.2)
    # two sessions: errors and words add up
    r2 = cpwer([ref, [("A", 0, 1, "y z")]], [hyp, [(0, 0, 1, "")]])
    assert (r2["errors"], r2["words"]) == (3, 7)


def test_orcwer_ignores_speaker_identity_but_cpwer_does_not():
    ref = [("A", 0, 1, "a b"), ("B", 1, 2, "c d")]
    hyp = [(0, 0, 2, "a b c d")]  # both speakers' words on one channel
    assert orcwer([ref], [hyp])["wer"] == 0.0
    r = cpwer([ref], [hyp])  # A -> ch0: 2 insertions; B -> nothing: 2 deletions
    assert (r["errors"], r["words"]) == (4, 4)
    # an empty hypothesis: every reference word deleted
    assert orcwer([ref], [[]])["errors"] == 4 and cpwer([ref], [[]])["errors"] == 4


def test_turn_counting_accuracy():
    refs = [[("A", 0, 1, "x"), ("B", 1, 2, "y")], [("A", 0, 1, "x"), ("B", 1, 2, "y"), ("A", 2, 3, "z")]]
    hyps = [[(0, 0, 1, "x"), (1, 1, 2, "y")], [(0, 0, 3, "x y z"), (1, 1, 2, "y")]]
    assert turn_counting_accuracy(refs, hyps) == 0.5
    with pytest.raises(ValueError, match="2 reference sessions but 1"):
        turn_counting_accuracy(refs, hyps[:1])


def test_emission_latency_and_matching():
    ref = [("A", 0.0, 1.0, "a"), ("B", 2.0, 3.0, "b")]
    hyp = [(1, 2.1, 3.4, "b"), (0, 0.2, 1.5, "a")]
    assert sorted(match_turns(ref, hyp)) == [(0, 1), (1, 0)]
    lat = emission_latency([ref], [hyp])
    assert lat["start"]["n"] == 2 and lat["start"]["mean"] == pytest.approx(150)
    assert lat["start"]["median"] == pytest.approx(150) and lat["start"]["p90"] == pytest.approx(190)
    assert lat["end"]["mean"] == pytest.approx(450) and lat["end"]["p90"] == pytest.approx(490)
    # an unmatched reference turn is not a latency sample; no hypothesis -> NaN summary
    lat = emission_latency([ref], [[(0, 0.1, 0.9, "a")]])
    assert lat["start"]["n"] == 1 and lat["start"]["mean"] == pytest.approx(100)
    assert lat["end"]["mean"] == pytest.approx(-100)
    assert math.isnan(emission_latency([ref], [[]])["end"]["median"])


def test_evaluate_sessions_split_by_overlap():
    s0 = [("A", 0, 1, "a b"), ("B", 2, 3, "c")]          # no overlap
    s1 = [("A", 0, 2, "d"), ("B", 1, 3, "e f")]          # overlap 1/3
    h0 = [(0, 0, 1, "a b"), (0, 2, 3, "c")]
    h1 = [(0, 0, 2, "d"), (1, 1, 3, "e")]
    res = evaluate_sessions([s0, s1], [h0, h1])
    assert set(res["by_overlap"]) == {"0%", ">=30%"}
    # one channel holds both speakers: A -> ch0 inserts "c", B -> nothing deletes "c"
    assert res["by_overlap"]["0%"]["cpwer"]["wer"] == pytest.approx(2 / 3)
    assert res["by_overlap"]["0%"]["orcwer"]["wer"] == 0.0
    assert res["by_overlap"][">=30%"]["cpwer"]["wer"] == pytest.approx(1 / 3)  # "f" deleted
    assert res["all"]["cpwer"]["errors"] == 3 and res["all"]["cpwer"]["words"] == 6
    assert res["all"]["turn_counting_accuracy"] == 1.0
    text = format_sessions_report("t", res)
    assert "cpWER" in text and ">=30%" in text
