"""zoo evaluate: WER (greedy + beam) with bootstrap CIs, streaming RTF, latency; and the benchmark table."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from zoo.evaluate import evaluate_asr, format_report
from zoo.metrics import error_rates


@pytest.fixture
def manifest(tmp_path, an4_root, an4_wavs):
    import soundfile as sf

    lines = dict(l.rsplit(" (", 1)[::-1] for l in (an4_root / "etc" / "an4_test.transcription").read_text().splitlines())
    m = tmp_path / "m.jsonl"
    with open(m, "w") as f:
        for w in an4_wavs[:3]:
            ref = lines[w.stem + ")"]
            f.write(json.dumps({"audio_filepath": str(w), "duration": sf.info(str(w)).duration, "text": ref,
                                "speaker": w.parent.name}) + "\n")
    return m


def test_evaluate_asr_numbers_are_consistent(tiny_net, manifest):
    from zoo.evaluate import load_eval_set

    items = load_eval_set(manifest=str(manifest))
    assert len(items) == 3 and all(it["text"] for it in items)
    r = evaluate_asr(tiny_net, items, beam_size=2, n_boot=200)
    g = r["greedy"]
    assert g["wer"] == pytest.approx(error_rates(r["hyps"]["greedy"], [i["text"] for i in items])["wer"])
    assert g["ci_utt"]["low"] <= g["wer"] <= g["ci_utt"]["high"]
    assert r["stream"]["rtf"] > 0 and r["stream"]["threads"] == 1
    assert r["stream"]["equals_batch_greedy"] == 1.0
    assert r["streaming"]["algorithmic_latency_ms"] == pytest.approx(160 + 15)
    text = format_report("tiny", "m", r)
    assert f"{100 * g['wer']:.2f}" in text and "beam2" in text


def test_evaluate_cli_writes_json_atomically(tiny_folder, manifest, tmp_path):
    out = tmp_path / "res" / "r.json"
    r = subprocess.run([sys.executable, "-m", "zoo.cli", "evaluate", "--model", str(tiny_folder), "--manifest",
                        str(manifest), "--beam-size", "2", "--json", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert "WER" in r.stdout and res["utterances"] == 3 and "beam2" in res
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]
