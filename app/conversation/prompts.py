"""Load and render the prompt files in ``prompts/``.

Every file Haven needs is loaded at start-up: a missing file, or one that uses a
``$placeholder`` the code does not provide, is a :class:`PromptError` at once rather
than a surprise mid-conversation.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from app import resources
from app.cbt import Distortion

# file (relative to prompts/) -> the placeholders the code fills in
REQUIRED: dict[str, frozenset[str]] = {
    "companion.md": frozenset(),
    "opening.md": frozenset(),
    "opening_return.md": frozenset({"step"}),
    "checkin_offer.md": frozenset(),
    "memory.md": frozenset({"summary", "step_line"}),
    "fold_summary.md": frozenset(),
    "session_summary.md": frozenset(),
    "session_title.md": frozenset(),
    "thought_record_draft.md": frozenset({"distortion_keys"}),
    "techniques/checkin.md": frozenset(),
    "techniques/thought_record.md": frozenset(),
    "techniques/socratic.md": frozenset(),
    "techniques/behavioural_activation.md": frozenset(),
    "techniques/closing_summary.md": frozenset(),
    "techniques/between_session.md": frozenset(),
    "safety/crisis.md": frozenset({"emergency", "services"}),
    "safety/crisis_medical.md": frozenset({"emergency", "services"}),
    "safety/crisis_danger.md": frozenset({"emergency", "services"}),
    "safety/crisis_others.md": frozenset({"emergency", "services"}),
    "safety/crisis_followup.md": frozenset({"services", "sos", "new_session"}),
    "safety/elevated.md": frozenset({"services"}),
    "safety/mood_note.md": frozenset(),
    "safety/mood_note_heavy.md": frozenset({"sos"}),
    "safety/unsafe_reply.md": frozenset({"emergency", "services"}),
    "safety/unsafe_reply_identity.md": frozenset(),
    "safety/grounding.md": frozenset(),
    "safety/notice.md": frozenset({"data_dir"}),
}


class PromptError(Exception):
    """A prompt file is missing or malformed: a start-up error with the file named."""


@dataclass(frozen=True)
class ThinkingTrap:
    key: Distortion
    name: str
    definition: str
    example: str


class PromptLibrary:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or resources.prompts_dir()
        self._texts: dict[str, string.Template] = {}
        for name, allowed in REQUIRED.items():
            path = self.folder / name
            try:
                text = path.read_text(encoding="utf-8").strip()
            except FileNotFoundError as exc:
                raise PromptError(f"prompt file {path} is missing") from exc
            except (OSError, UnicodeDecodeError) as exc:
                raise PromptError(f"prompt file {path} cannot be read: {exc}") from exc
            if not text:
                raise PromptError(f"prompt file {path} is empty")
            template = string.Template(text)
            if not template.is_valid():
                raise PromptError(f"prompt file {path} has a malformed $placeholder")
            used = set(template.get_identifiers())
            if used - allowed:
                raise PromptError(
                    f"prompt file {path} uses unknown placeholders: {', '.join(sorted(used - allowed))}"
                )
            self._texts[name] = template
        self.traps = self._load_traps()

    def _load_traps(self) -> dict[Distortion, ThinkingTrap]:
        path = self.folder / "techniques" / "distortions.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PromptError(f"prompt file {path} cannot be read: {exc}") from exc
        traps = {}
        for key in Distortion:
            entry = data.get(key.value)
            if not entry or not all(entry.get(f) for f in ("name", "definition", "example")):
                raise PromptError(f"{path} has no complete entry for {key.value!r}")
            traps[key] = ThinkingTrap(key, entry["name"], entry["definition"], entry["example"])
        return traps

    def render(self, name: str, **values: str) -> str:
        try:
            template = self._texts[name]
        except KeyError as exc:
            raise PromptError(f"no prompt called {name!r}") from exc
        return template.safe_substitute(**values)

    def texts(self) -> list[str]:
        """Every prompt as written (placeholders unfilled): what a title must not echo."""
        return [template.template for template in self._texts.values()]

    def technique(self, mode: str) -> str:
        return self.render(f"techniques/{mode}.md")


@lru_cache(maxsize=1)
def prompt_library() -> PromptLibrary:
    return PromptLibrary()
