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
