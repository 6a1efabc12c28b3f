"""Closing a session: the summary, and an optional small step for next time."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Markdown, Static

from app.text import terminal_safe
from app.tui.screens.dialogs import DiscardGuard


class ClosingScreen(DiscardGuard, ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "skip", "Skip"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, summary: str | None, save: Callable[[str], object] | None = None,
                 had_model: bool = False, writing: bool = False) -> None:
        super().__init__()
        self.summary = summary
        self.had_model = had_model  # no summary with a model: a crisis-only talk, or it failed
        self.writing = writing  # the model is still writing the summary: show_summary fills it
        self.save_step = save

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Static("Closing this session", classes="title")
            with Vertical(id="summary"):
                yield from self._summary_view()
            yield Static("Is there one small thing you'd like to try before next time? "
                         "It's fine to leave this empty.")
            yield Input(placeholder="e.g. a ten-minute walk after lunch", id="step",
                        select_on_focus=False)
            yield Static("", id="problem", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save and finish", id="save", variant="primary")
                yield Button("Skip", id="skip")

    def _summary_view(self) -> ComposeResult:
        if self.writing:
            yield Static("Writing a short summary… you can write your step meanwhile.",
                         classes="hint")
        elif self.summary:
            yield Markdown(terminal_safe(self.summary))
        else:
            yield Static("(No summary this time.)" if self.had_model else
                         "(No summary: there was no model to write one.)", classes="hint")

    def show_summary(self, summary: str | None) -> None:
        """The summary has come (None: none this time); what the person typed stays."""
        self.summary, self.writing = summary, False
        boxes = self.query("#summary") if self.is_mounted else ()
        if not boxes:  # not shown yet (compose draws it) or already closed
            return
        box = boxes.first(Vertical)
        box.remove_children()
        box.mount_all(list(self._summary_view()))

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self.mark_clean()

    def form_values(self) -> tuple:
        return (self.query_one(Input).value,)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.save_and_close(event.value.strip() or None)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#skip")
    def _skip_pressed(self) -> None:
        self.action_skip()

    def action_save(self) -> None:
        self.save_and_close(self.query_one(Input).value.strip() or None)

    def action_skip(self) -> None:
        self.close_guarded(lambda: self.dismiss(None))
