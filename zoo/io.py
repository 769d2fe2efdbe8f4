"""Output files, written so that nothing is ever half-written or silently replaced.

One family of helpers: :func:`atomic_path` (a temp path beside the target, renamed into place on success),
:func:`atomic_write_bytes` / :func:`atomic_write_text` on top of it, :func:`atomic_folder` for output folders,
and :func:`check_new_output`, which refuses an existing output unless the user passed ``--force``."""
from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def check_new_output(path: str | os.PathLike, force: bool = False, flag: str | None = None) -> Path:
    """Refuse (OutputExistsError) when ``path`` already exists and ``force`` is false; call it before any work.
    ``flag`` names the option that gave the path (e.g. ``--json``) in the message."""
    from zoo.errors import OutputExistsError

    path = Path(path)
    if path.exists() and not force:
        what = "folder" if path.is_dir() else "file"
        raise OutputExistsError(f"{(flag + ' ') if flag else ''}{path}: the {what} exists — pass --force to "
                                "replace it, or choose another path")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp file path beside ``path`` (same suffix, so format-by-extension writers work); when the
    block succeeds it is renamed onto ``path`` (mode 0644), otherwise removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def command_header(argv: list[str]) -> str:
    """The first line of a report: ``$ OMP_NUM_THREADS=<as set> python <argv...>`` (shell-quoted)."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    return f"$ OMP_NUM_THREADS={threads} " + " ".join(shlex.quote(x) for x in ["python", *argv])


def print_report(lines: list[str], out: str | os.PathLike | None = None) -> str:
    """A script's report: the lines joined, printed, and written atomically to ``out`` when given."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        atomic_write_text(out, text)
    return text


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike, marker: str | None = None):
    """Yield a temp folder beside ``folder``; on success it replaces ``folder`` (rename), on error it is removed,
    so ``folder`` is never half-written. An existing non-empty ``folder`` is only replaced when it holds
    ``marker`` (i.e. it is an earlier output of the same kind), otherwise FileExistsError."""
    folder = Path(folder)
    earlier = marker and (folder / marker).exists()
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not earlier)):
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
