"""The encrypted journal: one SQLCipher database for everything Haven remembers."""

from app.store.errors import (
    DiskFull,
    JournalBusy,
    JournalError,
    JournalMissing,
    JournalReplaced,
    WrongPassphrase,
)
from app.store.journal import Journal

__all__ = [
    "DiskFull", "Journal", "JournalBusy", "JournalError", "JournalMissing", "JournalReplaced",
    "WrongPassphrase",
]
