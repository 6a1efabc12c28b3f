"""Load ``prompts/safety/rules.toml`` and compile it into a fast, deterministic matcher."""

from __future__ import annotations

import bisect
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from app import resources
from app.safety.normalise import Normalised, Normaliser

LEVELS = ("none", "elevated", "crisis")
CLOSING_CHARS = 120  # a goodbye is short; a longer message is never read as one


class RulesError(Exception):
    """The safety rules file is missing or malformed (a startup error, never ignored)."""


@dataclass(frozen=True)
class Rule:
    id: str
    level: str
    category: str
    pattern: re.Pattern
    past_level: str | None
    negatable: bool
    requires: str | None
    firm: bool = False  # its crisis never needs the trained model's agreement
    unless: str | None = None  # a context that, found anywhere in the message, voids the rule
    feature: bool = True  # False: the trained model never sees it (a firm rule added later)


@dataclass(frozen=True)
class Hit:
    rule: Rule
    start: int
    end: int
    level: str


class RuleSet:
    def __init__(self, data: dict) -> None:
        macros: dict[str, str] = data.get("macros", {})

        def expand(pattern: str) -> str:
            for name, value in macros.items():
                pattern = pattern.replace("{" + name + "}", value)
            return pattern

        def compile_all(patterns: list[str]) -> re.Pattern | None:
            if not patterns:
                return None
            return re.compile("|".join(f"(?:{expand(p)})" for p in patterns))

        self.normalise = Normaliser([(s["pattern"], s["replace"]) for s in data["normalise"]])
        self.clause_split = re.compile(data["clauses"]["split"])
        negation = data["negation"]
        self.negation_cues = set(negation["cues"])
        self.negation_window = int(negation["window"])
        self.negation_breakers = set(negation["breakers"])
        self.past = compile_all(data["past"]["patterns"])
        self.idioms = compile_all(data["idioms"]["patterns"])
        self.closings = compile_all(data.get("closings", {}).get("patterns", []))
        self.contexts = {
            name: compile_all(ctx["patterns"]) for name, ctx in data.get("context", {}).items()
        }
        self.rules: list[Rule] = []
        for raw in data["rules"]:
            if raw["level"] not in LEVELS[1:]:
                raise RulesError(f"rule {raw['id']}: unknown level {raw['level']!r}")
            requires, unless = raw.get("requires"), raw.get("unless")
            for context in (requires, unless):
                if context and context not in self.contexts:
                    raise RulesError(f"rule {raw['id']}: unknown context {context!r}")
            pattern = compile_all(raw["patterns"])
            assert pattern is not None
            self.rules.append(
                Rule(
                    id=raw["id"],
                    level=raw["level"],
                    category=raw["category"],
                    pattern=pattern,
                    past_level=raw.get("past_level"),
                    negatable=bool(raw.get("negatable", True)),
                    requires=requires,
                    firm=bool(raw.get("firm", False)),
                    unless=unless,
                    feature=bool(raw.get("feature", True)),
                )
            )

    def is_closing(self, text: str) -> bool:
        """The whole message is an everyday goodbye to Haven with a return in it
        (``[closings]``): ordinary, and not read by the trained readers."""
        if self.closings is None or len(text) > CLOSING_CHARS:
            return False
        return bool(self.closings.fullmatch(self.normalise(text).text.strip()))

    def hits(self, norm: Normalised) -> list[Hit]:
        text = norm.text
        clause_starts = [0] + [m.end() for m in self.clause_split.finditer(text)]
        idiom_spans = [m.span() for m in self.idioms.finditer(text)] if self.idioms else []
        context_cache: dict[str, bool] = {}
        found: list[Hit] = []
        def shows(context: str) -> bool:
            if context not in context_cache:
                context_cache[context] = bool(self.contexts[context].search(text))
            return context_cache[context]

        for rule in self.rules:
            if rule.requires and not shows(rule.requires):
                continue
            if rule.unless and shows(rule.unless):
                continue
            for match in rule.pattern.finditer(text):
                start, end = match.span()
                if any(s <= start and end <= e for s, e in idiom_spans):
                    continue
                if any(s < end and start < e for s, e in idiom_spans) and _inside_idiom(
                    start, end, idiom_spans
                ):
                    continue
                clause_start = clause_starts[bisect.bisect_right(clause_starts, start) - 1]
                clause_end_index = bisect.bisect_right(clause_starts, end)
                clause_end = (
                    clause_starts[clause_end_index] if clause_end_index < len(clause_starts)
                    else len(text)
                )
                if rule.negatable and self._negated(text[clause_start:start]):
                    continue
                level = rule.level
                if rule.past_level and self.past and self.past.search(text, clause_start, clause_end):
                    level = rule.past_level
                found.append(Hit(rule=rule, start=start, end=end, level=level))
        return found

    def _negated(self, before: str) -> bool:
        words = before.split()[-self.negation_window:]
        for index in range(len(words) - 1, -1, -1):
            word = words[index]
            if word in self.negation_breakers:
                return False
            if word in self.negation_cues:
                return True
        return False


def _inside_idiom(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    """A match mostly covered by an idiom (more than half its length) is the idiom."""
    covered = sum(max(0, min(end, e) - max(start, s)) for s, e in spans)
    return covered * 2 > (end - start)


def feature_hits(hits: list[Hit]) -> list[Hit]:
    """The matches the trained model reads: every hit but those of rules marked
    ``feature = false``, whose crisis stands on its own."""
    return [hit for hit in hits if hit.rule.feature]


def load_rules(path: Path | None = None) -> RuleSet:
    path = path or resources.prompts_dir() / "safety" / "rules.toml"
    try:
        return RuleSet(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, KeyError, re.error) as exc:
        raise RulesError(f"safety rules {path} cannot be loaded: {exc}") from exc


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    return load_rules()
