"""``assess_risk``: the deterministic check every user message passes before the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from app.safety.rules import LEVELS, RuleSet, default_rules

Level = Literal["none", "elevated", "crisis"]
MAX_CHARS = 100_000  # longer pastes are checked in full, in windows of this size


@dataclass(frozen=True)
class Evidence:
    rule: str
    category: str
    level: Level
    start: int  # span in the original message
    end: int
    text: str


@dataclass(frozen=True)
class RiskAssessment:
    level: Level
    categories: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)

    @property
    def is_crisis(self) -> bool:
        return self.level == "crisis"

    @property
    def is_elevated(self) -> bool:
        return self.level == "elevated"


NO_RISK = RiskAssessment(level="none")


def _windows(text: str) -> list[tuple[int, str]]:
    if len(text) <= MAX_CHARS:
        return [(0, text)]
    overlap = 500  # so a phrase across a window edge is still seen whole
    return [
        (offset, text[offset : offset + MAX_CHARS + overlap])
        for offset in range(0, len(text), MAX_CHARS)
    ]


def assess_risk(text: str, rules: RuleSet | None = None) -> RiskAssessment:
    """Return the risk level of ``text`` with the categories and spans that raised it.

    Deterministic and independent of any model: the rules are data in
    ``prompts/safety/rules.toml``.
    """
    if not text or not text.strip():
        return NO_RISK
    rules = rules or default_rules()
    evidence: list[Evidence] = []
    for offset, chunk in _windows(text):
        norm = rules.normalise(chunk)
        for hit in rules.hits(norm):
            start, end = norm.original_span(hit.start, hit.end)
            evidence.append(
                Evidence(
                    rule=hit.rule.id,
                    category=hit.rule.category,
                    level=hit.level,  # type: ignore[arg-type]
                    start=offset + start,
                    end=offset + end,
                    text=chunk[start:end],
                )
            )
    if not evidence:
        return NO_RISK
    level = max((e.level for e in evidence), key=LEVELS.index)
    top = [e for e in evidence if e.level == level]
    categories = tuple(dict.fromkeys(e.category for e in top))
    return RiskAssessment(level=level, categories=categories, evidence=tuple(evidence))
