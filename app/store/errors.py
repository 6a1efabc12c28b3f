"""Errors of the journal, each with a message fit to show the user as it is."""


class JournalError(Exception):
    """Something went wrong with the journal; ``str(exc)`` is one clear line."""


class WrongPassphrase(JournalError):
    def __init__(self) -> None:
        super().__init__("that passphrase does not open this journal (nothing was changed)")


class JournalMissing(JournalError):
    def __init__(self, path) -> None:
        super().__init__(f"there is no journal yet at {path}; run `haven` to create one")


class JournalExists(JournalError):
    def __init__(self, path) -> None:
        super().__init__(f"a journal already exists at {path}")


class DiskFull(JournalError):
    """The disk is full. Never confused with a wrong passphrase; nothing was changed."""

    def __init__(self, doing: str = "open the journal") -> None:
        super().__init__(
            f"cannot {doing}: the disk is full — free some space and try again "
            "(your journal is unchanged)"
        )


class JournalBusy(JournalError):
    """Another Haven holds the journal in a way that rules out what was asked."""


class JournalReplaced(JournalError):
    """The file this journal was opened from is no longer the one on disk."""

    def __init__(self) -> None:
        super().__init__(
            "the journal file was replaced while Haven had it open (a passphrase change or "
            "a copy from elsewhere); this change was not saved — close Haven and open it again"
        )
