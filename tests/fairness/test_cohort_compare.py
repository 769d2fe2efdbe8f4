"""``scripts/cohort_compare.py``: dev speakers into the cohorts of ``scripts/cohort_input.py`` by the training speakers'
recipe (checked by hand on a tiny random speaker model), ``choose`` names the worst *eligible* dev cohort,
``compare``'s table equals hand-computed WERs, relative changes and the dev-fixed gap, and bad input is one line
that writes nothing. Audio is synthetic noise; decoding is planted (per model and speaker error rates) except in
one end-to-end run with a tiny random ASR model."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from zoo.fairness import records as R
from zoo.fairness.cohorts import nearest_centroids

from helpers import TINY_SPEAKER, load_script

CC = load_script("scripts/cohort_compare.py")
D = TINY_SPEAKER["encoder"]["embed_dim"]
K = 4
# dev speaker -> the cohort its (planted) embedding lies next to; d6 has 2 words only
DEV = {"d1": 0, "d2": 0, "d3": 1, "d4": 2, "d5": 2, "d6": 3}
TEST = {"t1": 0, "t5": 0, "t2": 1, "t3": 2, "t4": 3}
DEV_WORDS = {"d6": 1}  # words per utterance (default 4)
# planted per-speaker error rates of the dev model (tiny-model): cohort WERs 0 25%, 1 75%, 2 50%, 3 100%
DEV_RATE = {"d1": 0.25, "d2": 0.25, "d3": 0.75, "d4": 0.5, "d5": 0.5, "d6": 1.0}
TEST_RATE = {"tiny-model": {"t1": 0.25, "t5": 0.5, "t2": 0.75, "t3": 0.5, "t4": 0.25},
             "tiny-b": {"t1": 0.25, "t5": 0.25, "t2": 0.25, "t3": 0.5, "t4": 0.25},
             "tiny-c": {"t1": 0.5, "t5": 0.5, "t2": 0.5, "t3": 0.75, "t4": 0.5}}


def _manifest(path: Path, speakers, n_utts: int, words: dict, seed: int) -> Path:
    """Noise files (0.3-0.5 s, a per-speaker spectral tilt) and a manifest whose ids are NOT in file order."""
    rng = np.random.default_rng(seed)
    rows = []
    for si, spk in enumerate(speakers):
        for u in reversed(range(n_utts)):  # ids c, b, a: id order differs from file order
            x = rng.standard_normal(int(16000 * (0.3 + 0.1 * u)))
            x = np.convolve(x, np.ones(si + 1) / (si + 1), mode="same") * 0.1
            wav = path.parent / f"{spk}-{u}.wav"
            sf.write(wav, x.astype(np.float32), 16000)
            rows.append({"id": f"{spk}-{'abc'[u]}", "audio_filepath": str(wav), "duration": len(x) / 16000,
                         "text": " ".join(["WORD"] * words.get(spk, 4)), "speaker": spk})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def world(tmp_path, tiny_speaker_folder, tiny_folder):
    """dev / test manifests, a cohort file (tiny speaker model, K one-hot centroids), three tiny ASR folders."""
    dev = _manifest(tmp_path / "dev.jsonl", list(DEV), 3, DEV_WORDS, 0)
    test = _manifest(tmp_path / "test.jsonl", list(TEST), 2, {}, 1)
    cdir = tmp_path / "cohorts"
    cdir.mkdir()
    train = {"tr0": 0, "tr1": 1, "tr2": 2, "tr3": 3, "tr4": 1}
    doc = {"speaker_model": str(tiny_speaker_folder), "k": K, "metric": "euclidean", "centroids": np.eye(K, D).tolist(),
           "speakers": train, "data": {"max_per_speaker": 2}}
    (cdir / "cohorts.json").write_text(json.dumps(doc))
    for i in range(K):
        (cdir / f"cohort_{i}_speakers.txt").write_text("".join(f"{s}\n" for s, c in train.items() if c == i))
    models = {"tiny-model": tiny_folder}
    for name in ("tiny-b", "tiny-c"):
        models[name] = Path(shutil.copytree(tiny_folder, tmp_path / name))
    return {"dev": dev, "test": test, "cohorts": cdir / "cohorts.json", "models": models, "root": tmp_path}


def _planted_embeddings(model, records, max_per_speaker=20, progress=True):
    """Speaker embeddings next to the one-hot centroid of the speaker's planted cohort."""
    out = {}
    for s in sorted({r["speaker"] for r in records}):
        c = {**DEV, **TEST}[s]
        v = np.full(D, 0.05)
        v[c] = 1.0
        out[s] = v / np.linalg.norm(v)
    return out


