"""Opening a SQLCipher connection safely: key, verify, and the pragmas Haven relies on."""

from __future__ import annotations

import os
from pathlib import Path

import sqlcipher3.dbapi2 as sqlcipher

from app.paths import PRIVATE_FILE
from app.store.errors import JournalError, WrongPassphrase

DatabaseError = sqlcipher.DatabaseError


def check_passphrase(passphrase: str) -> None:
    if not passphrase:
        raise JournalError("the passphrase cannot be empty")
    if "\x00" in passphrase:
        raise JournalError("the passphrase cannot contain a NUL character")


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
            raise WrongPassphrase() from exc
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 5000")
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
