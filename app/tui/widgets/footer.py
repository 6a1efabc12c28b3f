"""The footer every screen shows: its keys, all of them in view at 80 columns.

Below ``NARROW`` columns the footer is compact (one space between a key and its label), and
a screen with many keys (the chat) can leave out the command palette's key there: Help (F1),
which stays in view, lists Ctrl+P with every other key.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

#: Below this many columns the footer (and the chat's sidebar) make room.
NARROW = 100


class HavenFooter(Footer):
    def __init__(self, *, palette_when_narrow: bool = True) -> None:
        super().__init__()
        self.palette_when_narrow = palette_when_narrow

    def on_mount(self) -> None:
        super().on_mount()
        self.fit(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self.fit(self.app.size.width)

    def fit(self, width: int) -> None:
        narrow = width < NARROW
        palette = self.palette_when_narrow or not narrow
        if (narrow, palette) != (self.compact, self.show_command_palette):
            self.compact = narrow
            self.show_command_palette = palette
            self.refresh(recompose=True)