def _planted_records(model, items, *args, **kwargs):
    """error_records without decoding: round(rate * words) errors per utterance, the rate by model and speaker."""
    rates = {**{"tiny-model": DEV_RATE}.get(Path(model.source).name, {}), **TEST_RATE[Path(model.source).name]}
    out = []
    for it in items:
        w = len(it["text"].split())
        out.append({"id": it["id"], "audio": it["audio"], "speaker": it["speaker"],
                    "errors": round(rates[it["speaker"]] * w), "words": w, "ref": it["text"], "hyp": ""})
    return out


@pytest.fixture
def planted(monkeypatch):
    monkeypatch.setattr(CC, "speaker_embeddings", _planted_embeddings)
    monkeypatch.setattr(R, "error_records", _planted_records)


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _choose(world, *extra):
    return CC.main(["choose", "--cohorts", str(world["cohorts"]), "--model", str(world["models"]["tiny-model"]),
                    "--sets", str(world["dev"]), "--n-boot", "20", *extra])


# --- speaker-level assignment ----------------------------------------------------------------------------------
def test_nearest_centroid_metrics_by_hand():
    cents = [[1.0, 0.0], [3.0, 3.0]]
    e = {"a": np.array([0.8, 0.6]), "b": np.array([0.0, 1.0]), "c": np.array([2.0, 2.0])}
    # a: squared distances 0.40 vs 10.6 -> 0; cosines 0.80 vs 0.99 -> 1
    assert nearest_centroids(e, cents, "euclidean") == {"a": 0, "b": 0, "c": 1}
    assert nearest_centroids(e, cents, "cosine") == {"a": 1, "b": 1, "c": 1}
    assert nearest_centroids({"t": np.array([1.0, 1.0])}, [[1.0, 0.0], [0.0, 1.0]]) == {"t": 0}  # tie: lower index


def test_dev_speakers_get_the_training_recipe_cohort(world, tiny_speaker_folder):
    """The re-normalised mean of the first max_per_speaker (in id order) L2-normalised utterance embeddings, and the
    nearest centroid of that, by hand with the tiny speaker model."""
    import zoo

    spk = zoo.from_pretrained(tiny_speaker_folder)
    items = R.load_items(str(world["dev"]), None)
    hand = {}
    for s in DEV:
        first = sorted((it for it in items if it["speaker"] == s), key=lambda it: it["id"])[:2]  # max_per_speaker 2
        assert [it["id"] for it in first] == [f"{s}-a", f"{s}-b"]
        u = [spk.embed([it["audio"]])[0].numpy() for it in first]
        m = np.mean([x / np.linalg.norm(x) for x in u], axis=0)
        hand[s] = m / np.linalg.norm(m)
    # centroids: three speakers' own embeddings, and the mirror image of a fourth: several cohorts get speakers
    cents = [hand["d1"], hand["d3"], hand["d5"], -hand["d2"]]
    doc = json.loads(world["cohorts"].read_text())
    world["cohorts"].write_text(json.dumps({**doc, "centroids": [c.tolist() for c in cents]}))
    cohorts = CC.read_cohorts(world["cohorts"])
    assign, emb = CC.assign_speakers({"dev": items}, cohorts)
    for s in DEV:
        assert np.allclose(emb[s], hand[s], atol=1e-5), s
    want = {s: min(range(K), key=lambda j: float(((cents[j] - hand[s]) ** 2).sum())) for s in DEV}
    assert assign == want
    assert {want["d1"], want["d3"], want["d5"]} == {0, 1, 2}


