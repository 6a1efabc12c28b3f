"""The direct questions Haven asks when it is unsure: ``prompts/safety/screener.toml``.

Pure logic, no state: which question comes first and next, how a typed answer reads
(yes / no / not sure / declined, or nothing clear), and which answers mean a crisis.
The conversation layer keeps the answers in the journal and decides when to ask.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from app import resources
from app.safety.rules import RulesError

Choice = Literal["yes", "no", "not_sure"]
Answer = Literal["yes", "no", "not_sure", "declined", "unclear"]
CHOICES: tuple[Choice, ...] = ("yes", "no", "not_sure")
LABELS: dict[str, str] = {"yes": "Yes", "no": "No", "not_sure": "Not sure"}
_READ_ORDER = ("declined", "not_sure", "no", "yes")


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    crisis_on: frozenset[str] = frozenset()
    if_no: str | None = None


@dataclass(frozen=True)
class Screener:
    questions: tuple[Question, ...]
    intro: str
    intro_again: str
    unclear: str
    done_some_yes: str
    done_all_no: str
    paused: str
    patterns: dict[str, re.Pattern]

    @property
    def first(self) -> Question:
        return self.questions[0]

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)

    def next(self, question_id: str, choice: Choice) -> Question | None:
        """The question after ``question_id`` answered ``choice`` (None: the last one)."""
        current = self.question(question_id)
        if choice == "no" and current.if_no:
            return self.question(current.if_no)
        index = self.questions.index(current)
        return self.questions[index + 1] if index + 1 < len(self.questions) else None

    def is_crisis(self, question_id: str, answer: str) -> bool:
        return answer in self.question(question_id).crisis_on

    def read(self, text: str) -> Answer | None:
        """How a typed answer reads, or None when it is not clearly any of them."""
        norm = " ".join(text.strip().lower().replace("\u2019", "'").split())
        if norm in LABELS.values() or norm in (v.lower() for v in LABELS.values()):
            return next(k for k, v in LABELS.items() if v.lower() == norm)
        for kind in _READ_ORDER:
            if self.patterns[kind].search(norm):
                return kind  # type: ignore[return-value]
        return None


@lru_cache(maxsize=1)
def screener() -> Screener:
    path = resources.prompts_dir() / "safety" / "screener.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        questions = tuple(
            Question(id=q["id"], text=q["text"], crisis_on=frozenset(q.get("crisis_on", [])),
                     if_no=q.get("if_no"))
            for q in data["questions"]
        )
        patterns = {kind: re.compile("|".join(f"(?:{p})" for p in data["answers"][kind]))
                    for kind in _READ_ORDER}
        found = Screener(questions=questions, intro=data["intro"], intro_again=data["intro_again"],
                         unclear=data["unclear"], done_some_yes=data["done_some_yes"],
                         done_all_no=data["done_all_no"], paused=data["paused"], patterns=patterns)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, re.error) as exc:
        raise RulesError(f"the safety questions {path} cannot be loaded: {exc}") from exc
    ids = {q.id for q in questions}
    for q in questions:
        if q.if_no and q.if_no not in ids:
            raise RulesError(f"{path}: question {q.id} skips to unknown {q.if_no!r}")
        if not q.crisis_on <= set(CHOICES):
            raise RulesError(f"{path}: question {q.id} has an unknown crisis_on answer")
    if not questions:
        raise RulesError(f"{path} has no questions")
    return found
