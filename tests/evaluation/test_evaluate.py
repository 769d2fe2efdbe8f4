"""zoo evaluate: WER (greedy + beam) with bootstrap CIs, streaming RTF, latency; and the benchmark table."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from zoo.evaluation.asr import evaluate_asr, format_report
from zoo.metrics.wer import error_rates

from helpers import load_script


@pytest.fixture
def manifest(tmp_path, an4_root, an4_wavs):
    import soundfile as sf

    transcription = (an4_root / "etc" / "an4_test.transcription").read_text().splitlines()
    lines = dict(line.rsplit(" (", 1)[::-1] for line in transcription)
    m = tmp_path / "m.jsonl"
    with open(m, "w") as f:
        for w in an4_wavs[:3]:
            ref = lines[w.stem + ")"]
            f.write(json.dumps({"audio_filepath": str(w), "duration": sf.info(str(w)).duration, "text": ref,
                                "speaker": w.parent.name}) + "\n")
    return m


def test_evaluate_asr_numbers_are_consistent(tiny_net, manifest):
    from zoo.evaluation.asr import load_eval_set

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
    r = subprocess.run([sys.executable, "-m", "zoo", "evaluate", "--model", str(tiny_folder), "--manifest",
                        str(manifest), "--beam-size", "2", "--json", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert "WER" in r.stdout and res["utterances"] == 3 and "beam2" in res
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]


# --- corpus recipes, speaker metadata, narrow band ------------------------------------------------------
def _corpus_or_skip(name: str):
    from helpers import data_root as _data_root

    marker = {"speechocean762": "speechocean762/train/text", "alphanumeric": "alphanumeric/prompts.jsonl"}[name]
    if not (_data_root() / marker).exists():
        pytest.skip(f"{name} not under {_data_root()}")


def test_load_eval_set_an4_keeps_speaker_metadata(an4_root):
    from zoo.evaluation.asr import load_eval_set

    items = load_eval_set("an4", "test", data_dir=an4_root.parent)
    refs = [line.rsplit(" (", 1)[0].strip() for line in (an4_root / "etc" / "an4_test.transcription").read_text()
            .splitlines()]
    assert [it["text"] for it in items] == refs
    assert {it["speaker"] for it in items} == {p.name for p in (an4_root / "wav" / "an4test_clstk").iterdir()}
    assert all(it["gender"] == it["speaker"][0] and it["corpus"] == "an4" for it in items)
    assert all("sample_rate" not in it for it in items)
    dev = load_eval_set("an4", "dev", data_dir=an4_root.parent)
    assert not {it["speaker"] for it in dev} & {it["speaker"] for it in items}


def test_load_eval_set_speechocean762_keeps_age_and_gender():
    from zoo.evaluation.asr import load_eval_set

    from helpers import data_root as _data_root

    _corpus_or_skip("speechocean762")
    d = _data_root() / "speechocean762"
    items = load_eval_set("speechocean762", "test", data_dir=_data_root())
    n_test = len([line for line in (d / "test" / "text").read_text().splitlines() if line.strip()])
    assert len(items) == n_test
    ages = dict(line.split() for line in (d / "test" / "spk2age").read_text().splitlines() if line.strip())
    genders = dict(line.split() for line in (d / "test" / "spk2gender").read_text().splitlines() if line.strip())
    for it in items[:: max(1, len(items) // 50)]:
        assert it["corpus"] == "speechocean762" and it["age"] == int(ages[it["speaker"]])
        assert it["gender"] == genders[it["speaker"]]
        assert it["age_group"] == ("child" if it["age"] <= 15 else "adult")
        assert it["audio"].endswith(".opus") and it["text"] == it["text"].upper()
    dev = load_eval_set("speechocean762", "dev", data_dir=_data_root())
    assert dev and not {it["speaker"] for it in dev} & {it["speaker"] for it in items}


def test_load_eval_set_alphanumeric_has_prompts_and_accent_metadata():
    import json as _json

    from zoo.errors import ZooError
    from zoo.evaluation.asr import load_eval_set

    from helpers import data_root as _data_root

    _corpus_or_skip("alphanumeric")
    items = load_eval_set("alphanumeric", "test", data_dir=_data_root())
    prompts = [_json.loads(line) for line in (_data_root() / "alphanumeric" / "prompts.jsonl").read_text()
               .splitlines() if line.strip()]
    want = {(p["kind"], p["speaker"]): p["prompt_words"] for p in prompts
            if p["kind"] in ("names", "numbers") and p["prompt_words"]}
    assert {(it["kind"], it["speaker"]): it["text"] for it in items} == want
    assert all("native_language" in it and "nationality" in it and "age_group" in it for it in items)
    assert any(it["native_language"] for it in items)
    with pytest.raises(ZooError, match="no 'dev' split"):
        load_eval_set("alphanumeric", "dev", data_dir=_data_root())


def test_narrowband_items_lose_the_upper_band(an4_root):
    import torch

    from zoo.audio import load_audio
    from zoo.evaluation.asr import load_eval_set, load_item_audio

    items = load_eval_set("an4", "test", data_dir=an4_root.parent, sample_rate=8000)[:2]
    assert all(it["sample_rate"] == 8000 for it in items)
    for it in items:
        wide = load_audio(it["audio"], 16000)
        narrow = load_item_audio(it, 16000)
        assert abs(narrow.numel() - wide.numel()) <= 2
        n = min(wide.numel(), narrow.numel())

        def high_share(x):
            spec = torch.fft.rfft(x[:n]).abs().pow(2)
            return float(spec[int(len(spec) * 0.55):].sum() / spec.sum())  # above ~4.4 kHz

        assert high_share(wide) > 1e-4  # the recording has energy up there ...
        assert high_share(narrow) < high_share(wide) / 20  # ... the 8 kHz round trip does not
        low = int(n * 0.2)  # below ~3.2 kHz both agree
        a, b = torch.fft.rfft(wide[:n])[:low], torch.fft.rfft(narrow[:n])[:low]
        assert float((a - b).abs().pow(2).sum() / a.abs().pow(2).sum()) < 0.05
        assert torch.allclose(load_item_audio(it, 8000), load_audio(it["audio"], 8000))


def test_transcribe_items_sends_narrowband_audio_at_8k(tiny_net, an4_root):
    from zoo.audio import load_audio
    from zoo.evaluation.asr import load_eval_set, transcribe_items

    wide = load_eval_set("an4", "test", data_dir=an4_root.parent)[:3]
    narrow = load_eval_set("an4", "test", data_dir=an4_root.parent, sample_rate=8000)[:3]
    mixed = [wide[0], narrow[1], wide[2]]
    want_narrow = tiny_net.transcribe([load_audio(it["audio"], 8000) for it in narrow], sample_rate=8000)
    want_wide = tiny_net.transcribe([it["audio"] for it in wide])
    assert transcribe_items(tiny_net, narrow, group=2) == want_narrow
    assert transcribe_items(tiny_net, mixed) == [want_wide[0], want_narrow[1], want_wide[2]]
    r = evaluate_asr(tiny_net, narrow, beam_size=2, n_boot=50)
    assert r["hyps"]["greedy"] == want_narrow and r["input_sample_rates"] == [8000]
    assert "8 kHz" in format_report("tiny", "an4 test (8 kHz)", r)


def test_evaluate_cli_narrowband_and_bad_split(tiny_folder, manifest):
    r = subprocess.run([sys.executable, "-m", "zoo", "evaluate", "--model", str(tiny_folder), "--manifest",
                        str(manifest), "--beam-size", "2", "--narrowband", "--n-boot", "50"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "8 kHz" in r.stdout and "WER" in r.stdout
    r = subprocess.run([sys.executable, "-m", "zoo", "evaluate", "--model", str(tiny_folder), "--corpus",
                        "alphanumeric", "--split", "train"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "split" in lines[0], r.stderr


# --- benchmarks/asr.py ---------------------------------------------------------------------------------
def _bench():
    return load_script("benchmarks/asr.py")


def test_benchmark_table_with_limit(tiny_folder, an4_root, capsys):
    from zoo.evaluation.peers import pocketsphinx_available

    bench = _bench()
    out_json = tiny_folder.parent / "bench.json"
    args = ["--models", str(tiny_folder), "--sets", "an4", "an4-8k", "--limit", "2", "--n-boot", "50",
            "--data-dir", str(an4_root.parent), "--json", str(out_json)]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    res = json.loads(out_json.read_text())
    assert res["limit"] == 2
    assert {k: v["utterances"] for k, v in res["sets"].items()} == {"an4": 2, "an4-8k": 2}
    rows = {r["name"]: r for r in res["rows"]}
    tiny = rows[str(tiny_folder)]
    assert set(tiny["sets"]) == {"an4", "an4-8k"} and tiny["rtf"] > 0
    assert f"{100 * tiny['sets']['an4']['wer']:.2f}" in out and "AN4 test at 8 kHz (2 utts)" in out
    if pocketsphinx_available():
        ps = rows["pocketsphinx"]
        assert ps["sets"]["an4"]["wer"] < 1.0 and ps["rtf"] > 0
        assert ps["lm"]["an4"]["corpora"] == ps["lm"]["an4-8k"]["corpora"] == ["an4"]  # the domain LM
        assert rows["pocketsphinx-generic"]["lm"]["an4"]["corpora"] == []
        best = min(rows[p]["sets"]["an4"]["wer"] for p in ("pocketsphinx", "pocketsphinx-generic"))
        tiny_line = next(line for line in out.splitlines() if line.startswith(str(tiny_folder)))
        if best > 0:
            assert f" {tiny['sets']['an4']['wer'] / best:.2f} " in tiny_line + " "
    else:
        assert "row(s) skipped" in out and "pocketsphinx" in out


def test_benchmark_without_peers_says_so(tiny_folder, an4_root, capsys):
    bench = _bench()
    assert bench.main(["--models", str(tiny_folder), "--sets", "an4", "--limit", "1", "--n-boot", "20",
                       "--data-dir", str(an4_root.parent), "--no-peers"]) == 0
    out = capsys.readouterr().out
    assert "peer rows left out" in out and "pocketsphinx" not in out.split("note:")[0]


def test_benchmark_reuses_rows_of_an_earlier_run(tiny_folder, an4_root, capsys, monkeypatch):
    bench = _bench()
    first = tiny_folder.parent / "first.json"
    base = ["--models", str(tiny_folder), "--sets", "an4", "--limit", "1", "--n-boot", "20",
            "--data-dir", str(an4_root.parent), "--no-peers"]
    assert bench.main(base + ["--json", str(first)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(bench, "bench_model", lambda *a, **k: pytest.fail("a reused row was measured again"))
    assert bench.main(base + ["--reuse", str(first)]) == 0
    assert f"rows of {tiny_folder} taken from {first}" in capsys.readouterr().out
    from zoo.errors import ZooError

    with pytest.raises(ZooError, match="other sets"):  # a different --limit is not the same measurement
        bench.main(base[:4] + ["--limit", "2"] + base[6:] + ["--reuse", str(first)])


def test_benchmark_beam_uses_the_shipped_decoding_settings(tiny_net, an4_root, tmp_path, capsys, monkeypatch):
    """--beam-size N: zoo rows decode with beam N and the model's config.json decoding block; a greedy row of an
    earlier --json is not reused for a beam run."""
    from zoo.models.base import model_config, save_pretrained

    bench = _bench()
    cfg = model_config(tiny_net, decoding={"beam": {"length_bonus": 1.5}})
    folder = save_pretrained(tiny_net, tmp_path / "m", config=cfg)
    base = ["--models", str(folder), "--sets", "an4", "--limit", "2", "--n-boot", "20",
            "--data-dir", str(an4_root.parent), "--no-peers"]
    greedy_json, beam_json = tmp_path / "g.json", tmp_path / "b.json"
    assert bench.main(base + ["--json", str(greedy_json)]) == 0
    assert bench.main(base + ["--beam-size", "3", "--reuse", str(greedy_json), "--json", str(beam_json)]) == 0
    out = capsys.readouterr().out
    g, b = (json.loads(p.read_text())["rows"][0] for p in (greedy_json, beam_json))
    assert (g["beam_size"], g["decoding"]) == (1, {}) and (b["beam_size"], b["decoding"]) == (3, {"length_bonus": 1.5})
    assert "beam 3 with each model's config.json decoding settings" in out and "taken from" not in out
    assert bench.same_decoding(str(folder), b, 3) and not bench.same_decoding(str(folder), {**b, "decoding": {}}, 3)
    from zoo import from_pretrained
    from zoo.evaluation.asr import load_eval_set, transcribe_items

    items = load_eval_set("an4", "test", data_dir=an4_root.parent)[:2]
    hyps = transcribe_items(from_pretrained(folder), items, beam_size=3)
    assert b["sets"]["an4"]["wer"] == bench.score(hyps, items, 20)["wer"]
    with pytest.raises(SystemExit):
        bench.main(base + ["--beam-size", "0"])
