"""First run: what Haven is and is not, acknowledged once (always reachable from Help)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Header, Markdown

from app.tui.widgets.footer import HavenFooter


class WelcomeScreen(Screen):
    BINDINGS = [("enter", "acknowledge", "I understand")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Markdown(self.app.prompts.render("safety/notice.md",
                                                   data_dir=str(self.app.paths.root)))
            with Horizontal(classes="buttons"):
                yield Button("I understand — continue", id="ack", variant="primary")
        yield HavenFooter()

    # No focus on the button at mount: that would scroll the notice to its end and hide its
    # first, most important lines. Enter anywhere on this screen acknowledges.

    @on(Button.Pressed, "#ack")
    def _ack_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_acknowledge()

    def action_acknowledge(self) -> None:
        self.app.after_notice()
