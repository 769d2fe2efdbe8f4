"""Multi-talker (STS) evaluation, release and benchmark: zoo evaluate on fixed two-speaker sessions, the
release script, a registry entry of task multitalker-asr, benchmarks/multitalker.py."""
from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import torch

from zoo.evaluation.multitalker import evaluate_multitalker, load_mix_sessions, session_audio
from zoo.models.sts import Turn
from zoo.tasks.sts import assign_channels

from helpers import biased_sts, make_sts

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(an4_root) -> str:
    return str(an4_root.parent)


@pytest.fixture(scope="module")
def items(data_dir):
    return load_mix_sessions(sessions=4, data_dir=data_dir)


def _net(turn_tokens: bool):
    net = biased_sts(make_sts(turn_tokens))
    net.turn_gap_s = 0.3
    return net


def _folder(path: Path, turn_tokens: bool, **extra) -> Path:
    from zoo.hub.cards import render_card
    from zoo.models.base import model_config, save_pretrained

    net = _net(turn_tokens)
    cfg = model_config(net, **extra)
    return save_pretrained(net, path, config=cfg, card=render_card(path.name, cfg))


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sts-models")
    return _folder(root / "sts-tiny", True), _folder(root / "sts-noturn-tiny", False)


def _run(path: Path, argv: list[str]) -> int:
    return runpy.run_path(str(path))["main"](argv)


def _one_error_line(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), (code, err)
    return err[0]


# --- the numbers ------------------------------------------------------------------------------------
class OracleSTS(torch.nn.Module):
    """Returns each session's reference turns, speaker A on channel 0 and B on 1 (or on their overlap-assigned
    channels, as in training), with planted mistakes: odd sessions lose their first word, session 2 loses
    its last turn, and the stream of session 0 differs."""

    task = "multitalker-asr"
    sample_rate = 16000
    normalizer = "upper"

    def __init__(self, items, by_speaker: bool = True, mistakes: bool = True):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.by_len = {}
        for i, (it, w) in enumerate(zip(items, session_audio(items, 16000))):
            first = it["turns"][0][0]
            ch = [int(t[0] != first) for t in it["turns"]] if by_speaker else assign_channels(it["turns"])
            turns = [Turn(c, t[1], t[2], t[3]) for c, t in zip(ch, it["turns"])]
            if mistakes and i % 2:
                turns[0] = turns[0]._replace(text=" ".join(turns[0].text.split()[1:]))
            if mistakes and i == 2:
                turns = turns[:-1]
            self.by_len[w.numel()] = (i, turns)
        assert len(self.by_len) == len(items)

    def transcribe(self, wavs, sample_rate=None, progress=False):
        return [self.by_len[w.numel()][1] for w in wavs]

    def stream_transcribe(self, wav, chunk_ms=160.0):
        i, turns = self.by_len[wav.numel()]
        return turns[1:] if i == 0 else turns

    def streaming_info(self, chunk_ms=160.0):
        return {"supported": True, "algorithmic_latency_ms": chunk_ms + 15}


def test_evaluate_counts_planted_errors_exactly(items):
    r = evaluate_multitalker(OracleSTS(items), items, n_boot=300)
    words = [sum(len(t[3].split()) for t in it["turns"]) for it in items]
    first = [len(it["turns"][0][3].split()[:1]) for it in items]
    lost = len(items[2]["turns"][-1][3].split())
    errors = first[1] + first[3] + lost
    a = r["all"]
    assert (a["cpwer"]["errors"], a["cpwer"]["words"]) == (errors, sum(words))
    assert a["cpwer"]["wer"] == pytest.approx(errors / sum(words))
    assert a["orcwer"]["errors"] == errors  # oracle channels: ORC finds the same assignment
    assert a["turn_counting_accuracy"] == 0.75
    ci = a["ci"]
    assert ci["cpwer"]["low"] < a["cpwer"]["wer"] < ci["cpwer"]["high"] and ci["cpwer"]["unit"] == "session"
    assert 0.0 <= ci["turn_counting_accuracy"]["low"] < 0.75 < ci["turn_counting_accuracy"]["high"] <= 1.0
    # oracle times: every matched turn is emitted exactly on time
    assert a["latency_ms"]["start"]["median"] == pytest.approx(0, abs=1e-6)
    assert a["latency_ms"]["end"]["p90"] == pytest.approx(0, abs=1e-6)
    assert a["latency_ms"]["end"]["n"] == sum(len(it["turns"]) for it in items) - 1
    assert r["stream"]["equals_batch"] == 0.75 and r["stream"]["threads"] == 1 and r["stream"]["rtf"] > 0
    assert sum(b["sessions"] for b in r["by_overlap"].values()) == 4
    assert sum(b["cpwer"]["errors"] for b in r["by_overlap"].values()) == errors
    for b in r["by_overlap"].values():  # one-session bins: a degenerate CI at the value
        if b["sessions"] == 1:
            assert b["ci"]["cpwer"]["low"] == b["ci"]["cpwer"]["high"] == b["cpwer"]["wer"]
    # a perfect transcript on the training layout (channel = free channel, not speaker) scores the floor
    perfect = evaluate_multitalker(OracleSTS(items, by_speaker=False, mistakes=False), items, n_boot=10)
    assert perfect["all"]["orcwer"]["wer"] == 0 and perfect["all"]["turn_counting_accuracy"] == 1.0
    assert perfect["all"]["cpwer"]["wer"] == pytest.approx(r["target_floor"]["cpwer"])
    assert r["target_floor"]["cpwer"] > 0
    assert r["target_floor"]["orcwer"] == 0


