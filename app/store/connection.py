"""Opening a SQLCipher connection safely: key, verify, and the pragmas Haven relies on."""

from __future__ import annotations

import os
from pathlib import Path

import sqlcipher3.dbapi2 as sqlcipher

from app.fileio import disk_full, free_bytes
from app.paths import PRIVATE_FILE
from app.store.errors import DiskFull, JournalError, WrongPassphrase

DatabaseError = sqlcipher.DatabaseError

SQLITE_FULL = 13
SQLITE_NOTADB = 26
_NEARLY_FULL_BYTES = 1024 * 1024


def disk_is_full(folder: Path) -> bool:
    """Too little space left in ``folder`` for SQLite's side files (or none at all)."""
    try:
        return free_bytes(folder) < _NEARLY_FULL_BYTES
    except OSError:
        return False


def explain(exc: Exception, path: Path, doing: str = "open the journal") -> JournalError:
    """A database error as one clear line; a full disk is always named as such."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code == SQLITE_FULL or disk_full(exc) or disk_is_full(path.parent):
        return DiskFull(doing)
    return JournalError(f"cannot {doing}: {exc}")


# How long a write waits for another Haven's write (a large import, say) before failing.
# The import commits in small batches, so in practice a write waits well under a second.
BUSY_TIMEOUT_MS = 60_000


def check_passphrase(passphrase: str) -> None:
    if not passphrase:
        raise JournalError("the passphrase cannot be empty")
    if "\x00" in passphrase:
        raise JournalError("the passphrase cannot contain a NUL character")
    if any("\ud800" <= ch <= "\udfff" for ch in passphrase):
        raise JournalError("the passphrase is not valid UTF-8 text (check your terminal's encoding)")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(path: Path, passphrase: str, *, must_exist: bool) -> sqlcipher.Connection:
    """Open ``path`` with ``passphrase`` and verify the key before anything is written.

    A wrong key raises :class:`WrongPassphrase` and leaves the file untouched.
    """
    check_passphrase(passphrase)
    if must_exist and not path.is_file():
        raise JournalError(f"no journal at {path}")
    conn = sqlcipher.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        # SQLCipher logs key failures to stderr from C; keep it quiet (and see app.logs).
        try:
            conn.execute("PRAGMA cipher_log_level = NONE")
        except DatabaseError:
            pass
        conn.execute(f"PRAGMA key = {_quote(passphrase)}")
        conn.execute("PRAGMA cipher_memory_security = ON")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except DatabaseError as exc:
            # Only "file is not a database" means the key is wrong. Anything else (a full
            # disk cannot create the side files, an I/O error) is not the person's fault
            # and must never cost them one of their tries.
            if getattr(exc, "sqlite_errorcode", SQLITE_NOTADB) == SQLITE_NOTADB:
                raise WrongPassphrase() from exc
            raise explain(exc, path) from exc
        try:
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except DatabaseError as exc:
            raise explain(exc, path) from exc
    except BaseException:
        conn.close()
        raise
    if path.exists():
        os.chmod(path, PRIVATE_FILE)
    return conn


def integrity_problems(conn: sqlcipher.Connection) -> list[str]:
    """Both SQLite's and SQLCipher's integrity checks; an empty list means healthy."""
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
    problems += [row[0] for row in conn.execute("PRAGMA cipher_integrity_check")]
    return problems
