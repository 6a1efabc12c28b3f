"""The panel that stands out when the safety layer fires: real help first, then kind words.

Numbers come first at every size (the emergency line, then each service, one line each),
then the person's own safety plan, then Haven's words. Dismissing the panel never takes
the help away: the same services are written into the conversation, and the SOS key
brings them back.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from app.safety.resources import CountryResources, Situation, resource_lines
from app.safety.safety_plan import filled_steps, plan_text

TITLES: dict[str, str] = {
    "self": "You deserve support right now",
    "medical": "Please get medical help now",
    "danger": "Your safety comes first",
    "others": "Let's keep everyone safe",
    "elevated": "Checking in with you",
}


def resources_text(found: CountryResources, kind: Situation = "self") -> Text:
    """The help from :func:`resource_lines` (the same lines the conversation and the
    command line show), the emergency line and each service's name in bold."""
    (first, _), *services = resource_lines(found, kind)
    text = Text()
    text.append(first + "\n", style="bold")
    for lead, rest in services:
        text.append(f"• {lead}", style="bold")
        text.append(rest + "\n")
    text.rstrip()
    return text


def plan_rich(plan, title: bool = True) -> Text:
    """The person's safety plan, compact: each step they filled in, in their words."""
    text = Text()
    steps = filled_steps(plan)
    if not steps:
        return text
    if title:
        text.append(plan_text().title + "\n", style="bold underline")
    for step, value in steps:
        text.append(step.title + "\n", style="bold")
        for line in value.splitlines():
            if line.strip():
                text.append(f"  {line.strip()}\n")
    text.rstrip()
    return text


class CrisisPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", id="crisis-title")
        yield Static("", id="crisis-resources")
        yield Static("", id="crisis-plan")
        yield Static("", id="crisis-text")
        with Horizontal():
            yield Button("I've read this", id="crisis-dismiss", variant="default")
            yield Static("The numbers stay in the conversation. Ctrl+O: SOS, any time.",
                         id="crisis-hint")

    def show(self, level: str, message: str, found: CountryResources,
             kind: Situation = "self", plan=None) -> None:
        self.set_class(level == "elevated", "elevated")
        title = TITLES["elevated"] if level == "elevated" else TITLES.get(kind, TITLES["self"])
        self.query_one("#crisis-title", Static).update(title)
        self.query_one("#crisis-resources", Static).update(resources_text(found, kind))
        plan_view = self.query_one("#crisis-plan", Static)
        plan_view.update(plan_rich(plan))
        plan_view.display = bool(filled_steps(plan))
        self.query_one("#crisis-text", Static).update(Text(message))
        self.add_class("shown")
        self.scroll_home(animate=False)

    def hide(self) -> None:
        self.remove_class("shown")

    @on(Button.Pressed, "#crisis-dismiss")
    def _dismiss_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.hide()
