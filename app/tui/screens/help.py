"""Help: the keys, and what Haven is and is not (the first-run notice, always here)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from app.tui import keys

KEYS = keys.help_table()


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close"), Binding("f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Markdown(KEYS)
            yield Markdown(self.app.prompts.render("safety/notice.md",
                                                   data_dir=str(self.app.paths.root)))

    def action_close(self) -> None:
        self.dismiss(None)