def test_evaluate_tiny_sts_agrees_with_meeteval(items, folders):
    from meeteval.wer import cp_word_error_rate, orc_word_error_rate

    from zoo import from_pretrained

    model = from_pretrained(folders[0])
    r = evaluate_multitalker(model, items, n_boot=200)
    hyps = model.transcribe(session_audio(items, 16000), sample_rate=16000)
    assert r["hyps"] == [[[t.channel, t.start, t.end, t.text] for t in h] for h in hyps]
    assert any(r["hyps"]) and r["stream"]["equals_batch"] == 1.0
    errors = words = orc_errors = 0
    for it, h in zip(items, hyps):
        ref, hyp = {}, {}
        for spk, _, _, text in it["turns"]:
            ref[spk] = (ref.get(spk, "") + " " + text).strip()
        for t in h:
            hyp[str(t.channel)] = (hyp.get(str(t.channel), "") + " " + t.text).strip()
        e = cp_word_error_rate(ref, hyp or {"x": ""}, reference_sort=False, hypothesis_sort=False)
        errors, words = errors + e.errors, words + e.length
        o = orc_word_error_rate([t[3] for t in it["turns"]], hyp or {"x": ""}, reference_sort=False,
                                hypothesis_sort=False)
        orc_errors += o.errors
    assert r["all"]["cpwer"]["errors"] == errors and r["all"]["cpwer"]["words"] == words
    assert r["all"]["orcwer"]["errors"] == orc_errors
    assert r["all"]["turn_counting_accuracy"] == sum(len(h) == len(it["turns"]) for it, h in zip(items, hyps)) / 4
    assert r["num_parameters"] == sum(p.numel() for p in model.parameters())


# --- zoo evaluate -----------------------------------------------------------------------------------
def test_evaluate_cli_json_and_manifest_equal_generated(folders, data_dir, tmp_path, capsys):
    from zoo.cli.main import main
    from zoo.data.mix import write_an4_mix

    out = tmp_path / "res" / "r.json"
    assert main(["evaluate", "--model", str(folders[0]), "--sessions", "3", "--n-boot", "100", "--data-dir", data_dir,
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]
    assert res["sessions"] == 3 and res["eval_set"] == "an4-mix test, seed 0" and len(res["hyps"]) == 3
    assert res["ids"] == [f"an4mix-test-0-{i:04d}" for i in range(3)]
    assert f"{100 * res['all']['cpwer']['wer']:.2f}" in text and "cpWER" in text and "RTF" in text
    # the fixed manifest (zoo data an4-mix) gives the same sessions, hence the same numbers
    man = write_an4_mix(tmp_path / "mix", sessions=3, data_dir=data_dir)
    out2 = tmp_path / "r2.json"
    assert main(["evaluate", "--model", str(folders[0]), "--manifest", str(man), "--n-boot", "100",
                 "--json", str(out2)]) == 0
    res2 = json.loads(out2.read_text())
    assert res2["hyps"] == res["hyps"] and res2["all"] == res["all"] and res2["ids"] == res["ids"]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory, an4_wavs, data_dir):
    from zoo.data.mix import write_an4_mix

    root = tmp_path_factory.mktemp("manifests")
    nemo = root / "nemo.jsonl"
    nemo.write_text(json.dumps({"audio_filepath": str(an4_wavs[0]), "text": "A"}) + "\n")
    return {"nemo": str(nemo), "mix": str(write_an4_mix(root / "mix", sessions=2, data_dir=data_dir))}


