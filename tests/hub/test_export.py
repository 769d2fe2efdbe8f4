"""``zoo export <ckpt> <out_dir>``: a checkpoint from a real (tiny) ``zoo fit`` -> model folder that reloads to
the same model; one-line errors for missing / foreign / unreadable checkpoints and unsafe output folders."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zoo.cli.lightning import run
from zoo.cli.main import main

from helpers import load_script

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "ci" / "tiny.yaml")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, an4_root) -> Path:
    root = tmp_path_factory.mktemp("export_fit")
    run(["fit", "--config", TINY, "--trainer.default_root_dir", str(root), "--data.data_dir", str(an4_root),
         "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1"])
    return root / "checkpoints" / "last.ckpt"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_export_writes_verified_model_folder(ckpt, tmp_path, capsys, an4_wavs):
    from zoo.hub import from_pretrained

    out = tmp_path / "tiny-an4"
    assert main(["export", str(ckpt), str(out), "--name", "tiny-an4-test"]) == 0
    assert "reloaded and verified" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "README.md"}
    assert not list(tmp_path.glob(".tiny-an4.*")), "temporary export folder left behind"

    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architecture"] == "transducer" and cfg["task"] == "asr"
    assert cfg["model"]["encoder"]["hidden"] == 32 and cfg["model"]["featurizer"]["n_mels"] == 40
    assert cfg["tokenizer"]["type"] == "char"
    assert "tiny-an4-test" in (out / "README.md").read_text()

    # weights are exactly the checkpoint's net.* tensors (ctc_head and optimizer state left out)
    ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    want = {k[len("net."):]: v for k, v in ck["state_dict"].items() if k.startswith("net.")}
    got = load_file(out / "model.safetensors")
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)

    # and the folder is a working model: same transcripts as the checkpoint's own net
    from zoo.hub.export import net_from_checkpoint

    net, _ = net_from_checkpoint(ckpt)
    model = from_pretrained(out)
    assert model.transcribe([str(w) for w in an4_wavs[:2]]) == net.transcribe([str(w) for w in an4_wavs[:2]])

    # re-exporting over an existing model folder is refused; with --force it replaces it
    assert main(["export", str(ckpt), str(out)]) == 2
    assert "--force" in one_line_error(capsys)
    assert main(["export", str(ckpt), str(out), "--force"]) == 0
    assert "# tiny-an4" in (out / "README.md").read_text()


def test_missing_checkpoint(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.ckpt"), str(tmp_path / "out")]) == 2
    assert "checkpoint not found" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_checkpoint_folder_instead_of_file(ckpt, tmp_path, capsys):
    assert main(["export", str(ckpt.parent), str(tmp_path / "out")]) == 2
    assert "is a folder" in one_line_error(capsys)


def test_non_zoo_lightning_checkpoint(tmp_path, capsys):
    foreign = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2, 2)}, "global_step": 10, "epoch": 1,
                "pytorch-lightning_version": "2.6.6"}, foreign)
    assert main(["export", str(foreign), str(tmp_path / "out")]) == 2
    assert "not written by a zoo task" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ["text", "pickle"])
def test_unreadable_checkpoint(tmp_path, capsys, content):
    bad = tmp_path / "bad.ckpt"
    if content == "text":
        bad.write_text("not a checkpoint\n")
    else:  # a pickle that needs arbitrary code: refused by weights_only loading, in one line
        torch.save({"state_dict": {}, "obj": Path("x")}, bad)
    assert main(["export", str(bad), str(tmp_path / "out")]) == 2
    assert "cannot read" in one_line_error(capsys)


def test_refuses_to_replace_a_non_model_folder(ckpt, tmp_path, capsys):
    precious = tmp_path / "mydir"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main(["export", str(ckpt), str(precious)]) == 2
    assert "not a model folder" in one_line_error(capsys)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_export_averages_checkpoints(ckpt, tmp_path, capsys):
    """Several .ckpt files -> one folder whose weights are their elementwise mean (icefall/ESPnet averaging)."""
    ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    paths = []
    for i, scale in enumerate((0.5, 1.5)):
        c = dict(ck)
        c["state_dict"] = {k: (v * scale if v.is_floating_point() else v) for k, v in ck["state_dict"].items()}
        paths.append(tmp_path / f"c{i}.ckpt")
        torch.save(c, paths[-1])
    out = tmp_path / "avg"
    assert main(["export", *map(str, paths), str(out)]) == 0
    assert "average of 2 checkpoints" in capsys.readouterr().out
    got = load_file(out / "model.safetensors")
    want = {k[len("net."):]: v for k, v in ck["state_dict"].items() if k.startswith("net.")}
    key = next(k for k, v in want.items() if v.is_floating_point() and v.abs().sum() > 0 and "featurizer" not in k)
    assert torch.allclose(got[key], want[key], atol=1e-6)  # mean of 0.5x and 1.5x is 1x
    assert json.loads((out / "config.json").read_text())["averaged_from"] == ["c0.ckpt", "c1.ckpt"]


def test_export_average_best_of_run_folder(tmp_path, capsys, an4_root):
    from zoo.hub.export import best_checkpoints

    root = tmp_path / "run"  # 1-batch epochs: validation (and a scored checkpoint) after each step
    run(["fit", "--config", TINY, "--trainer.default_root_dir", str(root), "--data.data_dir", str(an4_root),
         "--trainer.max_steps", "2", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1"])
    capsys.readouterr()  # the run's progress bar (on stderr)
    folder = root / "checkpoints"
    best = best_checkpoints(folder, 1)
    assert best[0].parent == folder and best[0].name.startswith("best-")
    assert main(["export", str(folder), str(tmp_path / "avg1"), "--average", "1"]) == 0
    assert main(["export", str(folder), str(tmp_path / "avg99"), "--average", "99"]) == 2
    assert "fewer than --average 99" in one_line_error(capsys)
    assert not (tmp_path / "avg99").exists()


def test_choose_average_scores_dev_and_picks(tmp_path, capsys, an4_root):

    root = tmp_path / "run"
    keep2 = tmp_path / "keep2.yaml"  # replaces the tiny config's callbacks: keep the 2 best by val_wer
    keep2.write_text("trainer:\n  callbacks:\n    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
                     "      init_args: {monitor: val_wer, mode: min, save_top_k: 2, save_last: true, "
                     "filename: 'b-{step}'}\n")
    run(["fit", "--config", TINY, "--config", str(keep2), "--trainer.default_root_dir", str(root),
         "--data.data_dir", str(an4_root), "--trainer.max_steps", "2", "--trainer.limit_train_batches", "1",
         "--trainer.limit_val_batches", "1"])
    mod = load_script("scripts/choose_average.py")
    capsys.readouterr()
    assert mod.main([str(root / "checkpoints"), "--n", "1", "2", "--corpora", "an4",
                     "--data-dir", str(an4_root.parent)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["1", "2"]
    pooled = {r[0]: float(r[2]) for r in rows}
    chosen = out[-1].split()[-1]
    assert pooled[chosen] == min(pooled.values())
