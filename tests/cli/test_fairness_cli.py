"""``zoo audit`` / ``zoo fisher`` end to end on tiny random models and 8 real AN4 files (4 speakers, 2 f + 2 m),
their bad-input errors, and the fine-tuning pieces (trainable parts, EWC regulariser, oversampling) in short fits.
The geographic method runs on simulated speakers only: AN4 has no locations and none are invented."""
from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from zoo.cli.main import main
from zoo.text import normalize_an4

from helpers import load_script

REPO = Path(__file__).resolve().parents[2]
SPEAKERS = ["fcaw", "fjlp", "marh", "mdms2"]


@pytest.fixture
def an4_small(an4_root, tmp_path) -> dict:
    """A NeMo manifest of 2 utterances each of 4 AN4 test speakers and a metadata CSV (gender, age group)."""
    ids = (an4_root / "etc" / "an4_test.fileids").read_text().split()
    lines = (an4_root / "etc" / "an4_test.transcription").read_text().splitlines()
    rows = []
    for spk in SPEAKERS:
        for fid, line in [(f, t) for f, t in zip(ids, lines) if f.split("/")[1] == spk][:2]:
            wav = an4_root / "wav" / f"{fid}.wav"
            rows.append({"audio_filepath": str(wav), "text": normalize_an4(line), "speaker": spk,
                         "duration": sf.info(str(wav)).duration})
    man = tmp_path / "small.jsonl"
    man.write_text("".join(json.dumps(r) + "\n" for r in rows))
    meta = tmp_path / "speakers.csv"
    meta.write_text("speaker,gender,age_group\nfcaw,f,young\nfjlp,f,old\nmarh,m,young\nmdms2,m,old\n")
    return {"manifest": man, "metadata": meta, "n": len(rows)}


FAST = ["--n-boot", "50", "--n-perm", "5", "--min-words", "1", "--min-speakers", "2", "--quiet"]