# --- choose ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("min_words,min_speakers,target", [(1, 1, 3), (5, 1, 1), (1, 2, 2)])
def test_choose_takes_the_worst_eligible_cohort(world, planted, capsys, monkeypatch, min_words, min_speakers,
                                                target):
    """Cohort WERs on dev: 0 25%, 1 75%, 2 50%, 3 100% (d6 alone, 2 words): 3 is the worst unless ineligible by
    words (then 1), 1 and 3 have one speaker each (then 2)."""
    assert _choose(world, "--min-words", str(min_words), "--min-speakers", str(min_speakers)) == 0
    doc = json.loads((world["cohorts"].parent / "choice.json").read_text())
    assert doc["target"] == target and doc["top"] == 0
    assert doc["dev_speakers"] == DEV
    assert doc["target_speakers_file"] == str(world["cohorts"].parent / f"cohort_{target}_speakers.txt")
    rows = {r["cohort"]: r for r in doc["rows"]}
    for c, want in {"0": 0.25, "1": 0.75, "2": 0.5, "3": 1.0}.items():
        spk = [s for s, k in DEV.items() if k == int(c)]
        words = sum(3 * DEV_WORDS.get(s, 4) for s in spk)
        assert rows[c]["words"] == words and rows[c]["wer"] == pytest.approx(want)
        assert rows[c]["low"] <= rows[c]["wer"] <= rows[c]["high"]
    recs = [json.loads(x) for x in (world["cohorts"].parent / "choice_records.jsonl").read_text().splitlines()]
    assert len(recs) == 18 and doc["overall"]["wer"] == pytest.approx(sum(r["errors"] for r in recs)
                                                                       / sum(r["words"] for r in recs))
    out = capsys.readouterr().out
    assert f"worst eligible cohort (target): {target} " in out
    assert f"--data.oversample '{{speakers: {doc['target_speakers_file']}, factor: 4}}'" in out
    # the dev records replace decoding: same choice, nothing decoded
    def no_decoding(*a, **k):
        raise AssertionError("decoded although --records was given")

    monkeypatch.setattr(R, "error_records", no_decoding)
    assert _choose(world, "--min-words", str(min_words), "--min-speakers", str(min_speakers),
                   "--records", f"{world['dev']}={world['cohorts'].parent / 'choice_records.jsonl'}",
                   "--out", str(world["root"] / "again.json")) == 0
    again = json.loads((world["root"] / "again.json").read_text())
    assert (again["target"], again["top"], again["rows"]) == (doc["target"], doc["top"], doc["rows"])


def test_choose_needs_two_eligible_cohorts(world, planted, capsys):
    assert _choose(world, "--min-speakers", "3") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 0 cohort(s) have >= 50 words") and " — lower" in err[0]
    assert not (world["cohorts"].parent / "choice.json").exists()


def test_choose_end_to_end_with_a_tiny_model(world, tiny_speaker_folder):
    """Real embeddings and real decoding (tiny random models): the written choice is the worst eligible cohort of
    its own records. Two cohorts, centred on the embeddings of d1 and d4, so both have speakers."""
    import zoo
    from zoo.fairness.cohorts import speaker_embeddings

    emb = speaker_embeddings(zoo.from_pretrained(tiny_speaker_folder), R.load_items(str(world["dev"]), None), 2,
                             progress=False)
    d = world["root"] / "two"
    d.mkdir()
    train = {"tr0": 0, "tr1": 1}
    (d / "cohorts.json").write_text(json.dumps({"speaker_model": str(tiny_speaker_folder), "metric": "euclidean",
                                                "centroids": [emb["d1"].tolist(), emb["d4"].tolist()],
                                                "speakers": train, "data": {"max_per_speaker": 2}}))
    for i in range(2):
        (d / f"cohort_{i}_speakers.txt").write_text(f"tr{i}\n")
    assert _choose({**world, "cohorts": d / "cohorts.json"}, "--min-words", "1", "--min-speakers", "1") == 0
    doc = json.loads((d / "choice.json").read_text())
    recs = [json.loads(x) for x in (d / "choice_records.jsonl").read_text().splitlines()]
    assert doc["dev_speakers"]["d1"] == 0 and doc["dev_speakers"]["d4"] == 1
    wer = {}
    for c in set(doc["dev_speakers"].values()):
        rs = [r for r in recs if doc["dev_speakers"][r["speaker"]] == c]
        wer[c] = sum(r["errors"] for r in rs) / sum(r["words"] for r in rs)
    assert wer[doc["target"]] == max(wer.values()) and wer[doc["top"]] == min(wer.values())


# --- compare -----------------------------------------------------------------------------------------------------
def _hand(model: str, cohort_of=TEST) -> dict:
    """Hand-computed test WERs of a planted model: 2 utterances x 4 words per speaker."""
    def err(s):
        return 2 * round(TEST_RATE[model][s] * 4)

    def wer(spk):
        return sum(err(s) for s in spk) / (8 * len(spk))

    coh = {c: wer([s for s, k in cohort_of.items() if k == c]) for c in range(K)}
    return {"cohorts": coh, "overall": wer(list(cohort_of)),
            "others": wer([s for s, k in cohort_of.items() if k != 1])}


def _cells(md: str, model: str) -> list[str]:
    row = next(x for x in md.splitlines() if x.startswith(f"| {model} |"))
    return [c.strip() for c in row.strip("|").split("|")][1:]


