"""The released (bundled) models: read from ``checkpoints/*/config.json``. Architectures register themselves in
``zoo.models.base.ARCHITECTURES``."""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import ModelNotFoundError

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"

def _released(checkpoints: Path) -> dict[str, dict]:
    """name -> {task, description[, superseded_by, superseded_why]} from each bundled folder's config.json
    (its ``task`` and ``release`` block: the folders are the one list of released models)."""
    out = {}
    for cfg_file in sorted(checkpoints.glob("*/config.json")):
        try:
            cfg = json.loads(cfg_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a broken bundled folder surfaces when it is loaded, with a one-line error
        if isinstance(cfg, dict) and isinstance(cfg.get("release"), dict):
            out[cfg_file.parent.name] = {"task": cfg.get("task", "?"), **cfg["release"]}
    return out


# Released (bundled) models; ``superseded_by`` (+ ``superseded_why``) names the release that replaces a model
# (it still loads, with a one-line notice).
MODELS: dict[str, dict] = _released(CHECKPOINTS)


@dataclass
class ModelInfo:
    name: str
    task: str
    description: str
    folder: Path
    params: int | None
    streaming: bool
    metric: str | None  # headline metric, e.g. "WER 12.3% (an4 test, greedy)"


def bundled_folder(name: str) -> Path:
    return CHECKPOINTS / name


def suggest(name: str) -> str:
    close = difflib.get_close_matches(name, list(MODELS), n=3, cutoff=0.4)
    return f"; did you mean {', '.join(close)}?" if close else f"; released models: {', '.join(sorted(MODELS))}"


def model_info(name: str) -> ModelInfo:
    if name not in MODELS:
        raise ModelNotFoundError(f"unknown model {name!r}{suggest(name)}")
    folder = bundled_folder(name)
    cfg = {}
    if (folder / "config.json").is_file():
        cfg = json.loads((folder / "config.json").read_text())
    res = cfg.get("results", {})
    metric = res.get("headline")
    desc = MODELS[name]["description"]
    if MODELS[name].get("superseded_by"):
        desc += f" (superseded by {MODELS[name]['superseded_by']})"
    return ModelInfo(name=name, task=MODELS[name]["task"], description=desc, folder=folder,
                     params=cfg.get("num_parameters"), streaming=bool(cfg.get("streaming", {}).get("supported")),
                     metric=metric)


def list_models() -> list[ModelInfo]:
    """Every released model, in name order."""
    return [model_info(n) for n in sorted(MODELS)]
