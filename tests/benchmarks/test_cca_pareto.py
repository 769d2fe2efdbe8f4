"""benchmarks/cca_pareto.py (Pareto front, end to end on tiny model folders and checkpoints) and
scripts/cca_sweep.py (the planned `zoo fit` commands, which the real CLI parses)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from helpers import load_script

REPO = Path(__file__).resolve().parents[2]
TINY = {"name": "cca_transformer", "stack": 4, "d_model": 32, "heads": 2, "ffn_dim": 48, "layers": 2,
        "left_context": 16, "dropout": 0.0}


def _load(name: str, rel: str):
    mod = load_script(rel)
    return mod


@pytest.fixture(scope="module")
def pareto():
    return _load("cca_pareto", "benchmarks/cca_pareto.py")


@pytest.fixture(scope="module")
def sweep():
    return _load("cca_sweep", "scripts/cca_sweep.py")


def test_pareto_front_on_hand_made_points(pareto):
    pts = [(1.0, 0.30), (0.5, 0.32), (0.4, 0.40), (0.6, 0.31), (0.5, 0.35), (0.9, 0.30), (0.7, 0.33)]
    # (1.0, .30) is dominated by (0.9, .30); (0.5, .35) by (0.5, .32); (0.7, .33) by (0.6, .31)
    assert pareto.pareto_front(pts) == [2, 1, 3, 5]
    assert pareto.pareto_front([(1, 1), (1, 1)]) == [0, 1]  # ties dominate nothing
    assert pareto.pareto_front([]) == []
    assert pareto.dominated_by(pts, 0, [1, 3, 5]) == [5]
    assert pareto.dominated_by(pts, 4, [1, 2]) == [1]


def _tiny_net(encoder: dict, seed: int):
    from zoo.models.transducer import TransducerASR
    from zoo.text import CharTokenizer

    torch.manual_seed(seed)
    net = TransducerASR(encoder, {"embed_dim": 8, "hidden": 16}, {"joint_dim": 16}, {"n_mels": 40},
                        tokenizer=CharTokenizer()).eval()
    net.featurizer.set_stats(torch.full((40,), -5.0), torch.full((40,), 3.0))
    with torch.no_grad():
        for layer in net.encoder.layers:  # mixed gate decisions
            layer.arbitrator.bias.zero_()
            layer.arbitrator.weight.normal_(0, 1.0)
        net.joiner.out.bias[0] += 2.0
    return net


@pytest.fixture
def inputs(tmp_path, an4_wavs):
    """An all-on model folder, a CCA run folder (best + last checkpoints, lambda in hparams) and a
    sliding-window model folder with its training config; a 3-utterance manifest of real AN4 audio."""
    from zoo.models.base import model_config, save_pretrained

    allon = _tiny_net({**TINY, "gated": False}, 0)
    cca = _tiny_net(TINY, 1)
    win = _tiny_net({**TINY, "gated": False, "window": 4}, 2)
    f_allon = save_pretrained(allon, tmp_path / "allon", config=model_config(allon))
    f_win = save_pretrained(win, tmp_path / "win4", config=model_config(win))
    (f_win / "train_config.yaml").write_text(yaml.safe_dump({"model": {"init_args": {"compute_weight": 0.0}}}))
    run = tmp_path / "lam0.5"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = {"zoo_config": model_config(cca), "hyper_parameters": {"compute_weight": 0.5},
            "state_dict": {f"net.{k}": v for k, v in cca.state_dict().items()}}
    torch.save(ckpt, run / "checkpoints" / "best-step=40-val_wer=0.5000.ckpt")
    torch.save({**ckpt, "hyper_parameters": {"compute_weight": 9.0}},
               run / "checkpoints" / "best-step=20-val_wer=0.9000.ckpt")
    torch.save({**ckpt, "hyper_parameters": {"compute_weight": 7.0}}, run / "checkpoints" / "last.ckpt")
    man = tmp_path / "m.jsonl"
    man.write_text("".join(json.dumps({"audio_filepath": str(p), "text": "TWO SIX EIGHT", "duration": 1.0}) + "\n"
                           for p in an4_wavs[:3]))
    return [str(f_allon), str(run), str(f_win)], man


def test_pareto_script_end_to_end(pareto, inputs, tmp_path, capsys):
    srcs, man = inputs
    out = tmp_path / "report"
    assert pareto.main([*srcs, "--manifest", str(man), "--repeats", "2", "--chunk-ms", "160",
                        "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    png = (out / "cca_pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    res = json.loads((out / "cca_pareto.json").read_text())
    rows = res["rows"]
    assert [r["name"] for r in rows] == ["allon", "lam0.5", "win4"]  # one row per input, in order
    assert [r["kind"] for r in rows] == ["allon", "cca", "window"]
    assert res["baseline"] == "allon"
    a, c, w = rows
    assert c["source"].endswith("best-step=40-val_wer=0.5000.ckpt") and c["compute_weight"] == 0.5
    assert c["value"] == 0.5 and w["value"] == 4
    assert all(r["utterances"] == 3 and r["frames"] > 50 for r in rows)
    # FLOPs: all-on = 100%; CCA from its gate decisions; window analytic == counted, below full span
    assert a["flops_frac"] == 1.0 and a["flops"] == a["flops_dense"] == a["flops_analytic_dense"]
    assert c["flops_counted"] == c["flops"] < 0.85 * c["flops_dense"]
    assert c["flops_dense"] == c["flops_analytic_dense"]
    assert w["flops"] == w["flops_analytic"] == w["flops_counted"] < w["flops_dense"]
    mha, ffn = sum(c["mha_on"]) / 2, sum(c["ffn_on"]) / 2
    assert len(c["mha_on"]) == 2 and 0.05 < mha < 0.95 and 0.05 < ffn < 0.95
    assert a["mha_on"] == [1.0, 1.0] and a["ffn_on"] == [1.0, 1.0]
    for r in rows:
        assert len(r["wall_utt"]["passes"]["model"]) == 2 and r["wall_utt"]["ratio"] > 0
        assert r["wall_stream"]["ratio"] > 0
        assert 0 <= r["low"] <= r["wer"] <= r["high"]
    # the printed and the Markdown tables have one row per input
    md = (out / "cca_pareto.md").read_text()
    table = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| run")]
    assert [ln.split("|")[1].strip() for ln in table] == ["allon", "lam0.5", "win4"]
    assert "| 100.0 |" in table[0]
    for name in ("allon", "lam0.5", "win4"):
        assert any(ln.startswith(name) for ln in printed.splitlines())
    assert "sliding window W=4" in printed


def test_choose_picks_the_cheapest_gated_run_within_the_tolerance(pareto):
    rows = [{"name": "allon", "kind": "allon", "wer": 0.30, "flops_frac": 1.0},
            {"name": "lam2", "kind": "cca-ft", "wer": 0.305, "flops_frac": 0.8},
            {"name": "lam8", "kind": "cca-ft", "wer": 0.308, "flops_frac": 0.6},
            {"name": "lam16", "kind": "cca-ft", "wer": 0.32, "flops_frac": 0.4},   # 6.7% worse: out
            {"name": "win8", "kind": "window", "wer": 0.30, "flops_frac": 0.5},    # not gated: never chosen
            {"name": "w8l4", "kind": "cca-window", "wer": 0.309, "flops_frac": 0.45}]
    assert pareto.choose(rows, rows[0], 0.03)["name"] == "w8l4"
    assert pareto.choose(rows[:5], rows[0], 0.03)["name"] == "lam8"
    assert pareto.choose(rows[:5], rows[0], 0.07)["name"] == "lam16"
    assert pareto.choose(rows, rows[0], 0.0) is None and pareto.choose(rows, None, 0.03) is None


def test_init_script_builds_window_and_gated_window_folders_from_a_model(tmp_path, pareto):
    """cca_init_from_allon.py from a model folder: --window W --no-gates is the window baseline, --window W the
    CCA-on-a-window cell; both keep every weight, and the benchmark names their kinds."""
    from zoo import from_pretrained
    from zoo.models.base import model_config, save_pretrained

    allon = _tiny_net({**TINY, "gated": False}, 0)
    src = save_pretrained(allon, tmp_path / "allon", config=model_config(allon))
    init = _load("cca_init_from_allon", "scripts/cca_init_from_allon.py")
    assert init.main([str(src), str(tmp_path / "w4"), "--window", "4", "--no-gates"]) == 0
    assert init.main([str(src), str(tmp_path / "w4g"), "--window", "4"]) == 0
    win, both = from_pretrained(tmp_path / "w4"), from_pretrained(tmp_path / "w4g")
    assert (win.encoder.window, win.encoder.gated) == (4, False)
    assert (both.encoder.window, both.encoder.gated) == (4, True)
    assert pareto.kind_of(win.encoder) == "window" and pareto.kind_of(both.encoder) == "cca-window"
    for k, v in allon.state_dict().items():
        if ".arbitrator." not in k:
            assert torch.equal(v, both.state_dict()[k]) and torch.equal(v, win.state_dict()[k]), k
    with pytest.raises(SystemExit, match="^error: --window -1 is negative"):
        init.main([str(src), str(tmp_path / "bad"), "--window", "-1"])
    with pytest.raises(SystemExit, match="^error: .*not a full-context all-on"):
        init.main([str(tmp_path / "w4g"), str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()


def test_pareto_rejects_a_non_cca_model(pareto, tiny_folder):
    with pytest.raises(ValueError, match="not cca_transformer"):
        pareto.load_model(str(tiny_folder))


def test_sweep_dry_run_prints_the_expected_commands(sweep, capsys):
    assert sweep.main(["--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = ["allon", "lam0", "lam0.5", "lam1", "lam2", "lam4", "win4", "win8", "win16"]
    assert len(lines) == len(names)
    for line, name in zip(lines, names):
        assert line.startswith("OMP_NUM_THREADS=1 zoo fit --config configs/asr/")
        assert f"--trainer.default_root_dir exp/cca_sweep/{name} " in line
        assert line.endswith(f"> exp/cca_sweep/{name}/train.log 2>&1")
        assert "--trainer.max_steps" not in line
    assert "transformer_rnnt_an4.yaml" in lines[0] and "compute_weight" not in lines[0]
    assert "--model.init_args.compute_weight 0 " in lines[1] and "cca_transformer_an4.yaml" in lines[1]
    assert "--model.init_args.encoder.window 16 " in lines[-1] and "transformer_window_an4.yaml" in lines[-1]
    assert sweep.main(["--dry-run", "--max_steps", "300", "--lambdas", "0", "2", "--windows", "8", "--no-allon",
                       "--root", "exp/s"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert all("--trainer.max_steps 300 --model.init_args.scheduler.init_args.total_steps 300 "
               "--model.init_args.scheduler.init_args.warmup_steps 30" in ln for ln in lines)
    # docstring commands are the real ones
    doc_lines = [ln.strip() for ln in sweep.__doc__.splitlines() if ln.strip().startswith("OMP_NUM_THREADS=1 zoo fit")]
    sweep.main(["--dry-run"])
    assert set(doc_lines) <= set(capsys.readouterr().out.strip().splitlines())


def test_sweep_commands_parse_in_the_real_cli(sweep, capsys):
    from zoo.cli.main import main
    from zoo.nets import build_encoder

    runs = {r["name"]: r for r in sweep.plan("exp/s", [0.5], [16], True, max_steps=200)}
    for name, r in runs.items():
        with pytest.raises(SystemExit) as e:
            main([*r["argv"][1:], "--print_config"])
        assert e.value.code in (0, None)
        cfg = yaml.safe_load(capsys.readouterr().out)
        init = cfg["model"]["init_args"]
        assert cfg["trainer"]["default_root_dir"] == f"exp/s/{name}"
        assert cfg["trainer"]["max_steps"] == 200 and init["scheduler"]["init_args"]["total_steps"] == 200
        enc = build_encoder(init["encoder"], 80)
        if name == "lam0.5":
            assert init["compute_weight"] == 0.5 and enc.gated and enc.window == 0
        elif name == "win16":
            assert init["compute_weight"] == 0 and enc.window == 16 and not enc.gated
        else:
            assert init["compute_weight"] == 0 and not enc.gated and enc.window == 0


def test_sweep_runs_in_parallel_with_extra_arguments(sweep, tmp_path, monkeypatch, capsys):
    """--parallel N starts up to N `python -m zoo fit` processes at once; --extra reaches every command; DONE
    markers are written for runs that exit 0 and failures are reported."""
    import subprocess
    import sys

    started, live, peak = [], [], [0]

    class FakeProc:
        def __init__(self, argv, **kw):
            self.argv, self.polls = argv, 0
            started.append(argv)
            live.append(self)
            peak[0] = max(peak[0], len(live))
            self.returncode = None

        def poll(self):
            self.polls += 1
            if self.polls < 2:
                return None
            if self in live:
                live.remove(self)
            self.returncode = 1 if "lam2" in " ".join(self.argv) else 0
            return self.returncode

    monkeypatch.setattr(subprocess, "Popen", FakeProc)
    monkeypatch.setattr(sweep.time, "sleep", lambda s: None)
    root = tmp_path / "sw"
    rc = sweep.main(["--root", str(root), "--lambdas", "1", "2", "--windows", "8", "--parallel", "2",
                     "--extra", "--trainer.accelerator", "gpu"])
    assert rc == 1 and "failed: lam2" in capsys.readouterr().err
    assert len(started) == 4 and peak[0] == 2
    assert all(a[:3] == [sys.executable, "-m", "zoo"] and a[-2:] == ["--trainer.accelerator", "gpu"]
               for a in started)
    assert sorted(p.parent.name for p in root.glob("*/DONE")) == ["allon", "lam1", "win8"]


def test_python_m_zoo_is_the_zoo_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "zoo", "list"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and "lstm-rnnt-an4" in out.stdout


def test_cca_init_from_allon_checkpoint(tmp_path):
    """scripts/cca_init_from_allon.py: an all-on checkpoint -> a gated folder with the same weights and
    every gate on at the start (weight 0, bias +2), which a CCA fine-tune can init_from."""
    from zoo import from_pretrained
    from zoo.models.base import model_config

    allon = _tiny_net({**TINY, "gated": False}, 0)
    ck = tmp_path / "allon.ckpt"
    torch.save({"zoo_config": model_config(allon),
                "state_dict": {f"net.{k}": v for k, v in allon.state_dict().items()}}, ck)
    mod = _load("cca_init_from_allon", "scripts/cca_init_from_allon.py")
    assert mod.main([str(ck), str(tmp_path / "init")]) == 0
    net = from_pretrained(tmp_path / "init")
    assert net.encoder.gated
    for k, v in allon.state_dict().items():
        if ".arbitrator." not in k:
            assert torch.equal(v, net.state_dict()[k]), k
    x = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        net.encode(x, torch.tensor([16000]))
    assert bool((net.encoder.last_gates == 1).all())  # eval gates: every MHA/FFN on, as the all-on model
    win = _tiny_net({**TINY, "gated": False, "window": 4}, 2)
    torch.save({"zoo_config": model_config(win), "state_dict": {f"net.{k}": v for k, v in win.state_dict().items()}},
               tmp_path / "win.ckpt")
    with pytest.raises(SystemExit, match="^error: .*not a full-context all-on"):
        mod.main([str(tmp_path / "win.ckpt"), str(tmp_path / "init2")])


def test_gpu_checkpoint_scripts_reject_bad_files_in_one_line(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_text("not a checkpoint")
    init = _load("cca_init_from_allon", "scripts/cca_init_from_allon.py")
    with pytest.raises(SystemExit, match=r"^error: cannot read .*bad.ckpt as a Lightning checkpoint"):
        init.main([str(bad), str(tmp_path / "out")])
    unpack = _load("unpack_gpu_ckpts", "scripts/unpack_gpu_ckpts.py")
    with pytest.raises(SystemExit, match=r"^error: .*bad.ckpt: not a slim sweep checkpoint"):
        unpack.main([str(bad), "--out", str(tmp_path / "o")])
    torch.save({"state_dict": {}}, tmp_path / "nohp.ckpt")
    with pytest.raises(SystemExit, match="not a slim sweep checkpoint"):
        unpack.main([str(tmp_path / "nohp.ckpt"), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()