def test_compare_table_equals_hand_computed_wers(world, planted, capsys):
    assert _choose(world, "--min-words", "5", "--min-speakers", "1") == 0  # target 1, top 0
    capsys.readouterr()
    out = world["root"] / "cmp"
    m = world["models"]
    assert CC.main(["compare", "--cohorts", str(world["cohorts"]), "--sets", str(world["test"]), "--n-boot", "20",
                    "--out", str(out), f"before={m['tiny-model']}", f"cohort_input={m['tiny-b']}",
                    f"oversample={m['tiny-c']}"]) == 0
    res = json.loads((out / "results.json").read_text())
    md = (out / "results.md").read_text()
    assert md.strip() in capsys.readouterr().out
    assert (res["target"], res["top"], res["min_words"]) == (1, 0, 5) and res["speakers"] == TEST
    assert sorted(p.name for p in out.iterdir()) == ["records_before.jsonl", "records_cohort_input.jsonl",
                                                     "records_oversample.jsonl", "results.json", "results.md"]
    base = _hand("tiny-model")
    for name, folder in [("before", "tiny-model"), ("cohort_input", "tiny-b"), ("oversample", "tiny-c")]:
        h, r = _hand(folder), res["results"][name]
        coh = h["cohorts"]
        w = np.array(list(coh.values()))
        assert r["target"]["wer"] == pytest.approx(coh[1]) and r["overall"]["wer"] == pytest.approx(h["overall"])
        assert r["others"]["wer"] == pytest.approx(h["others"])
        s = {**r["summary"], **r["spread"]}
        assert (s["bottom"], s["top"]) == ("1", "0")
        assert s["mean"] == pytest.approx(w.mean()) and s["max"] == pytest.approx(w.max())
        assert s["variance"] == pytest.approx(((w - w.mean()) ** 2).mean())
        gap, base_gap = (coh[1] - coh[0]) / coh[0], (base["cohorts"][1] - base["cohorts"][0]) / base["cohorts"][0]
        assert s["gap"] == pytest.approx(gap)

        def relc(v, ref):
            return "" if name == "before" else f" ({100 * (v - ref) / ref:+.1f}%)"

        cells = _cells(md, name)
        assert cells[0].startswith(f"{100 * coh[1]:.2f} [") and cells[0].endswith(relc(coh[1], base["cohorts"][1]))
        assert cells[1:4] == [f"{100 * coh[c]:.2f}{relc(coh[c], base['cohorts'][c])}" for c in (0, 2, 3)]
        assert cells[4] == f"{100 * h['others']:.2f}{relc(h['others'], base['others'])}"
        assert cells[5].startswith(f"{100 * h['overall']:.2f} [")
        bw = np.array(list(base["cohorts"].values()))
        assert cells[6] == f"{100 * w.mean():.2f}{relc(w.mean(), bw.mean())}"
        assert cells[7] == f"{100 * w.max():.2f}{relc(w.max(), bw.max())}"
        assert cells[8] == f"{1e4 * w.var():.2f}{relc(w.var(), bw.var())}"
        assert cells[9] == f"{100 * gap:.1f}%" + ("" if name == "before" else f" ({100 * (gap - base_gap):+.1f} pts)")
    # a few numbers spelled out: cohort 0 of before: 6 errors / 16 words; the target cohort: 3/4 -> 1/4
    assert _cells(md, "before")[1] == "37.50" and _cells(md, "cohort_input")[0].endswith("(-66.7%)")
    assert _cells(md, "oversample")[9] == "0.0% (-100.0 pts)"


def test_compare_marks_cohorts_ineligible_on_test(world, planted):
    assert _choose(world, "--min-words", "5", "--min-speakers", "1") == 0
    out = world["root"] / "cmp"
    assert CC.main(["compare", "--cohorts", str(world["cohorts"]), "--sets", str(world["test"]), "--n-boot", "20",
                    "--min-speakers", "2", "--out", str(out), f"before={world['models']['tiny-model']}"]) == 0
    r = json.loads((out / "results.json").read_text())["results"]["before"]
    assert r["summary"]["eligible"] == 1 and r["summary"]["unscored"] == ["1"]  # only cohort 0 has 2 speakers
    assert r["spread"]["mean"] == pytest.approx(_hand("tiny-model")["cohorts"][0]) and r["spread"]["variance"] == 0
    cells = _cells((out / "results.md").read_text(), "before")
    assert cells[0].endswith(" *") and not cells[1].endswith("*") and cells[9] == "n/a"
    assert cells[6] == f"{100 * _hand('tiny-model')['cohorts'][0]:.2f}"


