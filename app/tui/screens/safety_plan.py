"""The safety plan form: the six Stanley-Brown steps, in the person's own words.

Saved encrypted in the journal, shown first in a crisis and on the SOS screen. Leaving
with changes not saved asks first: nothing typed is lost by accident.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Header, Label, Static, TextArea

from app.safety.safety_plan import plan_text
from app.store.records import SafetyPlan
from app.tui.widgets.footer import HavenFooter


class SafetyPlanScreen(Screen[bool]):
    BINDINGS = [Binding("escape", "close", "Close"), Binding("ctrl+s", "save", "Save")]

    def __init__(self) -> None:
        super().__init__()
        self.plan: SafetyPlan | None = None

    def compose(self) -> ComposeResult:
        text = plan_text()
        self.plan = self.app.service.safety_plan()
        yield Header()
        with VerticalScroll():
            yield Static(text.intro, classes="hint")
            for step in text.steps:
                yield Label(step.title)
                yield Static(step.hint, classes="hint")
                value = getattr(self.plan, step.key, "") if self.plan else ""
                yield TextArea(value, id=step.key, soft_wrap=True)
            yield Static("", id="problem", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Close", id="close")
        yield HavenFooter()

    def on_mount(self) -> None:
        self.title = plan_text().title
        self.query_one(f"#{plan_text().steps[0].key}", TextArea).focus()

    def values(self) -> dict[str, str]:
        return {step.key: self.query_one(f"#{step.key}", TextArea).text
                for step in plan_text().steps}

    def changed(self) -> bool:
        saved = {k: getattr(self.plan, k, "") if self.plan else "" for k in self.values()}
        return self.values() != saved

    @on(Button.Pressed, "#save")
    def _save_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_save()

    @on(Button.Pressed, "#close")
    def _close_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_close()

    def action_save(self) -> None:
        plan = (self.plan or SafetyPlan()).model_copy(update=self.values())
        try:
            self.plan = self.app.service.save_safety_plan(plan)
        except Exception as exc:  # say what happened; what was typed stays in the form
            self.query_one("#problem", Static).update(f"Could not save: {exc}")
            return
        self.notify("Your safety plan is saved (encrypted, in your journal).")
        self.dismiss(True)

    def action_close(self) -> None:
        if not self.changed():
            self.dismiss(False)
            return
        from app.tui.screens.dialogs import ConfirmScreen

        def done(leave: bool | None) -> None:
            if leave:
                self.dismiss(False)

        self.app.push_screen(ConfirmScreen("Your changes to the safety plan are not saved. "
                                           "Leave without saving them?", "Leave without saving"),
                             done)
