"""The check on every model reply: anything that encourages harm, gives a method, or
claims to be human or a clinician is replaced and never shown.

:class:`ReplyGuard` checks a reply while it streams. It holds back the last few
characters (``HOLD_BACK``) so a dangerous phrase is caught before its last word reaches
the screen, and once tripped it yields only the safe replacement.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache

from app import resources
from app.safety.rules import RulesError, RuleSet

HOLD_BACK = 40


@dataclass(frozen=True)
class ReplyCheck:
    safe: bool
    categories: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def reply_rules() -> RuleSet:
    folder = resources.prompts_dir() / "safety"
    try:
        base = tomllib.loads((folder / "rules.toml").read_text(encoding="utf-8"))
        data = tomllib.loads((folder / "reply_rules.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RulesError(f"safety reply rules cannot be loaded: {exc}") from exc
    for shared in ("normalise", "clauses", "negation", "past"):
        data.setdefault(shared, base[shared])
    data.setdefault("idioms", {"patterns": []})
    return RuleSet(data)


def check_reply(text: str) -> ReplyCheck:
    rules = reply_rules()
    hits = rules.hits(rules.normalise(text))
    if not hits:
        return ReplyCheck(safe=True)
    return ReplyCheck(safe=False, categories=tuple(dict.fromkeys(h.rule.category for h in hits)))


class ReplyGuard:
    """Feed streamed chunks in; get back the text that is safe to show so far."""

    def __init__(self) -> None:
        self.text = ""
        self.shown = 0
        self.tripped: ReplyCheck | None = None

    def feed(self, chunk: str) -> str:
        """Add ``chunk``; return the newly showable text ('' while holding back or tripped)."""
        if self.tripped:
            return ""
        self.text += chunk
        verdict = check_reply(self.text)
        if not verdict.safe:
            self.tripped = verdict
            return ""
        showable = max(self.shown, len(self.text) - HOLD_BACK)
        new = self.text[self.shown : showable]
        self.shown = showable
        return new

    def finish(self) -> str:
        """The reply has ended: check it whole and release what was held back."""
        if self.tripped:
            return ""
        verdict = check_reply(self.text)
        if not verdict.safe:
            self.tripped = verdict
            return ""
        rest = self.text[self.shown :]
        self.shown = len(self.text)
        return rest
