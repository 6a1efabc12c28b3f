"""A passphrase field: hidden, and with a sane length, so a huge paste cannot freeze the app."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import Input

#: Far longer than any passphrase a person types or keeps in a password manager.
MAX_PASSPHRASE_CHARS = 1024


class PassphraseInput(Input):
    """``Input(password=True)`` that refuses (and says so) a paste past the limit, rather
    than drawing and checking a megabyte of dots on every key."""

    @dataclass
    class TooLong(Message):
        input: PassphraseInput

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("password", True)
        kwargs.setdefault("max_length", MAX_PASSPHRASE_CHARS)
        kwargs.setdefault("select_on_focus", False)  # Tab in, type: added to, not replaced
        super().__init__(*args, **kwargs)

    def _on_paste(self, event: events.Paste) -> None:
        line = event.text.split("\n", 1)[0].split("\r", 1)[0] if event.text else ""
        if len(self.value) + len(line) > MAX_PASSPHRASE_CHARS:
            event.stop()
            event.prevent_default()
            self.post_message(self.TooLong(self))
            return
        super()._on_paste(event)
