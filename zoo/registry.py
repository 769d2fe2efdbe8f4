"""The one registry: every released model name, and the architectures a config.json may name."""
from __future__ import annotations

import difflib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import ModelNotFoundError

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"

# architecture name in config.json -> "module:Class". Only these are ever instantiated.
ARCHITECTURES: dict[str, str] = {"transducer": "zoo.asr:TransducerASR", "ecapa": "zoo.speaker:SpeakerEmbedder",
                                 "sts": "zoo.nets.sts:STSASR"}

# Released (bundled) models: name -> task and a one-line description; ``superseded_by`` (+ ``superseded_why``)
# names the release that replaces a model (it still loads, with a one-line notice).
MODELS: dict[str, dict] = {
    "lstm-rnnt-an4": {"task": "asr", "description": "LSTM RNN-T (char), streaming, trained on CMU AN4",
                      "superseded_by": "lstm-rnnt-an4-so762",
                      "superseded_why": "recipe v2: far better at 8 kHz and on speechocean762; "
                                        "AN4 16 kHz within the CI, alphanumeric worse"},
    "convrnnt-an4": {"task": "asr", "description": "ConvRNN-T (char): causal local + global CNN -> LSTMs, streaming, CMU AN4",
                     "superseded_by": "convrnnt-an4-so762",
                     "superseded_why": "recipe v2: far better at 8 kHz and on speechocean762; "
                                        "AN4 16 kHz within the CI, alphanumeric worse"},
    "ecapa-an4": {"task": "speaker", "description": "ECAPA-TDNN speaker embeddings (verification baseline), CMU AN4"},
    "arw-ecapa-an4": {"task": "speaker", "description": "ECAPA-TDNN trained with adversarial reweighting (ARW-PW), CMU AN4"},
    "emformer-rnnt-an4": {"task": "asr", "description": "Emformer RNN-T (char), streaming, trained on CMU AN4",
                          "superseded_by": "emformer-rnnt-an4-so762",
                          "superseded_why": "recipe v2: far better at 8 kHz and on speechocean762; "
                                            "AN4 16 kHz within the CI, alphanumeric worse"},
    "transformer-rnnt-an4": {"task": "asr", "description": "causal Transformer RNN-T (char), all MHA/FFN on: the CCA baseline, CMU AN4"},
    "sts-an4": {"task": "multitalker-asr", "description": "Separator-Transducer-Segmenter: 2-speaker streaming ASR with <sot>/<eot> turn tokens, AN4 mixtures"},
    "sts-noturn-an4": {"task": "multitalker-asr", "description": "STS baseline without turn tokens (multi-turn RNN-T style), AN4 mixtures"},
    "lstm-rnnt-an4-so762": {"task": "asr", "description": "LSTM RNN-T (char), streaming, recipe v2: AN4 + speechocean762, narrow-band augmented"},
    "convrnnt-an4-so762": {"task": "asr", "description": "ConvRNN-T (char), streaming, recipe v2: AN4 + speechocean762, narrow-band augmented"},
    "emformer-rnnt-an4-so762": {"task": "asr", "description": "Emformer RNN-T (char), streaming, recipe v2: AN4 + speechocean762, narrow-band augmented"},
    "transformer-rnnt-an4-so762": {"task": "asr", "description": "causal Transformer RNN-T (char), all MHA/FFN on, recipe v2: AN4 + speechocean762, narrow-band augmented"},
    "cca-transformer-an4": {"task": "asr", "description": "compute-cost-amortized Transformer RNN-T: per-frame MHA/FFN skipping (-32% FLOPs), CMU AN4"},
}


@dataclass
class ModelInfo:
    name: str
    task: str
    description: str
    folder: Path
    params: int | None
    streaming: bool
    metric: str | None  # headline metric, e.g. "WER 12.3% (an4 test, greedy)"


def architecture_class(name: str):
    if name not in ARCHITECTURES:
        raise ModelNotFoundError(f"unknown architecture {name!r} in config.json; known: {sorted(ARCHITECTURES)}")
    mod, cls = ARCHITECTURES[name].split(":")
    return getattr(importlib.import_module(mod), cls)


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
