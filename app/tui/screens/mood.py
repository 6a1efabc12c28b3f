"""A mood rating (0-10) with named emotions: offered, always skippable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from app.cbt import EMOTIONS
from app.store.records import DEFAULT_INTENSITY, EmotionRating, parse_emotions
from app.text import TextProblem, check_typed
from app.tui.screens.dialogs import DiscardGuard


@dataclass
class MoodResult:
    score: int
    emotions: list[EmotionRating]
    note: str | None


def emotions_preview(text: str) -> str:
    """What the emotions field will save, in words: the person sees the default, never a
    silent 50."""
    try:
        ratings = parse_emotions(text)
    except ValueError:
        return ""
    if not ratings:
        return ""
    bare = [part for part in text.replace(";", ",").split(",")
            if part.split() and not part.replace("=", " ").split()[-1].removesuffix("%").isdigit()]
    said = "Will be saved as: " + ", ".join(f"{r.name} {r.intensity}" for r in ratings)
    if bare:
        said += (f" (no number given counts as {DEFAULT_INTENSITY}, halfway; "
                 "add one from 0 to 100 to change it)")
    return said


class MoodScreen(DiscardGuard, ModalScreen[MoodResult | None]):
    BINDINGS = [Binding("escape", "skip", "Skip"), Binding("ctrl+s", "save", "Save")]

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
            yield Static("0 = very low, 10 = very good (arrow keys move, Enter picks)",
                         id="score-read", classes="hint")
            with Horizontal(id="scores"):
                for n in range(11):
                    yield Button(str(n), id=f"score-{n}", classes="score")
            yield Static("Any emotions? (optional) In your own words, each with how strong "
                         "it is from 0 to 100, e.g. gutted 80, tired 40", classes="hint")
            yield Input(placeholder=f"e.g. {', '.join(EMOTIONS[:3])}", id="emotions",
                        select_on_focus=False)
            yield Static("", id="emotions-read", classes="hint")
            yield Input(placeholder="a short note (optional)", id="note", select_on_focus=False)
            yield Static("", id="problem", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Skip", id="skip")

    def on_mount(self) -> None:
        self.query_one("#score-5", Button).focus()
        self.mark_clean()

    def form_values(self) -> tuple:
        return (self.query_one("#emotions", Input).value, self.query_one("#note", Input).value)

    def choose(self, score: int) -> None:
        """Mark ``score`` as the rating, and say so (focus stays on the row)."""
        self.score = score
        for button in self.query("#scores Button"):
            button.set_class(button.id == f"score-{score}", "chosen")
        self.query_one("#problem", Static).update("")
        self.query_one("#score-read", Static).update(  # one line: nothing below moves
            f"Chosen: {score} of 10. Tab: emotions and a note (optional). Ctrl+S: save.")

    def on_key(self, event: events.Key) -> None:
        """The 0-10 row is one stop for Tab: left and right move along it (choosing as they
        go), Tab goes on to the emotions, Shift+Tab from there comes back to the row."""
        focused_id = (self.focused.id or "") if self.focused is not None else ""
        on_row = focused_id.startswith("score-")
        if on_row and event.key in ("left", "right"):
            score = int(focused_id.split("-")[1]) + (1 if event.key == "right" else -1)
            if 0 <= score <= 10:
                self.query_one(f"#score-{score}", Button).focus()
                self.choose(score)
        elif on_row and event.key == "tab":
            self.query_one("#emotions", Input).focus()
        elif focused_id == "emotions" and event.key == "shift+tab":
            self.query_one(f"#score-{5 if self.score is None else self.score}", Button).focus()
        else:
            return
        event.stop()
        event.prevent_default()

    @on(Input.Changed, "#emotions")
    def _emotions_changed(self, event: Input.Changed) -> None:
        self.query_one("#emotions-read", Static).update(Text(emotions_preview(event.value)))

    @on(Button.Pressed, ".score")
    def _score_pressed(self, event: Button.Pressed) -> None:
        self.choose(int((event.button.id or "score-0").split("-")[1]))

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.save()

    @on(Button.Pressed, "#skip")
    def _skip_pressed(self) -> None:
        self.action_skip()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.save()

    def action_save(self) -> None:
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
