"""The panel that stands out when the safety layer fires: a kind message and real help."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Static

from app.safety.resources import CountryResources


def resources_text(found: CountryResources) -> Text:
    text = Text()
    text.append(f"In danger or hurt? Call {found.emergency} now.\n", style="bold")
    for service in found.services:
        text.append(f"• {service.name}: ", style="bold")
        text.append(service.how)
        if service.hours:
            text.append(f" ({service.hours})")
        text.append("\n")
    return text


class CrisisPanel(Vertical):
    DEFAULT_CSS = """
    CrisisPanel { height: auto; max-height: 60%; border: heavy $error; background: $error 15%;
                  padding: 0 1; margin: 0 0 1 0; display: none; overflow-y: auto; }
    CrisisPanel.elevated { border: heavy $warning; background: $warning 10%; }
    CrisisPanel.shown { display: block; }
    CrisisPanel #crisis-title { text-style: bold; }
    CrisisPanel Horizontal { height: auto; }
    """

    @dataclass
    class Dismissed(Message):
        panel: CrisisPanel

    def compose(self) -> ComposeResult:
        yield Static("", id="crisis-title")
        yield Static("", id="crisis-text")
        yield Static("", id="crisis-resources")
        with Horizontal():
            yield Button("I've read this", id="crisis-dismiss", variant="default")

    def show(self, level: str, message: str, found: CountryResources) -> None:
        self.set_class(level == "elevated", "elevated")
        title = "You deserve support right now" if level == "crisis" else "Checking in with you"
        self.query_one("#crisis-title", Static).update(title)
        self.query_one("#crisis-text", Static).update(Text(message))
        self.query_one("#crisis-resources", Static).update(resources_text(found))
        self.add_class("shown")
        self.scroll_home(animate=False)

    def hide(self) -> None:
        self.remove_class("shown")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "crisis-dismiss":
            event.stop()
            self.hide()
            self.post_message(self.Dismissed(self))
