"""A mood rating (0-10) with named emotions: offered, always skippable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from app.cbt import EMOTIONS
from app.store.records import EmotionRating
from app.text import TextProblem, check_typed
from app.tui.screens.dialogs import DiscardGuard


@dataclass
class MoodResult:
    score: int
    emotions: list[EmotionRating]
    note: str | None


def parse_emotions(text: str) -> list[EmotionRating]:
    """'anxious 60, tired 40' (intensity optional, 50 by default) -> ratings."""
    out: list[EmotionRating] = []
    for part in text.replace(";", ",").split(","):
        words = part.replace("=", " ").split()
        if not words:
            continue
        intensity = 50
        if len(words) > 1:
            try:
                intensity = int(words[-1])
            except ValueError as exc:
                raise ValueError(f"{part.strip()!r}: give the intensity as a number 0-100") from exc
            words = words[:-1]
        try:
            out.append(EmotionRating(name=" ".join(words), intensity=intensity))
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from exc
    return out


class MoodScreen(DiscardGuard, ModalScreen[MoodResult | None]):
    BINDINGS = [Binding("escape", "skip", "Skip")]

    def __init__(self, closing: bool = False,
                 save: Callable[[MoodResult], object] | None = None) -> None:
        super().__init__()
        self.closing = closing
        self.save_step = save
        self.score: int | None = None

    def compose(self) -> ComposeResult:
        question = ("Before you go: how are you feeling now?" if self.closing
                    else "How are you feeling right now?")
        with VerticalScroll(classes="dialog"):
            yield Static(question)
            yield Static("0 = very low, 10 = very good", classes="hint")
            with Horizontal(id="scores"):
                for n in range(11):
                    yield Button(str(n), id=f"score-{n}")
            yield Static("Any emotions? (optional) e.g. anxious 60, tired 40", classes="hint")
            yield Input(placeholder="emotions", id="emotions")
            yield Static(f"Words like {', '.join(EMOTIONS[:6])}… ({len(EMOTIONS)} in all)",
                         classes="hint")
            yield Input(placeholder="a short note (optional)", id="note")
            yield Static("", id="problem", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Skip", id="skip")

    def on_mount(self) -> None:
        self.query_one("#score-5", Button).focus()
        self.mark_clean()

    def form_values(self) -> tuple:
        return (self.query_one("#emotions", Input).value, self.query_one("#note", Input).value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button_id = event.button.id or ""
        if button_id.startswith("score-"):
            self.score = int(button_id.split("-")[1])
            for button in self.query("#scores Button"):
                button.set_class(button is event.button, "chosen")
            self.query_one("#emotions", Input).focus()
        elif button_id == "save":
            self.save()
        elif button_id == "skip":
            self.action_skip()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.save()

    def save(self) -> None:
        problem = self.query_one("#problem", Static)
        if self.score is None:
            problem.update("Pick a number from 0 to 10 first (or Skip).")
            return
        try:
            emotions = parse_emotions(self.query_one("#emotions", Input).value)
        except ValueError as exc:
            problem.update(Text(str(exc)))
            return
        note = self.query_one("#note", Input).value.strip() or None
        if note is not None:
            try:
                check_typed(note, "The note")
            except TextProblem as exc:
                problem.update(Text(str(exc)))
                return
        self.save_and_close(MoodResult(self.score, emotions, note))

    def action_skip(self) -> None:
        self.close_guarded(lambda: self.dismiss(None))
