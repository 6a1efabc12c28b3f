"""Change the journal's passphrase without ever risking the journal.

0. Take the journal's lock exclusively (see :mod:`app.store.lock`): if the app or another
   command has the journal open, refuse at once and change nothing.
1. Open the journal with the current passphrase (a wrong one stops here, nothing changed).
2. ``sqlcipher_export`` everything into ``journal.db.rekey`` keyed with the new passphrase.
3. Close both, reopen the copy with the new passphrase, run both integrity checks and
   compare the row counts with the original.
4. ``os.replace`` the copy over the original: atomic, so a crash at any point leaves
   either the old file (with the old passphrase) or the new one, never neither.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.fileio import fsync_dir
from app.paths import PRIVATE_FILE
from app.store.connection import DatabaseError, _quote, check_passphrase, connect, explain
from app.store.connection import integrity_problems as _problems
from app.store.errors import JournalError
from app.store.lock import JournalLock

_COUNTED = ("sessions", "messages", "mood_entries", "thought_records", "notes", "safety_plan",
            "screener_answers")


def rekey_path(path: Path) -> Path:
    return path.with_name(path.name + ".rekey")


def discard_leftover(path: Path) -> None:
    """A copy left by a crash during a passphrase change is never the journal: remove it."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(rekey_path(path)) + suffix).unlink(missing_ok=True)


def _counts(conn) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in _COUNTED}


def change_passphrase(path: Path, current: str, new: str, *, held: JournalLock | None = None) -> None:
    """Re-key the journal. Refuses at once (nothing changed) while any other Haven, the
    app or a command, has the journal open: the swap would pull the file from under it.

    ``held`` is an exclusive lock the caller took already (to refuse before asking for
    passphrases); otherwise one is taken here.
    """
    check_passphrase(new)
    if new == current:
        raise JournalError("the new passphrase is the same as the current one")
    if not path.is_file():
        raise JournalError(f"no journal at {path}")
    if held is not None:
        if not held.exclusive:
            raise ValueError("change_passphrase needs an exclusive lock")
        _change_passphrase(path, current, new)
        return
    with JournalLock.exclusive_now(path):
        _change_passphrase(path, current, new)


def _change_passphrase(path: Path, current: str, new: str) -> None:
    discard_leftover(path)
    copy = rekey_path(path)
    old = connect(path, current, must_exist=True)
    try:
        old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        expected = _counts(old)
        version = old.execute("PRAGMA user_version").fetchone()[0]
        old.execute(f"ATTACH DATABASE ? AS rekeyed KEY {_quote(new)}", (str(copy),))
        old.execute("SELECT sqlcipher_export('rekeyed')")
        old.execute(f"PRAGMA rekeyed.user_version = {int(version)}")
        old.execute("DETACH DATABASE rekeyed")
    except DatabaseError as exc:
        discard_leftover(path)
        raise explain(exc, path, "write the re-keyed copy") from exc
    finally:
        old.close()

    try:
        fresh = connect(copy, new, must_exist=True)
        try:
            problems = _problems(fresh)
            if problems or _counts(fresh) != expected:
                raise JournalError("the re-keyed copy did not verify; your journal is unchanged")
            fresh.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            fresh.execute("PRAGMA journal_mode = DELETE")  # no side files travel with the swap
        finally:
            fresh.close()
        with open(copy, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(copy, PRIVATE_FILE)
        for suffix in ("-wal", "-shm"):
            side = Path(str(path) + suffix)
            if side.exists() and side.stat().st_size and suffix == "-wal":
                raise JournalError("the journal is still in use; close Haven and try again")
            side.unlink(missing_ok=True)
        os.replace(copy, path)
        fsync_dir(path.parent)
    except BaseException:
        discard_leftover(path)
        raise
