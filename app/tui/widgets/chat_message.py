"""One message in the conversation. The person's words are shown as plain text (never
interpreted as markup); Haven's replies are rendered as Markdown as they stream. Both go
through :mod:`app.text` first, so no stored text can send the terminal a control sequence."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Markdown, Static

from app.text import safe_rich, terminal_safe

LABELS = {"user": "You", "assistant": "Haven", "system": "Haven"}


class ChatMessage(Vertical):
    def __init__(self, role: str, content: str = "", note: str = "", message_id: str | None = None,
                 risk: str = "none") -> None:
        classes = f"{role} crisis" if risk == "crisis" and role == "system" else role
        super().__init__(classes=classes)
        self.role = role
        self.content = content
        self.note = note
        self.message_id = message_id
        self._stream = None

    def compose(self) -> ComposeResult:
        yield Static(LABELS[self.role], classes="who")
        if self.role == "user":
            yield Static(safe_rich(self.content), classes="body", markup=False)
        else:
            yield Markdown(terminal_safe(self.content), classes="body")
        yield Static(Text(self.note), classes="note", markup=False)

    def on_mount(self) -> None:
        self.query_one(".note", Static).display = bool(self.note)

    async def append(self, text: str) -> None:
        """Add streamed text to a reply."""
        self.content += text
        if self._stream is None:
            self._stream = Markdown.get_stream(self.query_one(Markdown))
        await self._stream.write(terminal_safe(text))

    async def replace(self, text: str) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.content = text
        await self.query_one(Markdown).update(terminal_safe(text))

    async def finish(self, note: str = "") -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.set_note(note)

    def set_note(self, note: str) -> None:
        self.note = note
        label = self.query_one(".note", Static)
        label.update(Text(note))
        label.display = bool(note)
