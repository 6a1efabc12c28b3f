"""One line under the conversation: the model's state and what Haven is doing."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from app.text import one_line


class StatusLine(Static):
    def __init__(self) -> None:
        super().__init__("", markup=False)
        self.model = ""
        self.activity = ""

    def set_model(self, text: str) -> None:
        self.model = text
        self._refresh()

    def set_activity(self, text: str) -> None:
        self.activity = text
        self._refresh()

    def _refresh(self) -> None:
        line = Text(one_line(self.model))  # a model's name or error can come from files
        if self.activity:
            line.append("  ·  ")
            line.append(self.activity, style="bold")
        self.update(line)
