"""`zoo fit` of the speaker tasks (baseline and ARW) on real AN4 batches with the tiny CI config, export of
the checkpoint to a model folder, and parity of the two release recipes (same learner, loss and budget)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from zoo.cli.lightning import run

from helpers import load_script

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "ci" / "speaker_tiny.yaml")
BASE = REPO / "configs" / "speaker" / "ecapa_an4.yaml"
ARW = REPO / "configs" / "speaker" / "arw_an4.yaml"
ARW_ONLY = {"adversary_hidden", "n_clusters", "kmeans_every", "adversary_warmup", "adversary_optimizer"}
ARW_ARGS = ["--model.class_path", "zoo.tasks.ARWTask", "--model.init_args.adversary_warmup", "1",
            "--model.init_args.n_clusters", "2"]


def test_recipes_differ_only_by_the_adversary():
    b, a = yaml.safe_load(BASE.read_text()), yaml.safe_load(ARW.read_text())
    assert b["model"]["class_path"] == "zoo.tasks.SpeakerVerificationTask"
    assert a["model"]["class_path"] == "zoo.tasks.ARWTask"
    arw_args = {k: v for k, v in a["model"]["init_args"].items() if k not in ARW_ONLY}
    assert arw_args == b["model"]["init_args"]
    assert set(a["model"]["init_args"]) - set(b["model"]["init_args"]) <= ARW_ONLY
    assert a["data"] == b["data"] and a["seed"] == b["seed"]
    strip = lambda t: {k: v for k, v in t.items() if k not in ("default_root_dir", "logger")}  # noqa: E731
    assert strip(a["trainer"]) == strip(b["trainer"])
    assert a["trainer"]["logger"]["init_args"]["name"] != b["trainer"]["logger"]["init_args"]["name"]
    assert a["trainer"]["default_root_dir"] != b["trainer"]["default_root_dir"]
    assert 0 < a["model"]["init_args"]["adversary_warmup"] < a["trainer"]["max_steps"]


@pytest.fixture(scope="module", params=["baseline", "arw"])
def fitted(request, tmp_path_factory, an4_root):
    root = tmp_path_factory.mktemp(f"spk_{request.param}")
    extra = ARW_ARGS if request.param == "arw" else []
    cli = run(["fit", "--config", TINY, "--trainer.default_root_dir", str(root), "--data.data_dir",
               str(an4_root.parent), "--trainer.enable_progress_bar", "false", *extra])
    return {"kind": request.param, "root": root, "cli": cli}


def test_fit_runs_budget_and_val_eer(fitted):
    t = fitted["cli"].trainer
    assert t.global_step == 3  # max_steps counts learner steps in both tasks
    assert 0.0 <= float(t.callback_metrics["val_eer"]) <= 1.0
    assert (fitted["root"] / "checkpoints" / "last.ckpt").is_file()
    task = fitted["cli"].model
    if fitted["kind"] == "arw":
        assert task.cluster_of  # k-means pseudo-labels were computed once the adversary started
    assert bool((task.net.featurizer.mean != 0).any())  # featurizer stats estimated from training audio


def test_export_checkpoint_to_model_folder(fitted, tmp_path, an4_wavs):
    import zoo
    from zoo.cli.main import main

    ckpt = fitted["root"] / "checkpoints" / "last.ckpt"
    out = tmp_path / "exported"
    assert main(["export", str(ckpt), str(out)]) == 0
    m = zoo.from_pretrained(out)
    assert m.architecture == "ecapa" and m.threshold is None
    task = fitted["cli"].model
    paths = [str(p) for p in an4_wavs[:3]]
    assert torch.allclose(m.embed(paths), task.net.embed(paths), atol=1e-5)
    assert not any(k.startswith(("adversary", "pair_", "centroids")) for k in m.state_dict())


def test_release_calibrates_threshold_and_stores_results(fitted, tmp_path, an4_root):
    if fitted["kind"] != "baseline":
        pytest.skip("one release is enough")
    import json

    import zoo

    mod = load_script("scripts/release_speaker.py")
    out = tmp_path / "rel"
    rep = mod.release(fitted["root"] / "checkpoints" / "last.ckpt", out, "tiny-spk", config=TINY,
                      data_dir=str(an4_root.parent), n_boot=20)
    cfg = json.loads((out / "config.json").read_text())
    thr = cfg["verification"]["threshold"]
    assert -1.0 <= thr <= 1.0 and "dev" in cfg["verification"]["calibrated_on"]
    assert cfg["results"]["eval"]["eer"] == pytest.approx(rep["eer"])
    assert {"eer_f", "eer_m", "gender_gap"} <= set(cfg["results"]["eval"]) and "ci" in cfg["results"]["eval"]
    assert {p.name for p in out.iterdir()} >= {"README.md", "det.png", "train_config.yaml", "eval_an4sv_eval.txt"}
    m = zoo.from_pretrained(out)
    assert m.threshold == pytest.approx(thr)
    card = (out / "README.md").read_text()
    assert f"{thr:.4f}" in card and "EER female" in card


def test_benchmark_summary_table():

    mod = load_script("benchmarks/sv.py")
    rep = lambda e, f, m: {"eer": e, "min_dcf_0.01": 0.5, "min_dcf_0.05": 0.4, "eer_f": f, "eer_m": m,  # noqa: E731
                           "gender_gap": abs(m - f)}
    out = mod.summarise({"baseline": [rep(0.10, 0.14, 0.08), rep(0.12, 0.16, 0.10)],
                         "arw": [rep(0.08, 0.10, 0.07), rep(0.09, 0.11, 0.08)]})
    assert "11.00 ± 1.41" in out and "8.50 ± 0.71" in out
    assert "eer: -22.7% (goal -7.7%: met; difference beyond the seed std)" in out
    assert "gender_gap: -50.0% (goal -17.0%: met" in out
