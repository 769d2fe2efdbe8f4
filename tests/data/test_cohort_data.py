"""``SpeechDataModule(cohorts=...)``: every batch carries its utterances' cohort ids (-1 for speakers outside the
map), the map must cover every training speaker, and the map file is validated."""
from __future__ import annotations

import json

import pytest
import torch

from zoo.data import SpeechDataModule
from zoo.data.an4 import an4_cuts
from zoo.data.datamodule import AudioBatchDataset, load_cohort_map
from zoo.errors import ZooError


@pytest.fixture(scope="module")
def train_speakers(an4_root):
    return sorted({c.supervisions[0].speaker for c in an4_cuts(an4_root.parent)["train"]})


def cohort_of(spk: str) -> int:
    return sum(map(ord, spk)) % 3


def test_batches_carry_the_cohort_ids(an4_root, train_speakers, tmp_path):
    f = tmp_path / "cohorts.json"
    f.write_text(json.dumps({"k": 3, "speakers": {s: cohort_of(s) for s in train_speakers}}))
    dm = SpeechDataModule(corpus="an4", data_dir=str(an4_root.parent), max_duration=12.0, num_buckets=2,
                          cohorts=str(f))
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b["cohort"].dtype == torch.long and len(set(b["speaker"])) > 1
    assert b["cohort"].tolist() == [cohort_of(s) for s in b["speaker"]]
    assert len(set(b["cohort"].tolist())) > 1  # not one constant id
    v = next(iter(dm.val_dataloader()))
    assert v["cohort"].tolist() == [cohort_of(s) if s in train_speakers else -1 for s in v["speaker"]]
    assert "cohort" not in AudioBatchDataset()[dm.cuts["test"].subset(first=2)]  # no map: no cohort ids


def test_a_training_speaker_without_cohort_is_one_clear_error(an4_root, train_speakers):
    cohorts = {s: 0 for s in train_speakers if s != train_speakers[1]}
    dm = SpeechDataModule(corpus="an4", data_dir=str(an4_root.parent), cohorts=cohorts)
    with pytest.raises(ZooError) as e:
        dm.setup("fit")
    msg = str(e.value)
    assert "\n" not in msg and "1 training speaker(s) have no cohort" in msg and train_speakers[1] in msg
    assert "— rebuild it over this training data with scripts/cohort_input.py" in msg


def test_cohort_map_file_is_validated(tmp_path):
    assert load_cohort_map({"a": 1, 7: 0}) == {"a": 1, "7": 0}
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"a": 2}))
    assert load_cohort_map(str(f)) == {"a": 2}
    for bad, why in [({"a": -1}, "whole numbers >= 0"), ({"a": "x"}, "whole numbers >= 0"),
                     ({"speakers": {}}, "no speaker -> cohort map")]:
        with pytest.raises(ZooError, match=why):
            load_cohort_map(bad)
    with pytest.raises(ZooError, match="cohort file not found: .*scripts/cohort_input.py"):
        load_cohort_map(str(tmp_path / "nope.json"))
    f.write_text("{")
    with pytest.raises(ZooError, match="not valid JSON"):
        load_cohort_map(str(f))
