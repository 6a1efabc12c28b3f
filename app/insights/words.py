"""Haven's words for recall and insights, from ``prompts/insights.toml`` and
``prompts/memory_recall.md`` (never the model's).

Every template is checked when the words are first loaded: a missing file or key, or a
``$placeholder`` the code does not fill, is a :class:`WordsError` naming the file, as
for the other prompt files.
"""

from __future__ import annotations

import string
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from app import resources
from app.cbt import Distortion

RECALL_BLOCK = "memory_recall.md"
WORDS = "insights.toml"

# table.key -> the placeholders the code fills in
REQUIRED: dict[str, frozenset[str]] = {
    "recall.thought_record": frozenset({"date"}),
    "recall.session": frozenset({"date"}),
    "recall.note": frozenset({"date"}),
    "recall.mood": frozenset({"date"}),
    "recall.remembered": frozenset({"items"}),
    "recall.and": frozenset(),
    "recall.prompt.heading": frozenset({"label"}),
    "recall.prompt.situation": frozenset({"text"}),
    "recall.prompt.hot": frozenset({"text"}),
    "recall.prompt.hot_belief": frozenset({"value"}),
    "recall.prompt.balanced": frozenset({"text"}),
    "recall.prompt.balanced_belief": frozenset({"value"}),
    "recall.prompt.traps": frozenset({"text"}),
    "recall.prompt.summary": frozenset({"text"}),
    "recall.prompt.step": frozenset({"text"}),
    "recall.prompt.note": frozenset({"text"}),
    "recall.prompt.mood": frozenset({"text", "score"}),
    "insights.title": frozenset(),
    "insights.intro": frozenset({"minimum"}),
    "insights.too_few": frozenset({"what", "minimum", "unit", "are", "count"}),
    "insights.nothing": frozenset({"mood"}),
    "insights.mood_by_day.what": frozenset(),
    "insights.mood_by_day.unit": frozenset(),
    "insights.mood_by_day.text": frozenset({"days", "ratings", "average", "low", "high"}),
    "insights.mood_by_day.chart_title": frozenset(),
    "insights.mood_sessions.what": frozenset(),
    "insights.mood_sessions.unit": frozenset(),
    "insights.mood_sessions.rose": frozenset({"change", "count", "before", "after"}),
    "insights.mood_sessions.fell": frozenset({"change", "count", "before", "after"}),
    "insights.mood_sessions.same": frozenset({"change", "count", "before", "after"}),
    "insights.traps.what": frozenset(),
    "insights.traps.unit": frozenset(),
    "insights.traps.text": frozenset({"count", "list"}),
    "insights.traps.item": frozenset({"name", "count"}),
    "insights.traps.joiner": frozenset(),
    "insights.belief.what": frozenset(),
    "insights.belief.unit": frozenset(),
    "insights.belief.text": frozenset({"count", "hot", "balanced", "change"}),
    "insights.feelings.what": frozenset(),
    "insights.feelings.unit": frozenset(),
    "insights.feelings.text": frozenset({"count", "before", "after", "change"}),
    "insights.steps.what": frozenset(),
    "insights.steps.unit": frozenset(),
    "insights.steps.text": frozenset({"count", "followed"}),
    "opening.trap": frozenset({"name", "count"}),
    "opening.mood_rose": frozenset({"count", "change"}),
}


class WordsError(Exception):
    """A words file is missing or malformed (a packaging problem): the file is named."""


class Words:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or resources.prompts_dir()
        data = self._toml(self.folder / WORDS)
        self._templates: dict[str, string.Template] = {}
        for dotted, allowed in REQUIRED.items():
            node: Any = data
            for part in dotted.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, str) or (not node.strip() and dotted != "recall.and"):
                raise WordsError(f"{self.folder / WORDS} has no text for {dotted!r}")
            self._templates[dotted] = self._checked(node, allowed, f"{WORDS} {dotted}")
        block = self.folder / RECALL_BLOCK
        try:
            text = block.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise WordsError(f"prompt file {block} cannot be read: {exc}") from exc
        if not text:
            raise WordsError(f"prompt file {block} is empty")
        self._templates[RECALL_BLOCK] = self._checked(text, frozenset({"items"}), str(block))
        self.trap_names = self._trap_names(self.folder / "techniques" / "distortions.toml")

    @staticmethod
    def _toml(path: Path) -> dict:
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise WordsError(f"prompt file {path} cannot be read: {exc}") from exc

    @staticmethod
    def _checked(text: str, allowed: frozenset[str], where: str) -> string.Template:
        template = string.Template(text)
        if not template.is_valid():
            raise WordsError(f"{where} has a malformed $placeholder")
        unknown = set(template.get_identifiers()) - allowed
        if unknown:
            raise WordsError(f"{where} uses unknown placeholders: {', '.join(sorted(unknown))}")
        return template

    def _trap_names(self, path: Path) -> dict[Distortion, str]:
        data = self._toml(path)
        names = {}
        for key in Distortion:
            name = (data.get(key.value) or {}).get("name")
            if not name:
                raise WordsError(f"{path} has no name for {key.value!r}")
            names[key] = name
        return names

    def __call__(self, key: str, **values: object) -> str:
        """The text of ``key`` (``table.key`` in insights.toml, or memory_recall.md)."""
        return self._templates[key].safe_substitute({k: str(v) for k, v in values.items()})


@lru_cache(maxsize=1)
def words() -> Words:
    return Words()
