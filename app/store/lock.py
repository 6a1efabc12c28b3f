"""Who has the journal open: an advisory lock file beside it.

``journal.db.lock`` is locked with ``flock``: *shared* by every normal open (the app,
each command), *exclusive* by anything that replaces the journal file (a passphrase
change). So a passphrase change never swaps the file under a program that is writing
to it (that program would go on writing into the deleted file, and its words would be
lost), and a command started during a passphrase change waits for it to finish.

The lock belongs to the open file description, so the kernel releases it when the
process ends, however it ends: a crash leaves no stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from pathlib import Path

from app.fileio import disk_full
from app.paths import PRIVATE_FILE
from app.store.errors import JournalBusy, JournalError

log = logging.getLogger("haven.store")

SHARED_WAIT_SECONDS = 30.0


def lock_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".lock")


class JournalLock:
    """One hold on the lock file; :meth:`release` (or process exit) lets it go."""

    def __init__(self, fd: int, exclusive: bool) -> None:
        self._fd: int | None = fd
        self.exclusive = exclusive

    @classmethod
    def shared(cls, journal: Path, wait: float = SHARED_WAIT_SECONDS) -> JournalLock:
        """For reading and writing records. Waits while a passphrase change runs."""
        fd = _open(journal)
        if _try(fd, fcntl.LOCK_SH):
            return cls(fd, exclusive=False)
        log.info("the journal is being re-keyed by another Haven; waiting for it")
        deadline = time.monotonic() + wait
        delay = 0.02
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
            if _try(fd, fcntl.LOCK_SH):
                return cls(fd, exclusive=False)
        os.close(fd)
        raise JournalBusy(
            "the journal is being changed by another Haven (a passphrase change); "
            "try again in a moment"
        )

    @classmethod
    def exclusive_now(cls, journal: Path) -> JournalLock:
        """For replacing the journal file. Never waits: refuses if anyone has it open."""
        fd = _open(journal)
        if _try(fd, fcntl.LOCK_EX):
            return cls(fd, exclusive=True)
        os.close(fd)
        raise JournalBusy(
            "the journal is open elsewhere (in the Haven app or another haven command); "
            "close it and try again — nothing was changed"
        )

    def share(self) -> None:
        """Turn an exclusive hold into a shared one (after creating the journal)."""
        if self._fd is not None and self.exclusive:
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            self.exclusive = False

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> JournalLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # a forgotten lock is let go with its object
        try:
            self.release()
        except Exception:
            pass


def _open(journal: Path) -> int:
    path = lock_path(journal)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, PRIVATE_FILE)
    except OSError as exc:
        if disk_full(exc):
            from app.store.errors import DiskFull

            raise DiskFull() from exc
        if exc.errno == errno.ELOOP:
            raise JournalError(f"{path} is a symbolic link; Haven will not follow it") from exc
        raise JournalError(f"cannot use the journal's lock file {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except OSError:
        pass
    return fd


def _try(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