def _is_png(p: Path) -> bool:
    return p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_audit_metadata_end_to_end(tiny_folder, an4_small, tmp_path, capsys):
    out = tmp_path / "audit"
    assert main(["audit", "--model", str(tiny_folder), "--manifest", str(an4_small["manifest"]), "--metadata",
                 str(an4_small["metadata"]), "--method", "metadata", "--out", str(out), *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cohort_wer.png", "cohorts.json", "records.jsonl",
                                                     "report.json", "report.md"]
    rep = json.loads((out / "report.json").read_text())
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert len(recs) == an4_small["n"] and {r["speaker"] for r in recs} == set(SPEAKERS)
    assert all(r["gender"] == r["speaker"][0] and r["words"] > 0 and r["errors"] >= 0 for r in recs)
    assert rep["overall"]["words"] == sum(r["words"] for r in recs)
    assert rep["overall"]["wer"] == pytest.approx(sum(r["errors"] for r in recs) / rep["overall"]["words"])
    sets = {s["name"]: s for s in rep["cohort_sets"]}
    assert {"gender", "age_group", "best binary partition"} <= set(sets)
    g = {r["cohort"]: r for r in sets["gender"]["rows"]}
    assert set(g) == {"gender=f", "gender=m"} and g["gender=f"]["speakers"] == 2
    f_recs = [r for r in recs if r["speaker"][0] == "f"]
    assert g["gender=f"]["wer"] == pytest.approx(sum(r["errors"] for r in f_recs) / sum(r["words"] for r in f_recs))
    assert _is_png(out / "cohort_wer.png")
    md = (out / "report.md").read_text()
    assert "## gender (metadata)" in md and "WER gap" in md and "bottom-cohort share" in md
    coh = json.loads((out / "cohorts.json").read_text())
    assert coh["selection"]["speakers"] and coh["cohort_sets"]["gender"]["gender=f"]["rule"]["column"] == "gender"
    assert "overall WER" in capsys.readouterr().out
    # a second audit replaces the first (same marker), atomically, only with --force
    again = ["audit", "--records", str(out / "records.jsonl"), "--method", "metadata", "--columns", "gender",
             "--out", str(out), *FAST]
    assert main(again) == 2 and "--force" in capsys.readouterr().err
    assert main([*again, "--force"]) == 0
    assert [s["name"] for s in json.loads((out / "report.json").read_text())["cohort_sets"]][0] == "gender"


def test_audit_embedding_cohorts(tiny_folder, tiny_speaker_folder, an4_small, tmp_path):
    out = tmp_path / "emb"
    assert main(["audit", "--model", str(tiny_folder), "--manifest", str(an4_small["manifest"]), "--method",
                 "embedding", "--speaker-model", str(tiny_speaker_folder), "--k", "2", "--out", str(out), *FAST]) == 0
    rep = json.loads((out / "report.json").read_text())
    s = rep["cohort_sets"][0]
    assert s["kind"] == "embedding" and s["clustering"]["k"] == 2
    assert sorted(sp for c in s["cohorts"].values() for sp in c["speakers"]) == sorted(SPEAKERS)
    assert _is_png(out / "cohort_wer.png")


def test_audit_geo_on_simulated_records(tmp_path):
    """Geography from simulated speakers (records.jsonl as zoo audit writes it), with a planted region."""
    from helpers import geo_world

    records, planted = geo_world(n=120)
    rec = tmp_path / "records.jsonl"
    rec.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "geo"
    assert main(["audit", "--records", str(rec), "--method", "geo", "--geo-min-words", "300", "--out", str(out),
                 "--n-boot", "50", "--n-perm", "10", "--quiet"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert _is_png(out / "regions.png") and _is_png(out / "cohort_wer.png")
    sel = set(rep["selection"]["speakers"])
    assert len(sel & planted) / len(sel) >= 0.8
    assert rep["selection"]["rule"]["type"] == "box"
    assert "regions" in (out / "report.md").read_text()


def _planted_records(model, items, *args, **kwargs):
    """error_records without decoding: native speakers of Hindi get 4x the error rate (seeded by utterance id)."""
    import zlib

    import numpy as np

    out = []
    for it in items:
        rng = np.random.default_rng(zlib.crc32(it["id"].encode()))
        w = len(it["text"].split())
        meta = {k: v for k, v in it.items() if k not in ("id", "audio", "text", "speaker", "offset", "duration")}
        out.append({"id": it["id"], "audio": str(it["audio"]), "speaker": it["speaker"], "words": w, "ref": it["text"],
                    "hyp": "", "errors": int(rng.binomial(w, 0.4 if it["native_language"] == "Hindi" else 0.1)),
                    **meta})
    return out


def test_audit_alphanumeric_metadata_held_out(tiny_folder, tmp_path, monkeypatch, capsys):
    """--corpus alphanumeric: metadata from the recipe (no CSV); cohorts discovered on half the speakers and
    scored on the other half (disjoint); the records of both halves reproduce the audit without decoding."""
    from zoo.fairness import records as R

    from helpers import data_root

    if not (data_root() / "alphanumeric" / "prompts.jsonl").is_file():
        pytest.skip(f"alphanumeric corpus not found under {data_root()}")
    monkeypatch.setattr(R, "error_records", _planted_records)
    out = tmp_path / "alnum"
    fast = ["--n-boot", "50", "--n-perm", "50", "--min-words", "20", "--min-speakers", "3", "--quiet"]
    cols = ["--method", "metadata", "--columns", "gender,age_group,native_language"]
    assert main(["audit", "--model", str(tiny_folder), "--corpus", "alphanumeric", "--data-dir", str(data_root()),
                 *cols, "--holdout-frac", "0.5", "--holdout-seed", "1", "--out", str(out), *fast]) == 0
    assert "scored on 35 other (disjoint) speakers" in capsys.readouterr().out
    score = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    disc = [json.loads(x) for x in (out / "discovery_records.jsonl").read_text().splitlines()]
    s_spk, d_spk = {r["speaker"] for r in score}, {r["speaker"] for r in disc}
    assert not s_spk & d_spk and len(s_spk | d_spk) == 70 and len(s_spk) == 35
    assert all({"native_language", "nationality", "age_group", "lat", "lon"} <= set(r) for r in score + disc)
    rep = json.loads((out / "report.json").read_text())
    sp = rep["speakers"]
    assert sp["held_out"] and sp["disjoint"] and sp["scoring"]["speakers"] == 35 == sp["discovery"]["speakers"]
    assert "held-out 0.5 of the speakers (--holdout-seed 1)" in sp["scoring"]["data"]
    sel = rep["selection"]
    assert sel["rule"] == {"type": "values", "column": "native_language", "values": ["Hindi"]}
    assert set(sel["speakers"]) <= s_spk and set(sel["discovery_speakers"]) <= d_spk
    part = rep["cohort_sets"][-1]
    assert part["summary"]["bottom"] == sel["cohort"] and part["significance"]["p_value"] < 0.05
    hindi = [r for r in score if r["native_language"] == "Hindi"]
    want = sum(r["errors"] for r in hindi) / sum(r["words"] for r in hindi)
    assert part["summary"]["wer_bottom"] == pytest.approx(want)
    md = (out / "report.md").read_text()
    assert "disjoint (checked)" in md and "(35 speakers" in md and "discovery WER %" in md
    # the two record files redo the audit without decoding
    again = tmp_path / "again"
    assert main(["audit", "--records", str(out / "records.jsonl"), "--discover-records",
                 str(out / "discovery_records.jsonl"), *cols, "--out", str(again), *fast]) == 0
    rep2 = json.loads((again / "report.json").read_text())
    assert [s["summary"] for s in rep2["cohort_sets"]] == [s["summary"] for s in rep["cohort_sets"]]
    assert rep2["speakers"]["discovery"]["data"].endswith("discovery_records.jsonl")
    # overlapping sets and two ways of holding out are one-line errors
    capsys.readouterr()
    for bad, want in [(["--discover-records", str(out / "records.jsonl")], "share 35 speaker"),
                      (["--discover-records", str(out / "discovery_records.jsonl"), "--holdout-frac", "0.5"],
                       "not both")]:
        assert main(["audit", "--records", str(out / "records.jsonl"), *bad, *cols, "--out", str(tmp_path / "x"),
                     *fast]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and want in err[0], err


@pytest.mark.parametrize("case", ["no_geo", "bad_column", "unknown_model", "no_speaker_model", "asr_as_speaker",
                                  "csv_no_speaker_col", "csv_missing_speaker", "out_not_audit", "no_speaker_field",
                                  "missing_manifest"])
def test_audit_bad_input(case, tiny_folder, an4_small, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["audit", "--model", str(tiny_folder), "--manifest", str(an4_small["manifest"]), "--out", str(out), *FAST]
    args = {"no_geo": ["--method", "geo", "--metadata", str(an4_small["metadata"])],
            "bad_column": ["--method", "metadata", "--metadata", str(an4_small["metadata"]), "--columns", "accent"],
            "unknown_model": ["--method", "metadata", "--metadata", str(an4_small["metadata"]),
                              "--model", "no-such-model"],
            "no_speaker_model": ["--method", "embedding"],
            "asr_as_speaker": ["--method", "embedding", "--speaker-model", str(tiny_folder)],
            "csv_no_speaker_col": ["--method", "metadata", "--metadata", str(tmp_path / "bad.csv")],
            "csv_missing_speaker": ["--method", "metadata", "--metadata", str(tmp_path / "partial.csv")],
            "out_not_audit": ["--method", "metadata", "--metadata", str(an4_small["metadata"])],
            "no_speaker_field": ["--method", "metadata", "--manifest", str(tmp_path / "nospk.jsonl")],
            "missing_manifest": ["--method", "metadata", "--manifest", str(tmp_path / "nope.jsonl")]}[case]
    (tmp_path / "bad.csv").write_text("name,gender\nfcaw,f\n")
    (tmp_path / "partial.csv").write_text("speaker,gender\nfcaw,f\n")
    first = an4_small["manifest"].read_text().splitlines()[0]
    nospk = {k: v for k, v in json.loads(first).items() if k != "speaker"}
    (tmp_path / "nospk.jsonl").write_text(json.dumps(nospk) + "\n")
    if case == "out_not_audit":
        out.mkdir()
        (out / "precious.txt").write_text("keep me")
    capsys.readouterr()
    assert main(base + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    want = {"no_geo": "lat", "bad_column": "accent", "unknown_model": "no-such-model",
            "no_speaker_model": "--speaker-model", "asr_as_speaker": "not a speaker-embedding model",
            "csv_no_speaker_col": "'speaker' column",
            "csv_missing_speaker": "fjlp", "out_not_audit": "not an earlier audit", "no_speaker_field": "speaker",
            "missing_manifest": "not found"}[case]
    assert want in err[0]
    if case == "out_not_audit":
        assert [p.name for p in out.iterdir()] == ["precious.txt"]
    else:
        assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))  # no temp folder left behind


def test_fisher_command_nonnegative_nonzero(tiny_folder, an4_small, tmp_path, capsys):
    out = tmp_path / "fisher.safetensors"
    assert main(["fisher", "--model", str(tiny_folder), "--manifest", str(an4_small["manifest"]), "--utterances", "3",
                 "--out", str(out), "--quiet"]) == 0
    F = load_file(out)
    W = load_file(tiny_folder / "model.safetensors")
    params = {n for n, _ in _tiny_net(tiny_folder).named_parameters()}
    assert set(F) == params and all(F[k].shape == W[k].shape for k in F)
    assert all(bool((v >= 0).all()) and bool(torch.isfinite(v).all()) for v in F.values())
    assert sum(float(v.sum()) for v in F.values()) > 0
    assert all(float(F[k].sum()) > 0 for k in F if k.startswith(("encoder.", "predictor.", "joiner.")))
    assert "3 utterances" in capsys.readouterr().out


def _tiny_net(folder):
    from zoo.hub import from_pretrained

    return from_pretrained(str(folder))


def test_fisher_is_mean_of_squared_per_utterance_gradients(tiny_folder, an4_small):
    """Against a direct computation: two utterances, gradients of each one's RNN-T loss, squared, averaged."""
    from zoo.data import SpeechDataModule
    from zoo.fairness.fisher import fisher_diagonal
    from zoo.tasks import TransducerTask

    dm = SpeechDataModule(corpus=None, train_manifest=str(an4_small["manifest"]), num_buckets=1, max_duration=100)
    dm.setup("fit")
    batch = next(iter(dm.plain_dataloader("train")))
    task = TransducerTask(init_from=str(tiny_folder), ctc_weight=0.0, spec_augment=None)
    F, n = fisher_diagonal(task, [batch], max_utterances=2)
    assert n == 2
    task.eval()
    want = {k: torch.zeros_like(p) for k, p in task.net.named_parameters()}
    for i in range(2):
        m = int(batch["audio_lens"][i])
        task.net.zero_grad()
        loss = task._forward_loss({"audio": batch["audio"][i:i + 1, :m], "audio_lens": batch["audio_lens"][i:i + 1],
                                   "text": batch["text"][i:i + 1]}, augment=False)[1]["rnnt_loss"]
        loss.backward()
        for k, p in task.net.named_parameters():
            want[k] += p.grad ** 2 / 2
    for k in want:
        assert torch.allclose(F[k], want[k], rtol=1e-4, atol=1e-12), k


def test_trainable_predictor_with_ewc_leaves_encoder_unchanged(tiny_folder, an4_small, tmp_path):
    from zoo.data import SpeechDataModule
    from zoo.fairness.fisher import fisher_diagonal, save_fisher
    from zoo.tasks import TransducerTask

    dm = SpeechDataModule(corpus=None, train_manifest=str(an4_small["manifest"]), num_buckets=1, max_duration=6)
    dm.setup("fit")
    F, n = fisher_diagonal(TransducerTask(init_from=str(tiny_folder), ctc_weight=0.0), dm.plain_dataloader("train"), 2)
    save_fisher(F, tiny_folder / "fisher.safetensors", utterances=n)  # beside the model: found by fisher: null
    before = {k: v.clone() for k, v in load_file(tiny_folder / "model.safetensors").items()}
    task = TransducerTask(init_from=str(tiny_folder), trainable="predictor", ctc_weight=0.3,
                          regularizer={"type": "ewc", "weight": 5.0},
                          optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1))
    L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path).fit(task, datamodule=dm)
    after = task.net.state_dict()
    changed = {k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("predictor.") for k in changed), changed
    assert any(k.startswith("predictor.") for k in changed)
    assert task.regularizer(task.net).item() > 0  # the predictor moved away from θ*, so the penalty is on


def test_ewc_config_fits_through_the_cli(tiny_folder, an4_small, tmp_path):
    """configs/fairness/ewc_finetune.yaml as documented (init_from on the command line; L2-SP, encoder-only and
    oversampling overrides), 2 steps on the tiny model."""
    from zoo.cli.lightning import run

    cfg = str(REPO / "configs" / "fairness" / "ewc_finetune.yaml")
    m = str(an4_small["manifest"])
    spk = tmp_path / "cohort.txt"
    spk.write_text("fcaw\nfjlp\n")
    common = ["fit", "--config", cfg, "--model.init_args.init_from", str(tiny_folder), "--data.corpus", "null",
              "--data.train_manifest", m, "--data.val_manifest", m, "--data.num_buckets", "1",
              "--trainer.max_steps", "2", "--trainer.enable_progress_bar", "false", "--trainer.logger", "false"]
    with pytest.raises(Exception, match="fisher"):  # EWC needs fisher.safetensors beside the model
        run(common + ["--trainer.default_root_dir", str(tmp_path / "a")])
    cli = run(common + ["--trainer.default_root_dir", str(tmp_path / "b"), "--model.init_args.regularizer",
                        "{type: l2sp, weight: 1.0}", "--model.init_args.trainable", "encoder",
                        "--data.oversample", f"{{speakers: {spk}, factor: 3}}"])
    assert cli.trainer.global_step == 2
    assert (tmp_path / "b" / "checkpoints" / "last.ckpt").is_file()  # what the mitigation script exports
    assert not cli.model.regularizer.uses_fisher
    assert all(not p.requires_grad for p in cli.model.net.predictor.parameters())
    assert len(cli.datamodule.train_cuts()) == an4_small["n"] + 2 * 4  # 4 cohort utterances, 2 extra copies


def test_oversample_speakers_copies_only_the_cohort(an4_small, tmp_path):
    from zoo.data.datamodule import oversample_speakers
    from zoo.data.manifest import load_cuts

    cuts = load_cuts(an4_small["manifest"])
    (tmp_path / "c.json").write_text(json.dumps({"speakers": ["marh"]}))
    out = oversample_speakers(cuts, tmp_path / "c.json", factor=4)
    spk = [c.supervisions[0].speaker for c in out]
    assert spk.count("marh") == 8 and spk.count("fcaw") == 2 and len(set(c.id for c in out)) == len(out)
    with pytest.raises(ValueError, match="none of"):
        oversample_speakers(cuts, ["nobody"], 2)


def test_mitigation_script_plans_every_method_and_tabulates(tiny_folder, an4_small, an4_root, tmp_path, capsys):
    """scripts/fairness_mitigation.py: --dry-run resolves the audit's bottom gender cohort to AN4 *training*
    speakers of that gender and prints one fit + export per method; the before/after table from two models."""
    fm = load_script("scripts/fairness_mitigation.py")
    audit = tmp_path / "audit"
    assert main(["audit", "--model", str(tiny_folder), "--manifest", str(an4_small["manifest"]), "--metadata",
                 str(an4_small["metadata"]), "--method", "metadata", "--columns", "gender", "--out", str(audit),
                 *FAST]) == 0
    capsys.readouterr()
    assert fm.main(["--audit", str(audit), "--cohort-set", "gender", "--cohort", "gender=f",
                    "--model", str(tiny_folder), "--data-dir", str(an4_root.parent), "--dry-run", "--max_steps", "7",
                    "--out", str(tmp_path / "mit")]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    from zoo.data import an4_cuts

    want = sorted({c.supervisions[0].speaker for c in an4_cuts(an4_root.parent)["train"]
                   if c.supervisions[0].gender == "f"})
    assert "gender=f" in first and f"{len(want)} training speakers" in first
    assert first.split(": ")[-1].split() == want
    fits = [line for line in out.splitlines() if " fit " in line]
    assert len(fits) == 6 and all("--trainer.max_steps 7" in f for f in fits)
    assert "type: ewc" in fits[1] and "type: l2sp" in fits[2] and "trainable predictor" in fits[3]
    assert "trainable encoder" in fits[4] and "--data.oversample" in fits[5] and "train_manifest" not in fits[5]
    assert not (tmp_path / "mit").exists()  # dry run writes nothing
    cohorts, _, target = fm.load_audit(audit, "gender", "gender=m")
    res = {"before": fm.evaluate(str(tiny_folder), audit, cohorts, target, 1, 20)}
    res["ft"] = dict(res["before"], target=res["before"]["target"] / 2)
    tab = fm.table(res, target)
    assert "| ft |" in tab and "(-50.0%)" in tab
    recs = [json.loads(x) for x in (audit / "records.jsonl").read_text().splitlines()]
    m = [r for r in recs if r["gender"] == "m"]
    assert res["before"]["target"] == pytest.approx(sum(r["errors"] for r in m) / sum(r["words"] for r in m))


def _mitigation_module():
    return load_script("scripts/fairness_mitigation.py")


def test_mitigation_never_trains_on_scored_speakers(tiny_folder, an4_small, an4_root, tmp_path, capsys):
    """Held out: a training speaker that the audit scores is left out of the fine-tuning set; when every one is,
    one error line (exit 2) and nothing written. Composed configs are passed through in order."""
    fm = _mitigation_module()
    audit = tmp_path / "audit"
    assert main(["audit", "--model", str(tiny_folder), "--manifest", str(an4_small["manifest"]), "--metadata",
                 str(an4_small["metadata"]), "--method", "metadata", "--columns", "gender", "--out", str(audit),
                 *FAST]) == 0
    capsys.readouterr()
    common = ["--audit", str(audit), "--cohort-set", "gender", "--cohort", "gender=f", "--model", str(tiny_folder),
              "--data-dir", str(an4_root.parent), "--dry-run", "--out", str(tmp_path / "mit")]
    assert fm.main(common + ["--target-speakers", "fcaw,fash", "--config", "a.yaml", "--config", "b.yaml"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# 1 of the cohort's training speakers are scored")
    assert out[1].endswith("1 training speakers: fash")
    assert all("--config a.yaml --config b.yaml --model" in line for line in out if " fit " in line)
    assert fm.main(common + ["--target-speakers", "fcaw,fjlp"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "scoring speaker" in err[0]
    assert not (tmp_path / "mit").exists()


def test_mitigation_extra_eval_column(tiny_folder, an4_small, tmp_path, capsys):
    """--extra-eval: each model's WER on another set gets its own column with the change against "before"."""
    fm = _mitigation_module()
    res = {"before": {"target": 0.5, "others": 0.4, "overall": 0.45, "variance": 0.01, "mean": 0.45, "max": 0.5,
                      "cohorts": {"a": 0.5, "b": 0.4}, "extra": {"an4:test": 0.2}},
           "ewc": {"target": 0.4, "others": 0.4, "overall": 0.4, "variance": 0.0, "mean": 0.4, "max": 0.4,
                   "cohorts": {"a": 0.4, "b": 0.4}, "extra": {"an4:test": 0.3}}}
    tab = fm.table(res, "a").splitlines()
    assert tab[1].endswith("| a | b | an4:test |")
    assert tab[-1].endswith("| 40.00 (-11.1%) | 40.00 (-20.0%) | 0.00 (-100.0%) | 40.00 | 40.00 | 30.00 (+50.0%) |")
    with pytest.raises(Exception, match="CORPUS:SPLIT"):
        fm.extra_wer(str(tiny_folder), ["an4"], None, 10)


def test_fisher_unknown_corpus_in_a_mix_is_one_line(tiny_folder, tmp_path, capsys):
    assert main(["fisher", "--model", str(tiny_folder), "--corpus", "an4,nope", "--out",
                 str(tmp_path / "f.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nope" in err[0]
    assert not (tmp_path / "f.safetensors").exists()
