"""Model folders (config.json + model.safetensors + tokenizer, if the net has one, + README.md), bundled names, local
folders and the Hugging Face Hub. Weights load only from safetensors, strictly by default."""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from zoo.errors import ModelFolderError, ModelNotFoundError, ZooError
from zoo.registry import MODELS, architecture_class, bundled_folder, suggest

FORMAT_VERSION = 1
REQUIRED = ("config.json", "model.safetensors")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def model_config(net, normalizer: str = "upper", **extra) -> dict:
    """The config.json dict of a net (architecture, arch config, featurizer, tokenizer, task)."""
    from zoo import __version__

    cfg = {"format_version": FORMAT_VERSION, "zoo_version": __version__, "architecture": net.architecture,
           "task": getattr(net, "task", "asr"), "model": net.config()}
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
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / "config.json").is_file())):
        raise ModelFolderError(f"{folder} exists and is not a model folder; choose a new or empty folder")
    cfg = config or model_config(net)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, tmp / "model.safetensors",
                  metadata={"format": "pt", "zoo_format_version": str(FORMAT_VERSION)})
        tok_file = getattr(getattr(net, "tokenizer", None), "model_file", None)
        if tok_file is not None:
            shutil.copyfile(tok_file, tmp / "tokenizer.model")
        if card is not None:
            (tmp / "README.md").write_text(card)
        elif (folder / "README.md").is_file():
            shutil.copyfile(folder / "README.md", tmp / "README.md")
        tmp.chmod(0o755)  # mkdtemp makes 0700
        for f in tmp.iterdir():
            f.chmod(0o644)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


def load_folder(folder: str | Path, strict: bool = True, map_location: str = "cpu"):
    """Build the net named by ``folder/config.json`` and load ``model.safetensors`` into it."""
    from zoo.text import build_tokenizer

    folder = Path(folder)
    for f in REQUIRED:
        if not (folder / f).is_file():
            raise ModelFolderError(f"model folder {folder} is missing {f}; a model folder needs "
                                   f"{', '.join(REQUIRED)} (+ tokenizer file)")
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ModelFolderError(f"{folder / 'config.json'} is not valid JSON ({e.msg})") from None
    if int(cfg.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFolderError(f"{folder} uses model format {cfg.get('format_version')}; this zoo reads up to "
                               f"{FORMAT_VERSION}: upgrade zoo")
    cls = architecture_class(cfg.get("architecture", "?"))
    kwargs = {}
    if getattr(cls, "needs_tokenizer", True):
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


_NOTICED: set[str] = set()


def _notice_superseded(name: str) -> None:
    """One stderr line per process when a bundled model has a newer release that replaces it."""
    new = MODELS[name].get("superseded_by")
    if new and name not in _NOTICED:
        _NOTICED.add(name)
        print(f"notice: {name} is superseded by {new} ({MODELS[name].get('superseded_why', 'newer recipe')}); "
              f"it still loads, unchanged", file=sys.stderr)


def resolve(name_or_path: str | os.PathLike, revision: str | None = None, cache_dir: str | None = None,
            local_files_only: bool | None = None, token: str | bool | None = None) -> Path:
    """A bundled name, a local folder or a Hub repo id -> local model folder.

    Resolution order: bundled name; an existing path; ``org/name`` on the Hub. A path-like string that
    does not exist is an error, never a Hub lookup.
    """
    s = str(name_or_path)
    if s in MODELS:
        _notice_superseded(s)
        folder = bundled_folder(s)
        if not (folder / "config.json").is_file():
            raise ModelFolderError(f"bundled model {s} has no files in {folder}; reinstall zoo from a full clone")
        return folder
    p = Path(s).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ModelNotFoundError(f"{p} is a file; give the model folder that holds config.json")
        return p
    if s.startswith((".", "/", "~")) or (os.sep in s and not _REPO_ID.match(s)):
        raise ModelNotFoundError(f"model folder not found: {s}")
    if not _REPO_ID.match(s):
        raise ModelNotFoundError(f"unknown model {s!r}{suggest(s)}")
    return _download(s, revision, cache_dir, local_files_only, token)


def _download(repo_id, revision, cache_dir, local_files_only, token) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub import constants as hf_const
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    offline = bool(local_files_only) or hf_const.HF_HUB_OFFLINE
    try:
        path = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=offline,
                                 token=token, allow_patterns=["*.json", "*.safetensors", "*.model", "*.md"])
    except GatedRepoError:
        raise ModelNotFoundError(f"Hub repo {repo_id} is gated: accept its conditions on the Hub and pass a token "
                                 "(HF_TOKEN or token=)") from None
    except RepositoryNotFoundError:
        raise ModelNotFoundError(f"Hub repo {repo_id} not found (or private: pass a token); "
                                 f"bundled models: {', '.join(sorted(MODELS))}") from None
    except RevisionNotFoundError:
        raise ModelNotFoundError(f"revision {revision!r} not found in Hub repo {repo_id}") from None
    except LocalEntryNotFoundError:
        why = "offline mode (HF_HUB_OFFLINE=1 / local_files_only)" if offline else "the Hub could not be reached"
        raise ModelNotFoundError(f"{repo_id} is not in the local cache and {why}; connect once to download it, "
                                 "or pass a local folder") from None
    except OSError as e:  # connection problems surface as OSError subclasses
        raise ModelNotFoundError(f"cannot download {repo_id} from {hf_const.ENDPOINT}: {e}") from None
    return Path(path)


def from_pretrained(name_or_path: str | os.PathLike, revision: str | None = None, cache_dir: str | None = None,
                    local_files_only: bool | None = None, token: str | bool | None = None, strict: bool = True,
                    map_location: str = "cpu"):
    """Load a released model by name (offline), a local model folder, or a Hub repo id (``org/name``)."""
    folder = resolve(name_or_path, revision, cache_dir, local_files_only, token)
    return load_folder(folder, strict=strict, map_location=map_location)


def push_to_hub(folder: str | Path, repo_id: str, revision: str | None = None, private: bool = False,
                token: str | bool | None = None, commit_message: str | None = None, endpoint: str | None = None) -> str:
    """Upload a model folder (card included) to ``repo_id`` as one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    load_folder(folder)  # refuse to push something that does not load
    if not (folder / "README.md").is_file():
        raise ModelFolderError(f"{folder} has no README.md model card; run `zoo export` to render one")
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, revision=revision,
                                 commit_message=commit_message or f"Upload {folder.name} with zoo")
    except OSError as e:
        raise ZooError(f"push to {repo_id} failed: {e}") from None
    return getattr(info, "commit_url", str(info))
