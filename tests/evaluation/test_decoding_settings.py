"""scripts/release_asr.py --greedy-settings / --beam-settings: parsed into config.json's `decoding` block, bad
settings in one line; `zoo evaluate`'s report names the settings."""
from __future__ import annotations

import pytest

from zoo.errors import ZooError

from helpers import load_script


def test_parse_settings():
    rel = load_script("scripts/release_asr.py")
    assert rel.parse_settings("ilm_weight=0.1,length_bonus=0.5") == {"ilm_weight": 0.1, "length_bonus": 0.5}
    assert rel.parse_settings("") == {}
    with pytest.raises(ZooError, match="--beam-settings: unknown setting 'lm_weight'"):
        rel.parse_settings("lm_weight=0.3", "--beam-settings")
    with pytest.raises(ZooError, match="ilm_weight needs a number"):
        rel.parse_settings("ilm_weight=high")


def test_evaluate_report_names_the_beam_settings(tiny_net, an4_wavs, tmp_path):
    from zoo import from_pretrained
    from zoo.evaluation.asr import evaluate_asr, format_report
    from zoo.models.base import model_config, save_pretrained

    net = tiny_net
    folder = save_pretrained(net, tmp_path / "m", config=model_config(net, decoding={"beam": {"ilm_weight": 0.2}}))
    items = [{"audio": str(p), "text": "YES", "speaker": "s"} for p in an4_wavs[:2]]
    r = evaluate_asr(from_pretrained(folder), items, beam_size=2, n_boot=10, stream=False)
    assert r["decoding_settings"] == {"greedy": {}, "beam2": {"ilm_weight": 0.2}}
    assert "decoding settings (config.json, chosen on dev): greedy plain; beam2 ilm_weight 0.2" in \
        format_report("m", "x", r)
    assert "decoding_settings" not in evaluate_asr(net, items, beam_size=2, n_boot=10, stream=False)
