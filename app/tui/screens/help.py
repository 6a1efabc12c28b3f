"""Help: the keys, and what Haven is and is not (the first-run notice, always here)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

KEYS = """
# Keys

| Key | What it does |
|---|---|
| Ctrl+O or F12 | **SOS**: crisis services, your safety plan, a grounding exercise (on every screen) |
| Enter | send your message (Ctrl+J adds a new line) |
| Esc | stop Haven's reply |
| Ctrl+N | new session |
| F2 | mood check-in |
| Ctrl+T | thought record |
| Ctrl+G | end the session (summary, a step for next time, closing mood) |
| Ctrl+R | rename the session |
| Delete | delete the highlighted session (in the sidebar; asks first) |
| Ctrl+B | show or hide the sessions sidebar |
| F3 | journal: sessions, notes, thought records, search, mood chart |
| F4 | models: download, import, switch |
| F8 | settings (country for crisis resources, generation, theme) |
| F9 | export an encrypted copy of your journal |
| Ctrl+P | every action, by name (also: Safety plan) |
| Ctrl+Q | quit |
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close"), Binding("f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Markdown(KEYS)
            yield Markdown(self.app.prompts.render("safety/notice.md",
                                                   data_dir=str(self.app.paths.root)))

    def action_close(self) -> None:
        self.dismiss(None)
