"""The encrypted journal: one SQLCipher database for everything Haven remembers."""

from app.store.errors import JournalError, JournalMissing, WrongPassphrase
from app.store.journal import Journal

__all__ = ["Journal", "JournalError", "JournalMissing", "WrongPassphrase"]
