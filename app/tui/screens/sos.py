"""SOS: help right now, from any screen (Ctrl+O or F12), before unlock and with no model.

Crisis services for the person's country come first, then their own safety plan (once the
journal is open), then a short grounding exercise: paced breathing and 5-4-3-2-1.
Nothing here involves the model.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Markdown, Static

from app.safety.resources import all_services_for
from app.safety.safety_plan import filled_steps
from app.tui.widgets.crisis_panel import plan_rich, resources_text

# Paced breathing: in for four counts, out for six.
BREATH = [("Breathe in", n) for n in range(1, 5)] + [("Breathe out", n) for n in range(1, 7)]


class SosScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self) -> None:
        super().__init__()
        self._beat = 0

    @property
    def journal(self):
        return getattr(self.app, "service", None)  # None before unlock

    def compose(self) -> ComposeResult:
        found = all_services_for(self.app.settings.country)
        with VerticalScroll(classes="dialog", id="sos"):
            yield Static("SOS — help right now", id="sos-title")
            yield Static(resources_text(found), id="sos-services")
            yield Static(self._plan_view(), id="sos-plan")
            with Horizontal(classes="buttons"):
                if self.journal is not None:
                    label = "Edit my safety plan" if self._plan() else "Write my safety plan"
                    yield Button(label, id="sos-edit-plan")
                yield Button("Close (Esc)", id="sos-close", variant="primary")
            yield Static("", id="sos-breath")
            yield Markdown(self.app.prompts.render("safety/grounding.md"), id="sos-grounding")

    def on_mount(self) -> None:
        self._breathe()
        self.set_interval(1.0, self._breathe)
        self.query_one("#sos", VerticalScroll).scroll_home(animate=False)
        self.query_one("#sos-close", Button).focus(scroll_visible=False)

    def _plan(self):
        if self.journal is None:
            return None
        try:
            plan = self.journal.safety_plan()
        except Exception:  # help must show even if the journal misbehaves
            return None
        return plan if filled_steps(plan) else None

    def _plan_view(self) -> Text:
        if self.journal is None:
            return Text("Your safety plan appears here once your journal is open.", style="italic")
        plan = self._plan()
        if plan is None:
            return Text("You have not written a safety plan yet. It is a short list, in your own "
                        "words, of what helps when things get very hard.", style="italic")
        return plan_rich(plan)

    def _breathe(self) -> None:
        phase, count = BREATH[self._beat % len(BREATH)]
        total = 4 if phase == "Breathe in" else 6
        dots = "● " * count + "○ " * (total - count)
        self.query_one("#sos-breath", Static).update(f"{phase}…  {dots.strip()}")
        self._beat += 1

    @on(Button.Pressed, "#sos-edit-plan")
    def _edit_plan_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        from app.tui.screens.safety_plan import SafetyPlanScreen

        self.app.push_screen(SafetyPlanScreen(), self._plan_closed)

    @on(Button.Pressed, "#sos-close")
    def _close_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_close()

    def _plan_closed(self, _result=None) -> None:
        self.query_one("#sos-plan", Static).update(self._plan_view())
        button = self.query("#sos-edit-plan")
        if button:
            button.first(Button).label = "Edit my safety plan" if self._plan() else \
                "Write my safety plan"

    def action_close(self) -> None:
        self.dismiss(None)
