"""``ZooModel``: the base of everything ``zoo.from_pretrained`` returns, and the model-folder format
(``config.json`` + ``model.safetensors`` + tokenizer file if any + ``README.md``). Weights load only from
safetensors, strictly by default. Architectures register themselves with ``@register_architecture``; only
registered classes are ever instantiated from a config.json."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from zoo._version import __version__
from zoo.audio import load_inputs
from zoo.errors import ModelFolderError, ModelNotFoundError, ZooError
from zoo.io import atomic_folder
from zoo.text import build_tokenizer

if TYPE_CHECKING:
    from zoo.nets.featurizer import FbankFeaturizer

FORMAT_VERSION = 1
REQUIRED = ("config.json", "model.safetensors")

ARCHITECTURES: dict[str, type["ZooModel"]] = {}


def register_architecture(name: str, task: str):
    """Class decorator: ``config.json`` files naming ``architecture: name`` build this class (task ``task``)."""
    def deco(cls):
        if name in ARCHITECTURES and ARCHITECTURES[name] is not cls:
            raise ValueError(f"architecture {name!r} is taken by {ARCHITECTURES[name].__qualname__}")
        cls.architecture, cls.task = name, task
        ARCHITECTURES[name] = cls
        return cls
    return deco


def architecture_class(name: str) -> type["ZooModel"]:
    import zoo.models  # noqa: F401  (imports every architecture, filling the table)

    if name not in ARCHITECTURES:
        raise ModelNotFoundError(f"unknown architecture {name!r} in config.json; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]


class ZooModel(nn.Module):
    """An inference model over raw audio: what ``zoo.from_pretrained`` returns.

    Subclasses are registered with ``@register_architecture(name, task)`` and implement ``config()`` (the
    kwargs that rebuild them) and ``format_result(result)`` (the printable lines of one input's result).
    ``zoo_config`` is the loaded folder's config.json ({} for a fresh net); ``source`` where it came from.
    """

    architecture: ClassVar[str] = ""
    task: ClassVar[str] = ""
    needs_tokenizer: ClassVar[bool] = True
    # Hub metadata of this model's cards (task_type, pipeline_tag, metrics, tags); template model_cards/<task>.md
    card_metadata: ClassVar[dict] = {}
    # the raw-audio front end every model has (a submodule the subclass's __init__ sets)
    featurizer: FbankFeaturizer

    def __init__(self) -> None:
        super().__init__()
        self.zoo_config: dict = {}
        self.source: str | None = None

    def config(self) -> dict:
        raise NotImplementedError

    @property
    def sample_rate(self) -> int:
        return self.featurizer.sample_rate

    @property
    def normalizer(self) -> str:
        """Text normaliser applied to hypotheses and references when scoring (``zoo.text.NORMALIZERS``)."""
        return self.zoo_config.get("normalizer", "upper")

    def format_result(self, result) -> list[str]:
        """One input's result -> the lines ``zoo transcribe`` prints after the file name."""
        return [str(result)]

    def load_inputs(self, inputs: Sequence, sample_rate: int | None) -> list[torch.Tensor]:
        """Paths and/or waveforms -> (S,) float32 tensors at the model's rate (subclasses may check more)."""
        return load_inputs(inputs, sample_rate, self.sample_rate)

    def map_batches(self, inputs, sample_rate: int | None, batch_size: int, fn: Callable, *,
                    sort_by_length: bool = False, progress: bool = False, description: str = "") -> list:
        """The one input batcher of every model: ``inputs`` (a path, a (S,) waveform, or a list of paths /
        waveforms with ``sample_rate``) loaded at the model's rate, padded into (B, S) batches with (B,) sample
        counts, ``fn(batch, lens)`` -> B outputs, returned in input order; eval mode while it runs.
        ``sort_by_length`` loads everything first and batches similar lengths together (less padding)."""
        if isinstance(inputs, (str, os.PathLike)) or (hasattr(inputs, "ndim") and inputs.ndim == 1):
            inputs = [inputs]  # one path or one (S,) tensor / numpy array
        inputs = list(inputs)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ZooError(f"batch_size must be a whole number >= 1 (got {batch_size!r})")
        if sort_by_length:
            loaded = self.load_inputs(inputs, sample_rate)
            order = sorted(range(len(loaded)), key=lambda i: loaded[i].numel())
            get = lambda idx: [loaded[i] for i in idx]  # noqa: E731
        else:
            order = list(range(len(inputs)))
            get = lambda idx: self.load_inputs([inputs[i] for i in idx], sample_rate)  # noqa: E731
        batches: Iterable[list[int]] = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        if progress:
            from rich.progress import track
            batches = track(batches, description=description, transient=True)
        out: list = [None] * len(inputs)
        dev = self.featurizer.mean.device
        was_training = self.training
        self.eval()
        try:
            for idx in batches:
                wavs = get(idx)
                lens = torch.tensor([w.numel() for w in wavs], device=dev)
                batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True).to(dev)
                for i, o in zip(idx, fn(batch, lens)):
                    out[i] = o
        finally:
            self.train(was_training)
        return out

    def save_pretrained(self, folder: str | Path, card: str | None = None, **config_extra) -> Path:
        """Write this model as a model folder (atomically)."""
        return save_pretrained(self, folder, model_config(self, **config_extra), card)

    @classmethod
    def from_folder(cls, folder: str | Path, strict: bool = True, map_location: str = "cpu") -> "ZooModel":
        """Load a model folder, checking it holds a ``cls``."""
        net = load_folder(folder, strict, map_location)
        if not isinstance(net, cls):
            raise ModelFolderError(f"{folder} holds a {net.architecture} model, not a {cls.__name__}")
        return net


