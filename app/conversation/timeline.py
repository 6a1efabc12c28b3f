"""The journal as one list, newest first: sessions, notes and thought records (the
journal browser and `haven journal list` both show this)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.store import Journal


@dataclass(frozen=True)
class Entry:
    kind: str  # "session", "note" or "thought_record"
    id: str
    created: datetime
    text: str
    session_id: str | None = None  # the session it opens (sessions, thought records)
    summary: str | None = None  # a session's closing summary


def timeline(journal: Journal) -> list[Entry]:
    entries = [Entry("session", s.id, s.started, s.title or "Untitled session", s.id, s.summary)
               for s in journal.sessions()]
    entries += [Entry("note", n.id, n.created, n.body) for n in journal.notes()]
    entries += [Entry("thought_record", t.id, t.created,
                      t.situation or t.hot_thought or "Thought record", t.session_id)
                for t in journal.thought_records()]
    entries.sort(key=lambda e: e.created, reverse=True)
    return entries
