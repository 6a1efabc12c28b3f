"""The sessions sidebar: pick one to open it; the screen does the rest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.message import Message
from textual.widgets import Label, ListItem, ListView

from app.store.records import Session
from app.text import one_line
from app.tui import keys


def friendly_day(moment: datetime) -> str:
    local = moment.astimezone()
    today = datetime.now().astimezone().date()
    delta = (today - local.date()).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "yesterday"
    return local.strftime("%d %b %Y")


def session_name(session: Session) -> str:
    """What a session is called everywhere in the app (the sidebar, the journal and the
    delete question agree): its title, or "Untitled session"; its day is shown beside it."""
    return one_line(session.title or "") or "Untitled session"


class SessionItem(ListItem):
    def __init__(self, session: Session) -> None:
        self.session = session
        title = session_name(session)
        label = Text(title, overflow="ellipsis", no_wrap=True)
        label.append(f"\n{friendly_day(session.started)}", style="dim")
        super().__init__(Label(label))


class SessionList(ListView):
    BINDINGS = [keys.DELETE.binding()]

    @dataclass
    class Opened(Message):
        session_id: str

    @dataclass
    class DeleteRequested(Message):
        session_id: str

    def action_request_delete(self) -> None:
        session = self.highlighted_session
        if session is not None:
            self.post_message(self.DeleteRequested(session.id))

    def set_sessions(self, sessions: list[Session], current: str | None) -> None:
        self.clear()
        for session in sessions:
            self.append(SessionItem(session))
        for index, session in enumerate(sessions):
            if session.id == current:
                self.index = index

    @property
    def highlighted_session(self) -> Session | None:
        item = self.highlighted_child
        return item.session if isinstance(item, SessionItem) else None

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, SessionItem):
            self.post_message(self.Opened(event.item.session.id))
