"""Speaker verification at v2 scale, on the real corpora: the AN4 + speechocean762 split
(``zoo.data.corpora.sv_speaker_split``), the published speechocean762-test trial list
(``data/trials/so762_test_trials.txt`` + ``so762_test_utts.tsv``), the run-time manifest for ``zoo score``,
the DataModule recipe ``an4_so762_spk``, a 2-step fit on it and the v2 configs."""
from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from itertools import combinations
from pathlib import Path

import pytest
import yaml

from zoo.data import trials as T

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "ci" / "speaker_tiny.yaml")
V2 = REPO / "configs" / "speaker" / "v2"
ARW_ONLY = {"adversary_hidden", "n_clusters", "kmeans_every", "adversary_warmup", "adversary_optimizer"}
COHORTS = ("f-adult", "f-child", "m-adult", "m-child")


def _spk(cuts) -> set[str]:
    return {c.supervisions[0].speaker for c in cuts}


@pytest.fixture(scope="module")
def data_root() -> Path:
    root = Path(os.environ.get("ZOO_DATA") or REPO.parent / "shared" / "data")
    if not (root / "an4" / "etc" / "an4_train.fileids").is_file() or not (root / "speechocean762" / "test").is_dir():
        pytest.skip(f"AN4 and speechocean762 not found under {root}; set ZOO_DATA")
    return root


@pytest.fixture(scope="module")
def split(data_root):
    from zoo.data.corpora import sv_speaker_split

    return sv_speaker_split(data_root)


@pytest.fixture(scope="module")
def published():
    return T.read_trials(T.TRIALS_DIR / T.SO762_TRIALS), T.read_utt_table(T.TRIALS_DIR / T.SO762_UTTS)


# --- the split ----------------------------------------------------------------------------------------------
def test_split_is_speaker_disjoint_with_documented_sizes(split, data_root):
    from zoo.data.an4 import an4_speaker_split

    spk = {k: _spk(v) for k, v in split.items()}
    for a, b in combinations(spk, 2):
        assert not spk[a] & spk[b], (a, b)
    assert {k: len(v) for k, v in spk.items()} == {"train": 163, "dev": 26, "test": 125, "an4_eval": 20}
    assert {k: len(v) for k, v in split.items()} == {"train": 2872, "dev": 450, "test": 2500, "an4_eval": 256}
    pre = lambda s: s.split("_", 1)[0]  # noqa: E731
    assert Counter(pre(s) for s in spk["train"]) == {"an4": 54, "so762": 109}
    assert Counter(pre(s) for s in spk["dev"]) == {"an4": 10, "so762": 16}
    assert {pre(s) for s in spk["test"]} == {"so762"} and {pre(s) for s in spk["an4_eval"]} == {"an4"}
    # the AN4 parts are exactly AN4-SV's, so the existing AN4-SV eval list stays speaker-disjoint from training
    an4 = an4_speaker_split(data_root)
    for k, name in (("train", "train"), ("dev", "dev"), ("an4_eval", "eval")):
        assert {s for s in spk[k] if s.startswith("an4_")} == {"an4_" + s for s in _spk(an4[name])}


def test_cuts_keep_gender_age_and_age_group(split):
    for name, cuts in split.items():
        groups = Counter()
        for c in cuts:
            s = c.supervisions[0]
            assert s.gender in ("f", "m") and {"corpus", "age", "age_group"} <= set(s.custom)
            if s.custom["corpus"] == "speechocean762":
                assert s.speaker.startswith("so762_") and isinstance(s.custom["age"], int)
                assert s.custom["age_group"] == ("child" if s.custom["age"] <= 15 else "adult")
                groups[s.custom["age_group"]] += 1
            else:
                assert s.custom["corpus"] == "an4" and s.speaker.startswith("an4_")
                assert s.custom["age"] is None and s.custom["age_group"] is None
        if name != "an4_eval":
            assert groups["child"] > 0 and groups["adult"] > 0, name  # children and adults everywhere


def test_no_id_collisions(split):
    ids = [c.id for cuts in split.values() for c in cuts]
    assert len(ids) == len(set(ids))
    recs = [c.recording.id for cuts in split.values() for c in cuts]
    assert len(recs) == len(set(recs))
    by_spk: dict[str, set] = {}
    for cuts in split.values():
        for c in cuts:
            s = c.supervisions[0]
            by_spk.setdefault(s.speaker, set()).add(s.custom["corpus"])
    assert all(len(v) == 1 for v in by_spk.values())  # no speaker id shared by two corpora


