"""scripts/convrnnt_faithful_init.py (issue 15): the paper's ConvRNN-T (no input skip) warm-started from one of
ours with the skip. The LSTMs then read only the fused CNN features: every other weight is copied."""
from __future__ import annotations

import pytest
import torch

from helpers import load_script

ENC = {"name": "convrnnt", "stack": 4, "local_channels": [4, 8], "local_dim": 16, "global_channels": 16,
       "global_blocks": 2, "fused_dim": 24, "hidden": 20, "layers": 2, "dropout": 0.0}


def _net(**enc):
    from zoo.models.transducer import TransducerASR
    from zoo.text import CharTokenizer

    torch.manual_seed(0)
    net = TransducerASR({**ENC, **enc}, {"embed_dim": 8, "hidden": 16}, {"joint_dim": 16}, {"n_mels": 40},
                        tokenizer=CharTokenizer()).eval()
    with torch.no_grad():  # the skip model's fusion starts at zero: give it weights, as after training
        net.encoder.fuse.weight.normal_(0, 0.3)
    return net


def test_faithful_copy_drops_only_the_skip_columns(tmp_path):
    from zoo import from_pretrained
    from zoo.models.base import model_config, save_pretrained

    src = _net()
    folder = save_pretrained(src, tmp_path / "skip", config=model_config(src))
    script = load_script("scripts/convrnnt_faithful_init.py")
    assert script.main([str(folder), str(tmp_path / "faithful")]) == 0
    new = from_pretrained(tmp_path / "faithful")
    assert new.encoder.input_skip is False and new.config()["encoder"]["input_skip"] is False
    skip = 40 * 4
    old_sd, new_sd = src.state_dict(), new.state_dict()
    assert new_sd["encoder.lstm.weight_ih_l0"].shape == (4 * 20, 24)
    assert torch.equal(new_sd["encoder.lstm.weight_ih_l0"], old_sd["encoder.lstm.weight_ih_l0"][:, skip:])
    for k, v in new_sd.items():
        if k != "encoder.lstm.weight_ih_l0":
            assert torch.equal(v, old_sd[k]), k
    # with the raw-frame columns of the source zeroed, both nets compute the same thing
    with torch.no_grad():
        src.encoder.lstm.weight_ih_l0[:, :skip] = 0
    x = torch.randn(1, 8000, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        a, _ = src.encode(x, torch.tensor([8000]))
        b, _ = new.encode(x, torch.tensor([8000]))
    assert (a - b).abs().max() <= 1e-5
    # a model without the skip (or not a ConvRNN-T) is refused in one line, nothing written
    for bad in (tmp_path / "faithful", "lstm-rnnt-an4"):
        with pytest.raises(SystemExit, match="^error: .*not a ConvRNN-T with the input skip"):
            script.main([str(bad), str(tmp_path / "again")])
    assert not (tmp_path / "again").exists()
