"""Where models come from: bundled names, local model folders and the Hugging Face Hub (``from_pretrained``,
``push_to_hub``). The folder format itself is in ``zoo.models.base``."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from zoo.errors import ModelFolderError, ModelNotFoundError, ZooError
from zoo.hub.registry import MODELS, bundled_folder, suggest
from zoo.models.base import load_folder, model_config, save_pretrained  # noqa: F401  (re-exported)

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


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
    from huggingface_hub import constants as hf_const
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

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
    except network_errors() as e:
        raise ZooError(f"push to {repo_id} failed: {_why(e, api.endpoint)}") from None
    return getattr(info, "commit_url", str(info))


def network_errors() -> tuple[type[BaseException], ...]:
    """What the Hub client raises when the network or the server fails: OSError, and the HTTP library's
    errors (huggingface_hub 2.x raises httpx errors, e.g. ``ConnectError``, which are not OSErrors)."""
    kinds: list[type[BaseException]] = [OSError]
    try:
        from huggingface_hub.errors import HTTPError
        kinds.append(HTTPError)
    except ImportError:
        pass
    for mod in ("httpx", "httpx2", "requests"):
        try:
            kinds.append(__import__(mod).HTTPError if mod != "requests" else __import__(mod).RequestException)
        except (ImportError, AttributeError):
            pass
    return tuple(kinds)


def _why(e: BaseException, endpoint: str | None) -> str:
    """One line for a Hub failure: what happened and what to do."""
    from huggingface_hub.errors import HfHubHTTPError

    text = " ".join(str(e).split())[:200] or type(e).__name__
    if isinstance(e, HfHubHTTPError):
        code = getattr(getattr(e, "response", None), "status_code", None)
        if code in (401, 403):
            return f"not authorised ({code}) — log in (hf auth login) or pass a token with write access"
        return f"{text} — check the repo id and your access to it"
    return f"cannot reach {endpoint} ({type(e).__name__}: {text}) — check the network connection and HF_ENDPOINT"
