"""Small file helpers: outputs are written to a temp file and renamed, so nothing is half-written."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike, marker: str | None = None):
    """Yield a temp folder beside ``folder``; on success it replaces ``folder`` (rename), on error it is removed,
    so ``folder`` is never half-written. An existing non-empty ``folder`` is only replaced when it holds
    ``marker`` (i.e. it is an earlier output of the same kind), otherwise FileExistsError."""
    import shutil

    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (marker and (folder / marker).exists()))):
        raise FileExistsError(f"{folder} exists and is not an earlier output folder; choose a new or empty folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    old = None
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes 0700
        if folder.exists():
            old = folder.rename(folder.parent / f"{tmp.name}.old")
        tmp.rename(folder)
    finally:
        for p in (tmp, old):
            if p is not None and p.exists():
                shutil.rmtree(p)
