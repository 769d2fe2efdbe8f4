"""``TransducerTask(cohort_input=...)``: fine-tuning starts exactly at the ``init_from`` model, a training step
trains only the vectors of the batch's cohorts (the speaker net stays frozen), ``scripts/cohort_input.py`` makes
the cohort file that ``zoo fit`` reads (model and data), the composed fairness overlay, and a training speaker
without a cohort is one error line."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml

import zoo
from zoo.audio import load_audio
from zoo.cli.lightning import run
from zoo.cli.main import main
from zoo.errors import ZooError
from zoo.tasks import TransducerTask

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "ci" / "tiny.yaml")
K = 4


def centroids(k: int = K, dim: int = 24, seed: int = 0) -> list:
    return torch.nn.functional.normalize(torch.randn(k, dim, generator=torch.Generator().manual_seed(seed)),
                                         dim=-1).tolist()


@pytest.fixture
def task(tiny_folder, tiny_speaker_folder):
    return TransducerTask(init_from=str(tiny_folder), ctc_weight=0.0,
                          cohort_input={"speaker_model": str(tiny_speaker_folder), "centroids": centroids()})


def audio_batch(an4_wavs, cohort):
    wavs = [load_audio(p, 16000) for p in an4_wavs[:len(cohort)]]
    return {"audio": torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True),
            "audio_lens": torch.tensor([w.numel() for w in wavs]), "text": ["HELLO", "WORLD", "AGAIN"][:len(cohort)],
            "cohort": torch.tensor(cohort)}


def test_fine_tuning_starts_at_the_released_model(task, tiny_folder, tiny_speaker_folder, an4_wavs):
    released = zoo.from_pretrained(tiny_folder)
    b = audio_batch(an4_wavs, [0, -1, 3])
    net = task.net.eval()
    assert net.cohort_count == K and not net.cohort.embedding.weight.any()
    assert net.config()["cohort_input"]["speaker_model"] == str(tiny_speaker_folder)
    spk = zoo.from_pretrained(tiny_speaker_folder).state_dict()
    assert all(torch.equal(v, spk[k]) for k, v in net.cohort.speaker.state_dict().items())
    with torch.no_grad():
        assert torch.equal(net.encode(b["audio"], b["audio_lens"], b["cohort"])[0],
                           released.encode(b["audio"], b["audio_lens"])[0])


def test_a_training_step_trains_only_the_batch_cohorts(task, an4_wavs):
    b = audio_batch(an4_wavs, [0, -1, 3])
    task.train()
    assigned = int(task.net.cohort_ids(b["audio"], b["audio_lens"], b["cohort"])[1])  # the speaker model's pick
    bn = {k: v.clone() for k, v in task.net.cohort.speaker.state_dict().items() if "running" in k}
    loss, _, _, _ = task._forward_loss(b, augment=True)
    loss.backward()
    grad = task.net.cohort.embedding.weight.grad
    used = {0, 3, assigned}
    assert all(grad[c].abs().sum() > 0 for c in used)
    assert all(not grad[c].any() for c in set(range(K)) - used)
    assert all(p.grad is None and not p.requires_grad for p in task.net.cohort.speaker.parameters())
    assert all(torch.equal(v, task.net.cohort.speaker.state_dict()[k]) for k, v in bn.items())  # BN stats kept
    with pytest.raises(ZooError, match=r"in 0\.\.3"):
        task._forward_loss({**b, "cohort": torch.tensor([0, 4, 1])}, augment=False)


def test_cohort_vectors_train_whatever_part_is_trainable(tiny_folder, tiny_speaker_folder):
    t = TransducerTask(init_from=str(tiny_folder), ctc_weight=0.0, trainable="predictor",
                       cohort_input={"speaker_model": str(tiny_speaker_folder), "centroids": centroids()})
    assert t.net.cohort.embedding.weight.requires_grad
    assert not any(p.requires_grad for p in t.net.encoder.parameters())
    assert not any(p.requires_grad for p in t.net.cohort.speaker.parameters())


def test_init_from_a_cohort_model(task, tmp_path, tiny_speaker_folder):
    folder = task.net.save_pretrained(tmp_path / "cohort-model")
    same = TransducerTask(init_from=str(folder), ctc_weight=0.0,
                          cohort_input={"speaker_model": str(tiny_speaker_folder), "centroids": centroids()})
    assert same.net.cohort_count == K
    with pytest.raises(ZooError, match="already has a cohort input with other cohorts"):
        TransducerTask(init_from=str(folder), ctc_weight=0.0,
                       cohort_input={"speaker_model": str(tiny_speaker_folder), "centroids": centroids(seed=1)})
    with pytest.raises(ZooError, match="unknown cohort_input option"):
        TransducerTask(init_from=str(folder), cohort_input={"centroid": centroids()})


# --- the script, zoo fit, the overlay ---------------------------------------------------------------------------
def load_script():
    spec = importlib.util.spec_from_file_location("cohort_input_script", REPO / "scripts" / "cohort_input.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def cohort_file(tmp_path_factory, an4_root):
    """scripts/cohort_input.py over AN4 train with a tiny random speaker model (k = 2)."""
    from zoo.hub.cards import render_card
    from zoo.models.base import model_config, save_pretrained

    from helpers import make_tiny_speaker

    d = tmp_path_factory.mktemp("cohorts")
    net = make_tiny_speaker()
    spk = save_pretrained(net, d / "spk", config=model_config(net), card=render_card("spk", model_config(net)))
    out = d / "cohorts.json"
    rc = load_script().main(["--speaker-model", str(spk), "--corpus", "an4", "--data-dir", str(an4_root.parent),
                             "--k", "2", "--max-per-speaker", "1", "--check-per-speaker", "1", "--out", str(out)])
    assert rc == 0
    return out


def test_script_writes_the_cohort_file(cohort_file, an4_root, capsys):
    from zoo.data.an4 import an4_cuts

    doc = json.loads(cohort_file.read_text())
    train = {c.supervisions[0].speaker for c in an4_cuts(an4_root.parent)["train"]}
    assert set(doc["speakers"]) == train and set(doc["speakers"].values()) == {0, 1}
    assert doc["k"] == 2 and len(doc["centroids"]) == 2 and len(doc["centroids"][0]) == 24
    assert sum(doc["cohort_speakers"].values()) == len(train)
    listed = (cohort_file.parent / "cohort_1_speakers.txt").read_text().split()
    assert listed == sorted(s for s, c in doc["speakers"].items() if c == 1)
    assert 0 <= doc["inference_check"]["agreement"] <= 1 and doc["inference_check"]["utterances"] == len(train)
    assert load_script().main(["--speaker-model", "x", "--out", str(cohort_file)]) == 2  # never overwrites
    assert "exists — pass --force" in capsys.readouterr().err


def test_fit_with_cohorts_and_export(cohort_file, an4_root, tmp_path):
    root = tmp_path / "run"
    run(["fit", "--config", TINY, "--trainer.default_root_dir", str(root), "--data.data_dir", str(an4_root.parent),
         "--trainer.enable_progress_bar", "false", "--model.init_args.cohort_input", f"{{file: {cohort_file}}}",
         "--data.cohorts", str(cohort_file), "--model.init_args.stats_batches", "1"])
    assert main(["export", str(root / "checkpoints" / "last.ckpt"), str(tmp_path / "model")]) == 0
    m = zoo.from_pretrained(tmp_path / "model")
    doc = json.loads(cohort_file.read_text())
    assert m.cohort_count == 2 and torch.allclose(m.cohort.centroids, torch.tensor(doc["centroids"]))
    assert m.cohort.embedding.weight.abs().sum() > 0  # the cohort vectors trained


def test_the_fairness_overlay_composes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["fit", "--config", str(REPO / "configs/fairness/ewc_finetune.yaml"), "--config",
              str(REPO / "configs/fairness/cohort_input.yaml"), "--print_config"])
    assert e.value.code in (0, None)
    cfg = yaml.safe_load(capsys.readouterr().out)
    a, d = cfg["model"]["init_args"], cfg["data"]
    assert a["init_from"] == "lstm-rnnt-an4-so762-long" and a["regularizer"] is None
    assert d["corpora"] == {"an4": 3, "speechocean762": 1} and d["cohorts"] == a["cohort_input"]["file"]
    assert cfg["trainer"]["max_steps"] == 300 and cfg["trainer"]["default_root_dir"] == "exp/fairness/cohort_input"


def test_a_training_speaker_without_cohort_fails_zoo_fit_in_one_line(cohort_file, an4_root, tmp_path, capsys):
    doc = json.loads(cohort_file.read_text())
    gone = sorted(doc["speakers"])[0]
    del doc["speakers"][gone]
    bad = tmp_path / "partial.json"
    bad.write_text(json.dumps(doc))
    rc = main(["fit", "--config", TINY, "--trainer.default_root_dir", str(tmp_path / "run"), "--data.data_dir",
               str(an4_root.parent), "--trainer.enable_progress_bar", "false", "--model.init_args.cohort_input",
               f"{{file: {bad}}}", "--data.cohorts", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("error: 1 training speaker(s) have no cohort in") and gone in err[0]
