"""Turn the slim checkpoints brought back from a GPU sweep (state_dict in fp16 + hyper_parameters, see the card of
cca-transformer-an4) into zoo checkpoints: <out>/<run>/checkpoints/<original name> with fp32 weights and zoo_config.

    python scripts/unpack_gpu_ckpts.py exp/cca_sweep_gpu/*.ckpt --out exp/cca_sweep_gpu
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from zoo.models.base import model_config
from zoo.tasks import TransducerTask


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpts", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    for p in map(Path, args.ckpts):
        try:
            ck = torch.load(p, map_location="cpu", weights_only=False)
            ck["state_dict"], ck["hyper_parameters"]
        except Exception as e:  # noqa: BLE001 - one line whatever is wrong with the file
            raise SystemExit(f"error: {p}: not a slim sweep checkpoint (state_dict + hyper_parameters): "
                             f"{type(e).__name__}: {' '.join(str(e).split())[:120]}") from None
        hp = {k: v for k, v in ck["hyper_parameters"].items() if not k.startswith("_")}
        hp.pop("optimizer", None), hp.pop("scheduler", None)
        task = TransducerTask(**hp)
        sd = {k: (v.float() if v.is_floating_point() else v) for k, v in ck["state_dict"].items()}
        task.load_state_dict(sd, strict=True)
        ck["state_dict"] = sd
        ck["zoo_config"] = model_config(task.net, normalizer=hp.get("normalizer", "upper"))
        d = Path(args.out) / p.stem / "checkpoints"
        d.mkdir(parents=True, exist_ok=True)
        torch.save(ck, d / ck.get("source_ckpt", "last.ckpt"))
        print(d / ck.get("source_ckpt", "last.ckpt"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