@pytest.mark.parametrize("which,args,msg", [
    ("sts", ["--manifest", "{nemo}"], "not a two-speaker session manifest"),
    ("sts", ["--manifest", "/nonexistent/m.jsonl"], "manifest not found"),
    ("sts", ["--split", "train"], "test and dev"),
    ("sts", ["--beam-size", "4"], "greedily"),
    ("sts", ["--sessions", "0"], "at least 1"),
    ("sts", ["--n-boot", "0"], "--n-boot"),
    ("sts", ["--manifest", "{mix}", "--sessions", "2"], "do not apply with --manifest"),
    ("asr", ["--sessions", "2"], "multi-talker"),
    ("asr", ["--manifest", "{mix}"], "two-speaker sessions"),
])
def test_evaluate_cli_errors(folders, tiny_folder, manifests, capsys, which, args, msg):
    from zoo.cli.main import main

    model = str(folders[0] if which == "sts" else tiny_folder)
    code = main(["evaluate", "--model", model, *[a.format(**manifests) for a in args]])
    assert msg in _one_error_line(capsys, code)


# --- release ----------------------------------------------------------------------------------------
def _ckpt(path: Path, turn_tokens: bool) -> Path:
    from zoo.models.base import model_config

    net = _net(turn_tokens)
    torch.save({"zoo_config": model_config(net), "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}},
               path)
    return path


@pytest.mark.parametrize("turn_tokens,design", [(True, "sts-an4"), (False, "sts-noturn-an4")])
def test_release_writes_a_complete_folder(tmp_path, data_dir, items, turn_tokens, design, capsys):
    import yaml

    from zoo import from_pretrained
    from zoo.models.sts import STSASR

    out = tmp_path / "release"
    code = _run(REPO / "scripts" / "release_asr.py", [
        "--ckpt", str(_ckpt(tmp_path / "last.ckpt", turn_tokens)), "--name", "sts-tiny", "--config",
        "configs/ci/sts_tiny.yaml", "--out", str(out), "--sessions", "3", "--n-boot", "100", "--data-dir", data_dir,
        "--design", f"model_cards/{design}.design.md", "--train-minutes", "40",
        *([] if turn_tokens else ["--turn-gap", "0.4"])], )
    assert code == 0
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "train_config.yaml", "README.md",
                                              "eval_an4mix_test.txt"}
    assert (out / "train_config.yaml").read_bytes() == (REPO / "configs/ci/sts_tiny.yaml").read_bytes()
    cfg = json.loads((out / "config.json").read_text())
    res = cfg["results"]
    assert cfg["task"] == "multitalker-asr" and res["sessions"] == 3 and res["split"] == "test"
    cp = res["all"]["cpwer"]
    orc = res["all"]["orcwer"]
    assert res["headline"] == f"cpWER {100 * cp:.2f}% / ORC-WER {100 * orc:.2f}% (AN4 2-speaker mix test, greedy)"
    assert f"{100 * res['target_floor']['cpwer']:.2f}%" in (out / "README.md").read_text()
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert [m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]] == [m["value"] for m in res["metrics"]]
    for m in res["metrics"]:
        assert f"{m['value']:.2f}" in card or f"{m['value']:.1f}" in card, m
    a = res["all"]
    lo, hi = 100 * a["ci"]["cpwer"]["low"], 100 * a["ci"]["cpwer"]["high"]
    assert f"| all | 3 | {100 * cp:.2f} ({lo:.2f}–{hi:.2f})" in card
    for k in res["by_overlap"]:
        assert f"| overlap {k} |" in card
    assert f"{res['stream_rtf_1thread']:.4f}" in card
    assert "zoo evaluate --model sts-tiny" in card and "zoo data an4-mix" in card and "--sessions 3" in card
    assert "from the paper" in card and "our choice" in card and "in 40 minutes" in card
    assert ("| turn segmentation | `<sot>` / `<eot>` turn tokens |" in card) is turn_tokens
    assert ("| turn segmentation | no turn tokens (baseline)" in card) is not turn_tokens
    # the folder loads and reproduces its numbers
    model = from_pretrained(out)
    assert isinstance(model, STSASR) and model.turn_tokens is turn_tokens
    if not turn_tokens:  # the dev-chosen gap is shipped, and the card's release command passes it
        assert model.turn_gap_s == 0.4 and "--turn-gap 0.4" in card
    again = evaluate_multitalker(model, items[:3], n_boot=100)
    assert again["all"]["cpwer"]["wer"] == pytest.approx(cp)
    assert again["all"]["turn_counting_accuracy"] == pytest.approx(a["turn_counting_accuracy"])
    assert (out / "eval_an4mix_test.txt").read_text().startswith("model sts-tiny on an4-mix test")


