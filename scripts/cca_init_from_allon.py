"""A gated (CCA) model folder that starts from an all-on Transformer checkpoint: same weights, ``gated: true``,
arbitrators set to 'every gate on' (weight 0, bias +2 -> P(on) = 0.88 at tau 1), for CCA fine-tuning
(`zoo fit --config configs/asr/cca_transformer_an4.yaml --model.init_args.init_from <folder>`).

    python scripts/cca_init_from_allon.py exp/cca_sweep_gpu/allon/checkpoints/best-*.ckpt exp/cca_init_allon
"""
from __future__ import annotations

import argparse

import torch

from zoo.errors import ZooError
from zoo.hub.export import net_from_checkpoint
from zoo.models.base import architecture_class, model_config, save_pretrained

GATE_BIAS = 2.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("out")
    args = ap.parse_args(argv)
    try:
        net, cfg = net_from_checkpoint(args.ckpt)
    except ZooError as e:
        raise SystemExit(f"error: {e}") from None
    if cfg["model"]["encoder"].get("name") != "cca_transformer" or cfg["model"]["encoder"].get("window", 0):
        raise SystemExit(f"error: {args.ckpt}: not a full-context cca_transformer checkpoint")
    model = {**cfg["model"], "encoder": {**cfg["model"]["encoder"], "gated": True}}
    gated = architecture_class(cfg["architecture"])(**model, tokenizer=net.tokenizer)
    gated.load_state_dict(net.state_dict(), strict=True)
    with torch.no_grad():
        for layer in gated.encoder.layers:
            layer.arbitrator.weight.zero_()
            layer.arbitrator.bias.fill_(GATE_BIAS)
    save_pretrained(gated, args.out, config=model_config(gated, normalizer=cfg.get("normalizer", "upper")))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
