"""A gated (CCA) model folder that starts from an all-on Transformer (a checkpoint or a released model): same
weights, ``gated: true``, arbitrators set to 'every gate on' (weight 0, bias +2 -> P(on) = 0.88 at tau 1), for
CCA fine-tuning (`zoo fit ... --model.init_args.init_from <folder>`). ``--window W`` limits attention to W past
frames: with the gates, CCA on a sliding-window encoder; with ``--no-gates``, the sliding-window baseline from
the same weights.

    python scripts/cca_init_from_allon.py exp/cca_sweep_gpu/allon/checkpoints/best-*.ckpt exp/cca_init_allon
    python scripts/cca_init_from_allon.py transformer-rnnt-an4-so762 exp/cca_v2/init_w8 --window 8
"""
from __future__ import annotations

import argparse

import torch

from zoo.errors import ZooError
from zoo.hub import from_pretrained
from zoo.hub.export import net_from_checkpoint
from zoo.models.base import architecture_class, model_config, save_pretrained

GATE_BIAS = 2.0


def load_allon(src: str):
    """(net, config dict) of a ``.ckpt`` or a model name / folder / Hub id."""
    if src.endswith(".ckpt"):
        return net_from_checkpoint(src)
    net = from_pretrained(src)
    return net, {"architecture": net.architecture, "model": net.config(), "normalizer": net.normalizer}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="all-on checkpoint (.ckpt), model name, folder or Hub id")
    ap.add_argument("out")
    ap.add_argument("--window", type=int, default=0, help="attention to this many past frames (0: full context)")
    ap.add_argument("--no-gates", action="store_true", help="no arbitrators (with --window: the window baseline)")
    args = ap.parse_args(argv)
    if args.window < 0:
        raise SystemExit(f"error: --window {args.window} is negative — give 0 (full context) or a frame count")
    try:
        net, cfg = load_allon(args.src)
    except ZooError as e:
        raise SystemExit(f"error: {e}") from None
    enc = cfg["model"]["encoder"]
    if enc.get("name") != "cca_transformer" or enc.get("window", 0) or enc.get("gated", True):
        raise SystemExit(f"error: {args.src}: not a full-context all-on cca_transformer — give the all-on model")
    new_enc = {**enc, "gated": not args.no_gates, "window": args.window}
    if args.window and not args.no_gates:
        new_enc["window_gates"] = True
    model = {**cfg["model"], "encoder": new_enc}
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
