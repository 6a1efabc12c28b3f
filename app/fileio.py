"""Small, careful file helpers shared by the settings, the model registry and export."""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from pathlib import Path

from app.paths import PRIVATE_FILE

PART_TAG = "haven-"


def disk_full(exc: BaseException) -> bool:
    """True for the OS's "no space left on device" (ENOSPC)."""
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


#: What a copy or a download must leave free beyond its own size (the journal still needs room).
SPACE_MARGIN = 64 * 1024 * 1024


def free_bytes(folder: Path) -> int:
    """Bytes free for this user in ``folder``'s file system (OSError if it cannot be read)."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def space_shortfall(folder: Path, needed: int, what: str) -> str | None:
    """None when ``folder`` has room for ``needed`` bytes and :data:`SPACE_MARGIN`; else one
    line saying how much ``what`` needs and how much is free. The one free-space check for
    a model that is copied in or downloaded."""
    free = free_bytes(folder)
    if free >= needed + SPACE_MARGIN:
        return None
    return (f"not enough free disk space: {what} needs {needed / 1e9:.2f} GB and "
            f"{free / 1e9:.2f} GB are free in {folder}")


def os_reason(exc: OSError) -> str:
    """Why a write failed, in words for a person: a full disk is named as such."""
    return "the disk is full" if disk_full(exc) else (exc.strerror or type(exc).__name__)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, never half.

    The bytes go to an owner-only temp file in the same folder, are fsynced, then renamed.
    The temp file is locked while it is written; one left by a killed run (unlocked) is
    removed by the next write into that folder (:func:`remove_stale_parts`).
    """
    remove_stale_parts(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{PART_TAG}", suffix=".part")
    try:
        hold(fd)
        os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def hold(fd: int) -> None:
    """Mark a temp file as in use (an exclusive flock, gone when the file is closed)."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def remove_stale_parts(folder: Path, name: str | None = None) -> list[Path]:
    """Remove temp files that a killed Haven left in ``folder``; returns what was removed.

    A temp file is Haven's if it carries the ``haven-`` tag (or, for files from before the
    tag, is ``.<name>.XXXXXXXX.part`` beside the file now written). It is stale when no
    process holds its lock; one still being written is never touched.
    """
    candidates = set(folder.glob(f".*.{PART_TAG}*.part"))
    if name is not None:
        candidates |= set(folder.glob(f".{_glob_escape(name)}.{'?' * 8}.part"))
    return [path for path in candidates if remove_if_stale(path)]


def remove_if_stale(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # someone is writing it
    else:
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