# --- bad input ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["no_cohorts", "not_asr", "no_colon", "bad_corpus", "out_exists", "choice_exists",
                                  "scores_dev", "bad_records", "no_choice", "bad_model_arg", "bad_target"])
def test_bad_input_is_one_line_and_writes_nothing(case, world, planted, tiny_speaker_folder, capsys):
    assert _choose(world, "--min-words", "5", "--min-speakers", "1") == 0
    (world["root"] / "cmp").mkdir()
    (world["root"] / "cmp" / "results.json").write_text("{}")
    capsys.readouterr()
    before = _files(world["root"])
    m = world["models"]
    cmp = ["compare", "--cohorts", str(world["cohorts"]), "--sets", str(world["test"]), "--n-boot", "5",
           "--out", str(world["root"] / "new"), f"before={m['tiny-model']}"]
    argv, want = {
        "no_cohorts": (["choose", "--cohorts", str(world["root"] / "nope.json")], "cohort file not found"),
        "not_asr": (cmp + [f"spk={tiny_speaker_folder}"], "is not a single-speaker ASR model"),
        "no_colon": (cmp + ["--sets", "an4"], "neither CORPUS:SPLIT nor a manifest"),
        "bad_corpus": (cmp + ["--sets", "nocorpus:test"], "unknown corpus 'nocorpus'"),
        "out_exists": (cmp + ["--out", str(world["root"] / "cmp")], "holds an earlier comparison — pass --force"),
        "choice_exists": (["choose", "--cohorts", str(world["cohorts"]), "--sets", str(world["dev"])],
                          "choice.json exists — pass --force"),
        "scores_dev": (cmp + ["--sets", str(world["dev"])], "chose the target"),
        "bad_records": (["choose", "--cohorts", str(world["cohorts"]), "--sets", str(world["dev"]), "--force",
                         "--records", f"{world['dev']}={world['test']}"], "not an error record"),
        "no_choice": (cmp + ["--choice", str(world["root"] / "none.json")], "dev choice not found"),
        "bad_model_arg": (cmp + [str(m["tiny-b"])], "give NAME=MODEL"),
        "bad_target": (cmp + ["--target", "7"], "--target 7: cohorts are 0..3"),
    }[case]
    assert CC.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and want in err[0] and " — " in err[0], err
    assert _files(world["root"]) == before


def test_compare_decodes_a_cohort_input_model_by_its_own_mechanism(world, tiny_speaker_folder, capsys):
    """A model with a cohort input (tiny, random, non-zero cohort vectors) is decoded like any model (its cohorts from
    the audio); one whose centroids are not the cohort file's is refused before anything is decoded."""
    import torch

    from zoo.hub.cards import render_card
    from zoo.models.base import model_config, save_pretrained

    from helpers import make_tiny_net, make_tiny_speaker

    def cohort_model(name, cents):
        net = make_tiny_net()
        net.add_cohort_input(cents, make_tiny_speaker(), speaker_model=str(tiny_speaker_folder))
        with torch.no_grad():
            net.cohort.embedding.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(0))
        cfg = model_config(net)
        return save_pretrained(net, world["root"] / name, config=cfg, card=render_card(name, cfg))

    cents = json.loads(world["cohorts"].read_text())["centroids"]
    good, bad = cohort_model("ci", cents), cohort_model("ci-other", np.roll(np.eye(K, D), 1, axis=1).tolist())
    base = ["compare", "--cohorts", str(world["cohorts"]), "--sets", str(world["test"]), "--n-boot", "5",
            "--target", "1", "--top", "0", "--min-words", "1", "--min-speakers", "1", "--out", str(world["root"] / "c"),
            f"before={world['models']['tiny-model']}"]
    assert CC.main([*base, f"other={bad}"]) == 2
    assert "has a cohort input with other centroids" in capsys.readouterr().err
    assert not (world["root"] / "c").exists()
    assert CC.main([*base, f"cohort_input={good}"]) == 0
    res = json.loads((world["root"] / "c" / "results.json").read_text())
    assert res["choice"] is None and (res["target"], res["top"]) == (1, 0)
    got = [json.loads(x) for x in (world["root"] / "c" / "records_cohort_input.jsonl").read_text().splitlines()]
    plain = [json.loads(x) for x in (world["root"] / "c" / "records_before.jsonl").read_text().splitlines()]
    assert len(got) == len(plain) == 2 * len(TEST)
    assert [r["hyp"] for r in got] != [r["hyp"] for r in plain]  # the cohort vectors changed the decoding
