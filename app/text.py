"""Stored text, made safe to show, and typed text, checked before it is stored.

What a person writes (and what an imported export or a model brings in) can hold bytes
that a terminal obeys rather than shows: ESC sequences that retitle the window or clear
the screen, C1 controls (``\\x9b`` is a one-byte CSI), a carriage return that overwrites
a line, bidi overrides that make text read differently from what it is. Everything
Haven prints or draws from the journal goes through :func:`terminal_safe` (the CLI) or
:func:`safe_rich` (the app, as a Rich ``Text``, never markup).

Each unsafe character is replaced by a visible ``\\ufffd`` on its own, so the result is
the same however the text is split (a reply streamed token by token is safe too).
"""

from __future__ import annotations

import re

from rich.text import Text

#: The most a person can write in one message, note or field (as for a chat message).
MAX_TEXT_CHARS = 200_000

REPLACEMENT = "\ufffd"

# C0 controls except TAB (\x09) and LF (\x0a); DEL; C1 controls (\x80-\x9f, \x9b is CSI);
# bidi embeddings/overrides (U+202A-U+202E) and isolates (U+2066-U+2069); lone surrogates
# (bytes that were not UTF-8, as Python decodes argv) and NUL. CR is handled apart.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def terminal_safe(text: str) -> str:
    """``text`` with every character a terminal would act on replaced; newlines and tabs kept.

    A carriage return is dropped (``\\r\\n`` becomes ``\\n``; a lone one could otherwise
    overwrite the start of the line).
    """
    if not text:
        return text
    return _UNSAFE.sub(REPLACEMENT, text.replace("\r", ""))


def one_line(text: str, width: int | None = None) -> str:
    """The first non-empty line of ``text``, made safe, cut to ``width`` characters."""
    safe = terminal_safe(text).strip()
    first = safe.splitlines()[0] if safe else ""
    return first[:width] if width is not None else first


def safe_rich(text: str, style: str = "", **kwargs) -> Text:
    """A Rich ``Text`` of stored text: never markup, never a control sequence."""
    return Text(terminal_safe(text), style=style, **kwargs)


class TextProblem(ValueError):
    """Typed text that cannot be stored; the message is one plain line."""


def check_typed(text: str, what: str = "the text", limit: int = MAX_TEXT_CHARS) -> str:
    """Refuse text Haven cannot keep faithfully: not UTF-8, NUL characters, or too long.

    Python turns bytes that are not UTF-8 (in arguments, the environment or a piped
    stdin) into lone surrogates; storing those would fail halfway, so they are refused
    up front, before anything is written.
    """
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        raise TextProblem(
            f"{what} is not valid UTF-8 text (check your terminal's or file's encoding); "
            "nothing was saved"
        )
    if "\x00" in text:
        raise TextProblem(f"{what} contains a NUL character; nothing was saved")
    if len(text) > limit:
        raise TextProblem(
            f"{what} is {len(text):,} characters; Haven keeps up to {limit:,} in one piece — "
            "try splitting it; nothing was saved"
        )
    return text
