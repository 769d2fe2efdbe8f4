"""Lightning checkpoint (from ``zoo fit``) -> model folder, reloaded and checked before it is kept."""
from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

import torch

from zoo.errors import ModelFolderError, ZooError


def load_checkpoint(p: Path) -> dict:
    """A zoo Lightning checkpoint (weights only); a folder, a missing or an unreadable file is one ZooError."""
    if p.is_dir():
        raise ZooError(f"{p} is a folder; give the .ckpt file written by zoo fit (e.g. {p}/last.ckpt), "
                       "or --average N to average its N best checkpoints")
    if not p.is_file():
        raise ZooError(f"checkpoint not found: {p}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        # one line: weights-only unpickling errors are multi-line essays
        why = " ".join(str(e).split())[:160]
        raise ZooError(f"cannot read {p} as a Lightning checkpoint ({type(e).__name__}: {why})") from None


def best_checkpoints(folder: str | Path, n: int) -> list[Path]:
    """The ``n`` best checkpoints of a ``zoo fit`` checkpoint folder, best first, by the score its
    ``ModelCheckpoint`` recorded (read from ``last.ckpt``, looked up by file name in ``folder``)."""
    folder = Path(folder)
    if n < 1:
        raise ZooError(f"--average needs a positive number of checkpoints, got {n}")
    last = load_checkpoint(folder / "last.ckpt") if (folder / "last.ckpt").is_file() else None
    if last is None:
        raise ZooError(f"{folder} has no last.ckpt: give the checkpoints folder of a zoo fit run")
    for key, state in (last.get("callbacks") or {}).items():
        if key.startswith("ModelCheckpoint") and state.get("best_k_models"):
            mode_max = "'mode': 'max'" in key
            scored = [(float(v), folder / Path(k).name) for k, v in state["best_k_models"].items()]
            scored = [(v, p) for v, p in scored if p.is_file()]
            scored.sort(key=lambda t: -t[0] if mode_max else t[0])
            if len(scored) < n:
                raise ZooError(f"{folder} holds {len(scored)} scored checkpoints, fewer than --average {n}")
            return [p for _, p in scored[:n]]
    raise ZooError(f"{folder}/last.ckpt records no scored checkpoints (ModelCheckpoint with monitor and save_top_k)")


def average_state_dicts(states: list[dict]) -> dict:
    """Elementwise mean of floating-point tensors (as icefall / ESPnet average checkpoints); other entries
    (integer buffers) are taken from the first."""
    keys = set(states[0])
    for s in states[1:]:
        if set(s) != keys:
            raise ZooError("checkpoints to average have different parameters (not from the same run/config)")
    out = {}
    for k, v in states[0].items():
        if torch.is_tensor(v) and v.is_floating_point():
            out[k] = sum(s[k].double() for s in states).div(len(states)).to(v.dtype)
        else:
            out[k] = v
    return out


def net_from_checkpoint(ckpt_path: str | Path | list, average: list | None = None):
    """Rebuild the net of a zoo Lightning checkpoint (loaded with ``weights_only=True``); with ``average``
    (more checkpoint paths of the same run), the weights are the mean over ``ckpt_path`` and those."""
    from zoo.models.base import architecture_class
    from zoo.text import build_tokenizer

    p = Path(ckpt_path)
    ckpt = load_checkpoint(p)
    if average:
        others = [load_checkpoint(Path(a)) for a in average]
        ckpt["state_dict"] = average_state_dicts([ckpt["state_dict"]] + [o.get("state_dict", {}) for o in others])
    cfg = ckpt.get("zoo_config") if isinstance(ckpt, dict) else None
    if not isinstance(cfg, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ZooError(f"{p} has no zoo_config: it was not written by a zoo task (zoo fit)")
    cls = architecture_class(cfg["architecture"])
    tmpdir, kwargs = None, {}
    if cls.needs_tokenizer:
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


def export_checkpoint(ckpt_path: str | Path | list, out_dir: str | Path, name: str | None = None,
                      results: dict | None = None, card_extra: dict | None = None, force: bool = False) -> Path:
    """Write ``out_dir`` (config.json, model.safetensors, tokenizer, README.md) and verify it reloads
    to a model whose outputs equal the checkpoint's on a test signal. A list of checkpoints is averaged
    (``config.json`` records their file names under ``averaged_from``).

    The folder is built and verified beside ``out_dir`` and only then renamed into place, so a failed export
    leaves nothing behind. An existing non-empty ``out_dir`` is refused unless ``force`` is true, and even then
    only an earlier model folder (one with config.json) is replaced — wholesale: files in it that the export
    does not write are not kept."""
    from zoo.hub.cards import render_card
    from zoo.io import atomic_folder
    from zoo.models.base import load_folder, model_config, save_pretrained

    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir.is_dir() and not any(out_dir.iterdir())):
        if not (out_dir.is_dir() and (out_dir / "config.json").is_file()):
            raise ZooError(f"{out_dir} exists and is not a model folder (no config.json) — choose a new or "
                           "empty output folder")
        if not force:
            extra = sorted(p.name for p in out_dir.iterdir() if p.name not in _EXPORTED)
            keep = f"; its other files ({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}) would be " \
                   "deleted" if extra else ""
            raise ZooError(f"{out_dir} already holds a model{keep} — pass --force to replace it, or choose a "
                           "new output folder")
    paths = [Path(c) for c in ckpt_path] if isinstance(ckpt_path, (list, tuple)) else [Path(ckpt_path)]
    net, ck_cfg = net_from_checkpoint(paths[0], average=paths[1:])
    cfg = model_config(net, normalizer=ck_cfg.get("normalizer", "upper"))
    if len(paths) > 1:
        cfg["averaged_from"] = [p.name for p in paths]
    if results:
        cfg["results"] = results
    name = name or out_dir.name
    with atomic_folder(out_dir, marker="config.json") as tmp:
        save_pretrained(net, tmp, config=cfg, card=render_card(name, cfg, **(card_extra or {})))
        try:
            again = load_folder(tmp)
        except ZooError as e:  # name the folder the user asked for, not the temp one
            raise type(e)(str(e).replace(str(tmp), str(out_dir))) from None
        x = torch.randn(1, net.sample_rate, generator=torch.Generator().manual_seed(0)) * 0.1  # 1 s test signal
        with torch.no_grad():
            a, _ = net.encode(x, torch.tensor([x.shape[1]]))
            b, _ = again.encode(x, torch.tensor([x.shape[1]]))
        if not torch.allclose(a, b, atol=1e-5):
            raise ModelFolderError(f"exported {out_dir} does not reproduce the checkpoint's outputs")
    return out_dir


# what an export writes (anything else in an existing model folder is named before it would be deleted)
_EXPORTED = {"config.json", "model.safetensors", "tokenizer.model", "README.md"}