# --- the published trial list -----------------------------------------------------------------------------------
def test_trial_list_is_regenerated_exactly(data_root, tmp_path):
    paths = T.write_so762_test_trials(tmp_path, data_root)
    for p in paths:
        assert p.read_bytes() == (T.TRIALS_DIR / p.name).read_bytes(), p.name
    for name in (T.SO762_TRIALS, T.SO762_UTTS):
        assert (T.TRIALS_DIR / name).stat().st_size < 2_000_000


def test_trial_list_counts_and_balance(published, split):
    trials, table = published
    test_spk = _spk(split["test"])
    assert set(table) == {c.supervisions[0].recording_id for c in split["test"]}
    assert {r["speaker"] for r in table.values()} == test_spk
    assert len(trials) == len(set((a, b) for a, b, _ in trials)) == 53_750
    assert all(a < b for a, b, _ in trials)
    for a, b, t in trials:
        assert t == (table[a]["speaker"] == table[b]["speaker"])
    # every same-speaker pair: 125 speakers x C(20, 2)
    per_spk = Counter(r["speaker"] for r in table.values())
    assert sum(t for *_, t in trials) == sum(n * (n - 1) // 2 for n in per_spk.values()) == 23_750
    cohort = {u: f"{r['gender']}-{r['age_group']}" for u, r in table.items()}
    assert set(cohort.values()) == set(COHORTS)
    strata = T.trial_strata(trials, cohort)
    assert len(strata) == 10 and all(v["nontarget"] == T.SO762_NONTARGET_PER_STRATUM for v in strata.values())
    assert all(v["target"] == 0 for k, v in strata.items() if k.split("|")[0] != k.split("|")[1])
    # per-cohort nontargets for per-cohort EER
    for where in ({"gender": "f"}, {"gender": "m"}, {"age_group": "child"}, {"age_group": "adult"}):
        sub = T.cohort_trials(trials, table, **where)
        assert sum(t for *_, t in sub) > 0 and sum(not t for *_, t in sub) == 3 * T.SO762_NONTARGET_PER_STRATUM
    cross_age = [t for a, b, t in trials if table[a]["age_group"] != table[b]["age_group"]]
    assert not any(cross_age) and len(cross_age) == 4 * T.SO762_NONTARGET_PER_STRATUM
    same_gender = [t for a, b, t in trials if not t and table[a]["gender"] == table[b]["gender"]]
    assert len(same_gender) == 6 * T.SO762_NONTARGET_PER_STRATUM
    # every test speaker takes part in nontarget trials
    assert {table[u]["speaker"] for a, b, t in trials if not t for u in (a, b)} == test_spk


def test_committed_table_has_no_machine_paths(published):
    _, table = published
    for r in table.values():
        assert not r["audio"].startswith("/") and r["audio"].startswith("audio/SPEAKER")


def test_runtime_manifest_resolves_for_zoo_score(data_root, tmp_path):
    import json

    from zoo.evaluation.speaker import load_sv_set

    m = T.write_so762_manifest(tmp_path / "so762_test.jsonl", data_root)
    entries = [json.loads(line) for line in m.read_text().splitlines()]
    assert len(entries) == 2500 and {"id", "audio_filepath", "speaker", "gender", "age_group"} <= set(entries[0])
    assert Path(entries[0]["audio_filepath"]).is_absolute()
    trials, utts = load_sv_set(T.TRIALS_DIR / T.SO762_TRIALS, m)
    assert len(trials) == 53_750 and len(utts) == 2500
    assert utts[trials[0][0]].speaker.startswith("so762_") and utts[trials[0][0]].gender in ("f", "m")
    out = T.write_cohort_trials(tmp_path)
    assert [p.name for p in out] == ["so762_test_trials.adult.txt", "so762_test_trials.child.txt"]
    assert sum(len(T.read_trials(p)) for p in out) == 53_750 - 4 * T.SO762_NONTARGET_PER_STRATUM


def test_stratified_trials_unit():
    utts = [(f"u{s}{k}", f"s{s}", "a" if s < 3 else "b") for s in range(6) for k in range(3)]
    t = T.stratified_trials(utts, n_per_stratum=5, seed=0)
    assert t == T.stratified_trials(reversed(utts), n_per_stratum=5, seed=0)  # input order does not matter
    assert sum(x[2] for x in t) == 6 * 3
    cohort = {u: c for u, _, c in utts}
    assert {k: v["nontarget"] for k, v in T.trial_strata(t, cohort).items()} == {"a|a": 5, "a|b": 5, "b|b": 5}
    assert t != T.stratified_trials(utts, n_per_stratum=5, seed=1)
    full = T.stratified_trials(utts, n_per_stratum=10_000)
    assert len(full) == len(utts) * (len(utts) - 1) // 2 and set(t) <= set(full)
    assert sum(x[2] for x in T.stratified_trials(utts, 0, max_target=4)) == 4
    with pytest.raises(ValueError, match="two cohorts"):
        T.stratified_trials([("x", "s", "a"), ("y", "s", "b")], 1)


# --- training on the mix --------------------------------------------------------------------------------------------
def test_datamodule_recipe_has_speaker_labels(data_root):
    from zoo.data import SpeechDataModule

    dm = SpeechDataModule(corpus="an4_so762_spk", data_dir=str(data_root), sampler="speaker_balanced")
    dm.setup()
    assert dm.num_speakers == 163 and set(dm.cuts) == {"train", "val", "test"}
    assert not _spk(dm.cuts["val"]) & set(dm.speaker_index) and not _spk(dm.cuts["test"]) & set(dm.speaker_index)
    batch = next(iter(dm.train_dataloader()))
    assert len(batch["speaker"]) == 32 and (batch["speaker_index"] >= 0).all()


def test_two_step_fit_on_the_mix(data_root, tmp_path):
    from zoo.cli.lightning import run

    cli = run(["fit", "--config", TINY, "--data.corpus", "an4_so762_spk", "--data.data_dir", str(data_root),
               "--trainer.max_steps", "2", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "8",
               "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"])
    assert cli.trainer.global_step == 2
    assert cli.datamodule.num_speakers == 163
    assert 0.0 <= float(cli.trainer.callback_metrics["val_eer"]) <= 1.0
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_v2_configs_differ_only_by_the_adversary():
    b, a = yaml.safe_load((V2 / "ecapa.yaml").read_text()), yaml.safe_load((V2 / "arw.yaml").read_text())
    old = yaml.safe_load((REPO / "configs" / "speaker" / "ecapa_an4.yaml").read_text())
    assert b["model"]["class_path"] == "zoo.tasks.SpeakerVerificationTask"
    assert a["model"]["class_path"] == "zoo.tasks.ARWTask"
    assert {k: v for k, v in a["model"]["init_args"].items() if k not in ARW_ONLY} == b["model"]["init_args"]
    assert a["data"] == b["data"] and a["seed"] == b["seed"] and b["data"]["corpus"] == "an4_so762_spk"
    strip = lambda t: {k: v for k, v in t.items() if k not in ("default_root_dir", "logger")}  # noqa: E731
    assert strip(a["trainer"]) == strip(b["trainer"])
    steps = b["trainer"]["max_steps"]
    assert b["model"]["init_args"]["scheduler"]["init_args"]["total_steps"] == steps
    assert a["model"]["init_args"]["adversary_warmup"] == steps // 4
    # the same model and batches as the AN4 recipe; only data and schedule differ
    same = lambda m: {k: v for k, v in m.items() if k != "scheduler"}  # noqa: E731
    assert same(b["model"]["init_args"]) == same(old["model"]["init_args"])
    assert {k: v for k, v in b["data"].items() if k != "corpus"} == \
        {k: v for k, v in old["data"].items() if k != "corpus"}


def test_seed_script_parses():
    assert subprocess.run(["bash", "-n", str(REPO / "scripts" / "sv_seeds.sh")]).returncode == 0


def test_zoo_data_so762_sv_writes_the_published_list_with_local_paths(data_root, tmp_path, monkeypatch, capsys):
    from zoo.cli.main import main
    from zoo.data.trials import SO762_TRIALS, TRIALS_DIR, read_trials

    monkeypatch.setenv("ZOO_DATA", str(data_root))
    out = tmp_path / "so762sv"
    assert main(["data", "so762-sv", "--out", str(out)]) == 0
    assert (out / SO762_TRIALS).read_text() == (TRIALS_DIR / SO762_TRIALS).read_text()
    rows = [json.loads(line) for line in (out / "so762_test.jsonl").read_text().splitlines()]
    assert len(rows) == 2500 and all(Path(r["audio_filepath"]).is_absolute() for r in rows)
    ids = {r["id"] for r in rows}
    assert all(a in ids and b in ids for a, b, _ in read_trials(out / SO762_TRIALS)[:1000])
    child, adult = (read_trials(out / f"so762_test_trials.{g}.txt") for g in ("child", "adult"))
    assert child and adult and not set(child) & set(adult)
    capsys.readouterr()
    assert main(["data", "so762-sv", "--out", str(out)]) == 2  # never overwrites without --force
    assert "--force" in capsys.readouterr().err
