"""The journal as one list, newest first: sessions, notes and thought records (the
journal browser and `haven journal list` both show this)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.store import Journal
from app.text import one_line


@dataclass(frozen=True)
class Entry:
    kind: str  # "session", "note" or "thought_record"
    id: str
    created: datetime
    text: str
    session_id: str | None = None  # the session it opens (sessions, thought records)
    summary: str | None = None  # a session's closing summary


def session_name(title: str | None) -> str:
    """A session's title on one line, or "Untitled session" (as the sidebar names it)."""
    return one_line(title or "") or "Untitled session"


def timeline(journal: Journal) -> list[Entry]:
    entries = [Entry("session", s.id, s.started, session_name(s.title), s.id, s.summary)
               for s in journal.sessions()]
    entries += [Entry("note", n.id, n.created, n.body) for n in journal.notes()]
    entries += [Entry("thought_record", t.id, t.created,
                      t.situation or t.hot_thought or "Thought record", t.session_id)
                for t in journal.thought_records()]
    entries.sort(key=lambda e: e.created, reverse=True)
    return entries
