"""Model cards: front matter (license, library, metrics, model-index) and consistency with config.json."""
from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from zoo.hub.registry import MODELS, bundled_folder, list_models

RELEASED = [n for n in sorted(MODELS) if (bundled_folder(n) / "config.json").is_file()]


def test_tiny_card_front_matter(tiny_folder):
    card = ModelCard.load(tiny_folder / "README.md")
    assert card.data.license == "apache-2.0"
    assert card.data.library_name == "zoo"
    assert "zoo.from_pretrained(\"tiny-model\")" in card.text


@pytest.mark.parametrize("name", RELEASED)
def test_released_card_matches_config(name):
    folder = bundled_folder(name)
    cfg = json.loads((folder / "config.json").read_text())
    card = ModelCard.load(folder / "README.md")
    assert card.data.license and card.data.library_name == "zoo" and card.data.datasets
    res = cfg["results"]
    card_metrics = {r.metric_name: r.metric_value for r in card.data.eval_results}
    if cfg.get("task", "asr") == "speaker":
        eer = 100 * res["eval"]["eer"]
        assert card_metrics["EER"] == pytest.approx(eer, abs=0.01)
        assert f"{eer:.2f}" in card.text                                # the table shows the same number
        assert "zoo score --model " + name in card.text                 # ... with its command
        assert 0 < cfg["verification"]["threshold"] < 1                 # calibrated on dev, stored
        expected = {"eval_an4sv_eval.txt"}
    elif cfg.get("task") == "multitalker-asr":
        cp = 100 * res["all"]["cpwer"]
        assert card_metrics["cpWER"] == pytest.approx(cp, abs=0.01)
        assert card_metrics["ORC-WER"] == pytest.approx(100 * res["all"]["orcwer"], abs=0.01)
        assert f"{cp:.2f}" in card.text                                 # the table shows the same number
        assert "zoo evaluate --model " + name in card.text             # ... with its command
        expected = {"eval_an4mix_test.txt"}
    elif "sets" in res:  # recipe v2 releases: every eval set, greedy + beam, each with its command
        for key, r in res["sets"].items():
            assert card_metrics[f"WER {key} (greedy)"] == pytest.approx(100 * r["greedy"]["wer"], abs=0.01)
            assert f"{100 * r['greedy']['wer']:.2f}" in card.text and f"{100 * r['beam']['wer']:.2f}" in card.text
        assert res["greedy"] == next(iter(res["sets"].values()))["greedy"]     # the headline is the first set
        assert "zoo evaluate --model " + name + " --corpus speechocean762" in card.text
        assert "--narrowband" in card.text and "zoo fit --config configs/asr/v2/base.yaml" in card.text
        expected = {"eval_test_sets.txt"}
    else:
        assert card_metrics["WER (greedy)"] == pytest.approx(100 * res["greedy"]["wer"], abs=0.01)
        assert f"{100 * res['greedy']['wer']:.2f}" in card.text          # the table shows the same number
        assert "zoo evaluate --model " + name in card.text             # ... with its command
        sentencepiece = cfg["tokenizer"]["type"] == "sentencepiece"
        expected = {"eval_an4_test.txt"} | ({"tokenizer.model"} if sentencepiece else set())
    assert (folder / "train_config.yaml").is_file()                 # ... and the config that trained it
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        {"README.md", "config.json", "model.safetensors", "train_config.yaml"} | expected
        | {p.name for p in folder.glob("*.png") if f"]({p.name})" in card.text}  # plots the card shows
        | ({"fisher.safetensors"} if "zoo fisher --model " + name in card.text else set()))  # EWC, documented
    assert (folder / "model.safetensors").stat().st_size < 20e6


def test_list_models_reports_released_numbers():
    for m in list_models():
        if m.name in RELEASED:
            if m.task == "speaker":
                assert m.params and not m.streaming and m.metric.startswith("EER ")
            elif m.task == "multitalker-asr":
                assert m.params and m.streaming and "cpWER" in m.metric
            else:
                assert m.params and m.streaming and m.metric.startswith("WER ")