def model_config(net, normalizer: str = "upper", **extra) -> dict:
    """The config.json dict of a net (architecture, arch config, featurizer, tokenizer, task)."""
    cfg = {"format_version": FORMAT_VERSION, "zoo_version": __version__, "architecture": net.architecture,
           "task": net.task, "model": net.config()}
    if getattr(net, "tokenizer", None) is not None:  # speaker nets have no tokenizer and no text normaliser
        cfg.update(tokenizer=net.tokenizer.config(), normalizer=normalizer)
    if hasattr(net, "streaming_info"):
        cfg["streaming"] = net.streaming_info()
    cfg["num_parameters"] = sum(p.numel() for p in net.parameters())
    cfg.update(extra)
    return cfg


def save_pretrained(net, folder: str | Path, config: dict | None = None, card: str | None = None) -> Path:
    """Write a model folder atomically (a temp folder renamed into place)."""
    folder = Path(folder)
    cfg = config or model_config(net)
    try:
        with atomic_folder(folder, marker="config.json") as tmp:  # replaces only an earlier model folder
            (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
            save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()},
                      tmp / "model.safetensors", metadata={"format": "pt", "zoo_format_version": str(FORMAT_VERSION)})
            tok_file = getattr(getattr(net, "tokenizer", None), "model_file", None)
            if tok_file is not None:
                shutil.copyfile(tok_file, tmp / "tokenizer.model")
            if card is not None:
                (tmp / "README.md").write_text(card)
            elif (folder / "README.md").is_file():
                shutil.copyfile(folder / "README.md", tmp / "README.md")
            for f in tmp.iterdir():
                f.chmod(0o644)
    except FileExistsError:
        raise ModelFolderError(f"{folder} exists and is not a model folder; choose a new or empty folder") from None
    return folder


def load_folder(folder: str | Path, strict: bool = True, map_location: str = "cpu"):
    """Build the net named by ``folder/config.json`` and load ``model.safetensors`` into it."""
    folder = Path(folder)
    for f in REQUIRED:
        if not (folder / f).is_file():
            raise ModelFolderError(f"model folder {folder} is missing {f}; a model folder needs "
                                   f"{', '.join(REQUIRED)} (+ tokenizer file)")
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ModelFolderError(f"{folder / 'config.json'} is not valid JSON ({e.msg})") from None
    if not isinstance(cfg, dict):
        raise ModelFolderError(f"{folder / 'config.json'} holds a JSON {type(cfg).__name__}, not an object — "
                               "a model folder's config.json is written by zoo export / save_pretrained")
    if int(cfg.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFolderError(f"{folder} uses model format {cfg.get('format_version')}; this zoo reads up to "
                               f"{FORMAT_VERSION}: upgrade zoo")
    cls = architecture_class(cfg.get("architecture", "?"))
    kwargs = {}
    if cls.needs_tokenizer:
        try:
            kwargs["tokenizer"] = build_tokenizer(cfg.get("tokenizer", {}), folder)
        except OSError as e:
            raise ModelFolderError(f"model folder {folder}: cannot load tokenizer ({e})") from None
    try:
        net = cls(**cfg["model"], **kwargs)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFolderError(f"{folder / 'config.json'} does not describe a valid {cfg.get('architecture')} "
                               f"model ({type(e).__name__}: {e})") from None
    try:
        state = load_file(folder / "model.safetensors", device=map_location)
    except Exception as e:  # safetensors raises its own error types
        raise ModelFolderError(f"{folder / 'model.safetensors'} is not a valid safetensors file ({e})") from None
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if strict and (missing or unexpected or shapes):
        parts = []
        if missing:
            parts.append(f"missing keys {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_short(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch for {_short(shapes)}")
        raise ModelFolderError(f"weights in {folder} do not match its config.json: {'; '.join(parts)}")
    net.load_state_dict({k: v for k, v in state.items() if k in own and k not in shapes}, strict=False)
    net.zoo_config = cfg
    net.source = str(folder)
    return net.eval()


def _short(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")
