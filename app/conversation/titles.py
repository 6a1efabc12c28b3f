"""A session's title and summary: the model's, when what it wrote is one; else the day
(for a title) or no summary.

A small model asked for a title sometimes answers with something else: its own
instructions ("You are Haven, a self-help companion…"), nothing, a paragraph, or markup.
None of that may become the heading of a journal entry, so the model's answer is checked
and, when it is not a title, the session is named after its day ("Conversation on
Tuesday 24 November"), which the person can rename.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

#: The user turn that asks for the title (after the conversation and the title prompt).
TITLE_REQUEST = "Please give the title now."
#: The user turn that asks for the closing summary.
SUMMARY_REQUEST = "Please write the summary now."
MAX_TITLE_CHARS = 80
MAX_TITLE_WORDS = 12
#: This many words in a row that also stand in one of Haven's prompts make an echo.
ECHO_RUN = 4
#: The same for a closing summary, which is longer and may fairly repeat a short phrase.
SUMMARY_ECHO_RUN = 6
MARKUP = frozenset("<>[]{}*_#`|\\$")
_LABEL = re.compile(r"^\s*(?:session\s+)?title\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’ "
_DECORATION = "*_# "  # Markdown a model puts around a heading: taken off, not refused


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def echoes(words: list[str], prompts: Iterable[str], run: int = ECHO_RUN) -> bool:
    """True when the words read as Haven's own instructions: (from three words on) some
    ``run`` of them in a row stand in a prompt."""
    if len(words) < 3:
        return False
    run = min(len(words), run)
    runs = {tuple(words[i:i + run]) for i in range(len(words) - run + 1)}
    for prompt in prompts:
        said = _words(prompt)
        if any(tuple(said[i:i + run]) in runs for i in range(len(said) - run + 1)):
            return True
    return False


def model_title(raw: str | None, prompts: Iterable[str] = ()) -> str | None:
    """The model's answer as a title, or None when it is not one: empty, too long (more
    than :data:`MAX_TITLE_CHARS` characters or :data:`MAX_TITLE_WORDS` words), markup or
    control characters, or an echo of ``prompts`` (the texts the model was given)."""
    lines = [line for line in (raw or "").splitlines() if line.strip()]
    if not lines:
        return None
    title = _LABEL.sub("", lines[0].strip(_DECORATION)).strip(_QUOTES).removesuffix(".")
    title = title.strip(_QUOTES).strip(_DECORATION)
    words = _words(title)
    if not title or not words or len(title) > MAX_TITLE_CHARS or len(words) > MAX_TITLE_WORDS:
        return None
    if any(c in MARKUP for c in title) or "://" in title or not title.isprintable():
        return None
    if words[:2] == ["you", "are"] or echoes(words, prompts):  # "You are Haven, …"
        return None
    return title


def model_summary(raw: str | None, prompts: Iterable[str] = ()) -> str | None:
    """The model's closing summary, or None when it is empty or repeats Haven's own
    instructions (:data:`SUMMARY_ECHO_RUN` words in a row from ``prompts``): a small model
    sometimes answers "Write a short closing summary of this self-help conversation…"."""
    summary = (raw or "").strip()
    if not summary or echoes(_words(summary), prompts, SUMMARY_ECHO_RUN):
        return None
    return summary


def date_title(started: datetime) -> str:
    """A plain title from the day the session started, in local time."""
    local = started.astimezone()
    return f"Conversation on {local:%A} {local.day} {local:%B}"


def session_title(raw: str | None, started: datetime, prompts: Iterable[str] = ()) -> str:
    """The model's title if it is one (:func:`model_title`), else :func:`date_title`."""
    return model_title(raw, prompts) or date_title(started)