def test_release_errors(tmp_path, capsys):
    script = REPO / "scripts" / "release_asr.py"
    code = _run(script, ["--ckpt", str(tmp_path / "missing.ckpt"), "--name", "x", "--config",
                         "configs/ci/sts_tiny.yaml", "--out", str(tmp_path / "x")])
    assert "checkpoint not found" in _one_error_line(capsys, code)
    code = _run(script, ["--ckpt", str(_ckpt(tmp_path / "c.ckpt", True)), "--name", "x", "--config", "nope.yaml",
                         "--out", str(tmp_path / "x")])
    assert "training config not found" in _one_error_line(capsys, code)
    code = _run(script, ["--ckpt", str(_ckpt(tmp_path / "c.ckpt", True)), "--name", "x", "--config",
                         "configs/ci/sts_tiny.yaml", "--out", str(tmp_path / "x"), "--turn-gap", "0.5"])
    assert "--turn-gap is for a multi-talker baseline" in _one_error_line(capsys, code)
    assert not (tmp_path / "x").exists()


# --- registry entry, zoo list / transcribe ----------------------------------------------------------
def test_registry_entry_list_and_transcribe(tmp_path, monkeypatch, capsys, an4_wavs, data_dir):
    import zoo.hub.registry
    from zoo.cli.main import main

    results = {"headline": "cpWER 12.34% (AN4 2-speaker mix test, greedy)"}
    _folder(tmp_path / "checkpoints" / "sts-tiny", True, results=results)
    monkeypatch.setattr(zoo.hub.registry, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setitem(zoo.hub.registry.MODELS, "sts-tiny", {"task": "multitalker-asr", "description": "tiny STS"})
    assert main(["list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "sts-tiny" in line)
    assert "multitalker-asr" in row and "cpWER 12.34%" in row and "yes" in row
    mix = tmp_path / "mix.wav"
    assert main(["mix", str(an4_wavs[0]), str(an4_wavs[1]), "--offset", "1.0", "-o", str(mix)]) == 0
    capsys.readouterr()
    assert main(["transcribe", "--model", "sts-tiny", "--quiet", str(mix)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    expect = _net(True).transcribe([str(mix)])[0]
    assert expect and len(lines) == len(expect)
    for line, t in zip(lines, expect):
        assert line.split("\t") == [str(mix), str(t.channel), f"{t.start:.2f}", f"{t.end:.2f}", t.text]
    bench = runpy.run_path(str(REPO / "benchmarks" / "multitalker.py"))
    assert bench["default_models"]() == ["sts-tiny"]


# --- benchmark --------------------------------------------------------------------------------------
def test_benchmark_two_folders(folders, data_dir, tmp_path, capsys):
    bench = REPO / "benchmarks" / "multitalker.py"
    out = tmp_path / "b.json"
    assert _run(bench, ["--models", str(folders[0]), str(folders[1]), "--sessions", "3", "--n-boot", "50",
                        "--data-dir", data_dir, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["baseline"] == str(folders[1])  # auto: the model without turn tokens
    sts, base = res["models"]["sts-tiny"], res["models"]["sts-noturn-tiny"]
    assert sts["sessions"] == base["sessions"] == 3 and sts["ids"] == base["ids"]
    lines = text.splitlines()
    assert "ratios vs sts-noturn-tiny" in lines[0]
    row = next(line for line in lines if line.startswith("sts-tiny "))
    brow = next(line for line in lines if line.startswith("sts-noturn-tiny "))
    assert f"{100 * sts['all']['cpwer']['wer']:.2f}" in row and f"{sts['stream']['rtf']:.4f}" in row
    ratio = sts["all"]["cpwer"]["wer"] / base["all"]["cpwer"]["wer"]
    assert row.split()[-5] == f"{ratio:.2f}" and brow.split()[-5] == "1.00"
    pp = 100 * (sts["all"]["turn_counting_accuracy"] - base["all"]["turn_counting_accuracy"])
    assert row.split()[-3] == f"{pp:+.1f}"
    assert "by overlap ratio" in text
    for k in sts["by_overlap"]:
        assert any(line.startswith(f"{k:<8} sts-tiny ") for line in lines), k
    # a baseline that is not among the models
    assert "--baseline" in _one_error_line(capsys, _run(bench, ["--models", str(folders[0]), "--sessions", "2",
                                                                "--data-dir", data_dir, "--baseline", "nope"]))
