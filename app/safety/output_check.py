"""The check on every model reply: anything that encourages harm, gives a method or a
dose, or claims to be a person or a clinician is replaced and never shown.

:class:`ReplyGuard` checks a reply while it streams. It releases text only in whole
sentences (or, in a long run-on, up to a word boundary) that have passed the check, and
always holds back the last ``HOLD_BACK`` characters, so no part of a dangerous phrase
reaches the screen, or the journal, before its last word has been seen. Once tripped it
releases nothing more. A stopped or failed reply keeps only what was released: an
unfinished sentence is never shown or stored.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache

from app import resources
from app.safety.rules import RulesError, RuleSet

HOLD_BACK = 48  # characters always held back while a reply streams
RUN_ON = 240  # a sentence longer than this is released at spaces, RUN_ON_HOLD behind the end
RUN_ON_HOLD = 96
_SENTENCE_END = re.compile(r"[.!?…]+[\"”')\]*_]*(?=\s)|\n")
_ENDS_WHOLE = re.compile(r"[.!?…]+[\"”')\]*_]*\s*$")

IDENTITY = "claims to be human or a clinician"


@dataclass(frozen=True)
class ReplyCheck:
    safe: bool
    categories: tuple[str, ...] = ()

    @property
    def only_identity(self) -> bool:
        """Only a claim to be a person or a clinician (no harm, no method)."""
        return bool(self.categories) and all(c == IDENTITY for c in self.categories)


@lru_cache(maxsize=1)
def reply_rules() -> RuleSet:
    path = resources.prompts_dir() / "safety" / "reply_rules.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return RuleSet(data)
    except (OSError, tomllib.TOMLDecodeError, KeyError, re.error) as exc:
        raise RulesError(f"safety reply rules {path} cannot be loaded: {exc}") from exc


def check_reply(text: str) -> ReplyCheck:
    rules = reply_rules()
    hits = rules.hits(rules.normalise(text))
    if not hits:
        return ReplyCheck(safe=True)
    return ReplyCheck(safe=False, categories=tuple(dict.fromkeys(h.rule.category for h in hits)))


def _last_boundary(text: str, start: int, limit: int) -> int:
    """The end of the last whole sentence in ``text[start:limit]`` (``start`` if none)."""
    found = start
    for match in _SENTENCE_END.finditer(text, start, limit):
        found = match.end()
    return found


class ReplyGuard:
    """Feed streamed chunks in; get back the text that is safe to show so far."""

    def __init__(self) -> None:
        self.text = ""
        self.shown = 0
        self.tripped: ReplyCheck | None = None

    @property
    def released(self) -> str:
        """Everything released so far: what the person has seen, and all that may be stored."""
        return self.text[: self.shown]

    def feed(self, chunk: str) -> str:
        """Add ``chunk``; return the newly showable text ('' while holding back or tripped)."""
        if self.tripped:
            return ""
        self.text += chunk
        verdict = check_reply(self.text)
        if not verdict.safe:
            self.tripped = verdict
            return ""
        limit = len(self.text) - HOLD_BACK
        if limit <= self.shown:
            return ""
        showable = _last_boundary(self.text, self.shown, limit)
        if showable == self.shown:
            sentence = _last_boundary(self.text, 0, self.shown)
            if len(self.text) - sentence > RUN_ON:
                # a long run-on sentence: release up to a space, well behind the end
                cut = self.text.rfind(" ", self.shown, len(self.text) - RUN_ON_HOLD)
                showable = max(self.shown, cut)
        return self._release(showable)

    def finish(self, complete: bool = True) -> str:
        """The reply has ended: check it whole and release what may be shown.

        ``complete=False`` (stopped, or the model failed): only whole sentences are released;
        an unfinished one is dropped, never shown or stored.
        """
        if self.tripped:
            return ""
        verdict = check_reply(self.text)
        if not verdict.safe:
            self.tripped = verdict
            return ""
        if complete:
            return self._release(len(self.text))
        if _ENDS_WHOLE.search(self.text):
            return self._release(len(self.text))
        return self._release(_last_boundary(self.text, self.shown, len(self.text)))

    def _release(self, upto: int) -> str:
        new = self.text[self.shown : upto]
        self.shown = max(self.shown, upto)
        return new
