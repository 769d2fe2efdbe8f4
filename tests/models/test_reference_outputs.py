"""Every released model still gives the outputs stored in tests/fixtures/reference_outputs.json (made by
scripts/make_reference_outputs.py before a refactor): transcripts exactly, embeddings within 1e-4."""
import json
from pathlib import Path

import pytest

from helpers import load_script

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((ROOT / "tests" / "fixtures" / "reference_outputs.json").read_text())


def _maker():
    mod = load_script("scripts/make_reference_outputs.py")
    return mod


def test_every_released_model_has_a_reference():
    import zoo

    assert sorted(REFERENCE) == sorted(m.name for m in zoo.list_models())


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_released_model_outputs_unchanged(name, an4_root, monkeypatch):
    monkeypatch.setenv("ZOO_DATA", str(an4_root.parent))
    got = _maker().reference_outputs([name])[name]
    want = REFERENCE[name]
    assert got.keys() == want.keys()
    if "embedding_head" in want:
        for g, w in zip(got["embedding_head"], want["embedding_head"]):
            assert g == pytest.approx(w, abs=1e-4)
    else:
        assert got == want
