"""The paper's ConvRNN-T encoder (LSTMs fed only by the fused local + global CNN: ``input_skip: false``), warm
started from one of ours that has the input skip (issue 15): every weight is copied except the first LSTM layer's
input columns that read the raw stacked frames, which are dropped. From random weights this variant stays on the
all-blank plateau on our data (the cards), so it starts from a trained CNN front end instead; `zoo fit` then trains
it with the same recipe and budget as the model it came from.

    python scripts/convrnnt_faithful_init.py convrnnt-an4-so762-long exp/v2s3/convrnnt_faithful_init
"""
from __future__ import annotations

import argparse

import torch

from zoo.errors import ZooError
from zoo.hub import from_pretrained
from zoo.models.base import architecture_class, model_config, save_pretrained


def faithful_copy(net):
    """A new net whose encoder is ``net``'s without the input skip; weights copied (see the module docstring)."""
    enc = net.config()["encoder"]
    if enc.get("name") != "convrnnt" or not enc.get("input_skip", True):
        raise ZooError(f"not a ConvRNN-T with the input skip (encoder {enc.get('name')}, "
                       f"input_skip {enc.get('input_skip')})")
    model = {**net.config(), "encoder": {**enc, "input_skip": False}}
    new = architecture_class(net.architecture)(**model, tokenizer=net.tokenizer)
    state = net.state_dict()
    skip = net.encoder.input_dim * net.encoder.subsampling  # the LSTM input is concat(frames, fused)
    state["encoder.lstm.weight_ih_l0"] = state["encoder.lstm.weight_ih_l0"][:, skip:].clone()
    new.load_state_dict(state, strict=True)
    return new


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="a ConvRNN-T model with input_skip: name, folder or Hub id")
    ap.add_argument("out", help="new model folder")
    args = ap.parse_args(argv)
    try:
        net = from_pretrained(args.src)
        new = faithful_copy(net)
    except ZooError as e:
        raise SystemExit(f"error: {args.src}: {e} — give a ConvRNN-T trained with input_skip: true") from None
    with torch.no_grad():
        save_pretrained(new, args.out, config=model_config(new, normalizer=net.normalizer))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
