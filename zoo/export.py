"""Lightning checkpoint (from ``zoo fit``) -> model folder, reloaded and checked before it is kept."""
from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

import torch

from zoo.errors import ModelFolderError, ZooError


def net_from_checkpoint(ckpt_path: str | Path):
    """Rebuild the net of a zoo Lightning checkpoint (loaded with ``weights_only=True``)."""
    from zoo.registry import architecture_class
    from zoo.text import build_tokenizer

    p = Path(ckpt_path)
    if p.is_dir():
        raise ZooError(f"{p} is a folder; give the .ckpt file written by zoo fit (e.g. {p}/last.ckpt)")
    if not p.is_file():
        raise ZooError(f"checkpoint not found: {p}")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        # one line: weights-only unpickling errors are multi-line essays
        why = " ".join(str(e).split())[:160]
        raise ZooError(f"cannot read {p} as a Lightning checkpoint ({type(e).__name__}: {why})") from None
    cfg = ckpt.get("zoo_config") if isinstance(ckpt, dict) else None
    if not isinstance(cfg, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ZooError(f"{p} has no zoo_config: it was not written by a zoo task (zoo fit)")
    cls = architecture_class(cfg["architecture"])
    tmpdir, kwargs = None, {}
    if getattr(cls, "needs_tokenizer", True):
        tok_cfg = dict(cfg["tokenizer"])
        if "zoo_tokenizer_bytes" in ckpt:
            tmpdir = tempfile.mkdtemp(prefix="zoo-tok-")
            tok_cfg["file"] = str(Path(tmpdir) / "tokenizer.model")
            Path(tok_cfg["file"]).write_bytes(ckpt["zoo_tokenizer_bytes"])
        kwargs["tokenizer"] = build_tokenizer(tok_cfg)
    net = cls(**cfg["model"], **kwargs)
    if tmpdir is not None:  # the tokenizer file lives as long as the net (save_pretrained copies it)
        weakref.finalize(net, shutil.rmtree, tmpdir, True)
    state = {k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelFolderError(f"{p}: checkpoint weights do not match its zoo_config "
                               f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    return net.eval(), cfg


def export_checkpoint(ckpt_path: str | Path, out_dir: str | Path, name: str | None = None,
                      results: dict | None = None, card_extra: dict | None = None) -> Path:
    """Write ``out_dir`` (config.json, model.safetensors, tokenizer, README.md) and verify it reloads
    to a model whose outputs equal the checkpoint's on a test signal."""
    from zoo.cards import render_card
    from zoo.hub import load_folder, model_config, save_pretrained

    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir.is_dir() and (not any(out_dir.iterdir())
                                                        or (out_dir / "config.json").is_file())):
        # save_pretrained replaces the folder wholesale: never do that to something that is not a model folder
        raise ZooError(f"{out_dir} exists and is not a model folder (no config.json); "
                       "choose a new or empty output folder")
    net, ck_cfg = net_from_checkpoint(ckpt_path)
    cfg = model_config(net, normalizer=ck_cfg.get("normalizer", "upper"))
    if results:
        cfg["results"] = results
    name = name or out_dir.name
    save_pretrained(net, out_dir, config=cfg, card=render_card(name, cfg, **(card_extra or {})))
    again = load_folder(out_dir)
    x = torch.randn(1, net.sample_rate, generator=torch.Generator().manual_seed(0)) * 0.1  # 1 s test signal
    with torch.no_grad():
        a, _ = net.encode(x, torch.tensor([x.shape[1]]))
        b, _ = again.encode(x, torch.tensor([x.shape[1]]))
    if not torch.allclose(a, b, atol=1e-5):
        raise ModelFolderError(f"exported {out_dir} does not reproduce the checkpoint's outputs")
    return out_dir
