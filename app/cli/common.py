"""Shared pieces of the command line: errors, passphrases, opening the journal."""

from __future__ import annotations

import getpass
import os
import sys
from datetime import datetime

from app import days
from app.logs import setup_logging
from app.paths import DataPaths
from app.settings import Settings, load_settings
from app.store import Journal
from app.store.connection import check_passphrase
from app.store.errors import JournalError


class CliError(Exception):
    """A clear, one-line problem: printed as ``haven: <message>``, exit code 2."""


class Context:
    """What every command needs: the data dir and the settings."""

    def __init__(self) -> None:
        self.paths = DataPaths.discover().ensure()
        self._settings: Settings | None = None
        setup_logging(self.paths.log_file)  # libraries' warnings go to the log, not the terminal

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.paths)
        return self._settings


def _ask(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise CliError(
            "no passphrase: set HAVEN_PASSPHRASE, or run this in a terminal to be asked"
        )
    try:
        return getpass.getpass(prompt)
    except EOFError as exc:
        raise CliError("no passphrase given") from exc


def ask_passphrase(prompt: str = "Passphrase: ", env: str = "HAVEN_PASSPHRASE") -> str:
    value = os.environ.get(env)
    if value is not None:
        return value
    return _ask(prompt)


def ask_new_passphrase(
    env: str = "HAVEN_PASSPHRASE", what: str = "passphrase", min_length: int = 8
) -> str:
    """A new passphrase: from ``env``, or asked twice without echo."""
    value = os.environ.get(env)
    if value is None:
        value = _ask(f"New {what} (at least {min_length} characters): ")
        again = _ask(f"Repeat the {what}: ")
        if value != again:
            raise CliError(f"the two {what}s were different; nothing was changed")
    if len(value) < min_length:
        raise CliError(f"the {what} must have at least {min_length} characters")
    try:
        check_passphrase(value)
    except JournalError as exc:
        raise CliError(str(exc)) from exc
    return value


def open_journal(ctx: Context, create: bool = True) -> Journal:
    """Open the journal (creating it on first use when ``create``)."""
    path = ctx.paths.journal
    if Journal.exists(path):
        return Journal.open(path, ask_passphrase())
    if not create:
        raise CliError(f"there is no journal yet at {path}; run `haven` to create one")
    passphrase = ask_new_passphrase()
    print("Created a new encrypted journal.", file=sys.stderr)
    return Journal.create(path, passphrase)


def parse_day_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """From/to days (YYYY-MM-DD, both inclusive) -> [start, end) times; checks their order."""
    try:
        return days.parse_day_range(since, until)
    except days.DayError as exc:
        raise CliError(str(exc)) from exc


def local_time(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")
