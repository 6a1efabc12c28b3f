"""Export a journal to an age file, and import an export back (merging by stable ids)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from app.export import age_file
from app.export.document import ExportDocument, Format, collect, parse, render
from app.paths import DataPaths
from app.store import Journal, JournalError
from app.store.connection import DatabaseError
from app.store.records import Message, MoodEntry, Note, ScreenerAnswer, Session, ThoughtRecord


@dataclass(frozen=True)
class ExportResult:
    path: Path
    counts: dict[str, int]
    size: int


def export_journal(
    journal: Journal,
    out: Path,
    *,
    passphrase: str | None = None,
    recipients: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    fmt: Format = "both",
) -> ExportResult:
    data = DataPaths(journal.path.parent)
    target = out.expanduser().resolve()
    journal_file = (target.parent == journal.path.parent.resolve()
                    and target.name.startswith(journal.path.name))
    if journal_file or data.owns(out):
        raise age_file.AgeError(
            f"{out} is one of Haven's own files (in {data.root}); choose a place outside "
            "Haven's data folder")
    doc = collect(journal, since, until)
    parsed_recipients = age_file.parse_recipients(recipients or [])
    ciphertext = age_file.encrypt(render(doc, fmt), passphrase=passphrase,
                                  recipients=parsed_recipients)
    age_file.write_encrypted(out, ciphertext)
    return ExportResult(path=out, counts=doc.counts, size=len(ciphertext))


_NAMES = {"sessions": ("session", "sessions"), "messages": ("message", "messages"),
          "mood_entries": ("mood entry", "mood entries"),
          "thought_records": ("thought record", "thought records"),
          "notes": ("note", "notes"), "safety_plan": ("safety plan", "safety plans"),
          "screener_answers": ("answer to the safety questions", "answers to the safety questions")}


def describe_counts(counts: dict[str, int]) -> str:
    """``{"notes": 1, "mood_entries": 2}`` -> "1 note, 2 mood entries" (never "1 notes")."""
    words = []
    for key, count in counts.items():
        one, many = _NAMES.get(key, (key.replace("_", " "), key.replace("_", " ")))
        words.append(f"{count:,} {one if count == 1 else many}")
    return ", ".join(words)


@dataclass(frozen=True)
class ImportResult:
    added: dict[str, int]
    already_there: dict[str, int]
    repeated: int = 0  # records that appeared more than once in the file (imported once)
    unlinked: int = 0  # moods and thought records whose session was in neither place


class ImportProblem(JournalError):
    """The export cannot be imported; nothing was written. One clear line."""


KINDS = ("sessions", "messages", "mood_entries", "thought_records", "notes", "screener_answers")
ImportProgress = Callable[[int, int], None]

# Each batch is its own short transaction, so the app (or another command) writing at the
# same time waits a moment, never the whole import; the pause between batches lets it in.
BATCH_SECONDS = 0.25
BATCH_MAX = 2_000
PAUSE_SECONDS = 0.03


def plan_import(journal: Journal, doc: ExportDocument) -> tuple[list[BaseModel], int, int]:
    """What to insert, in order, after checks that need no writing: every message's session
    is in the file or the journal (else nothing is imported); a mood or thought record
    whose session is in neither keeps its words and loses only the link; a record that
    appears twice in the file is imported once (and counted)."""
    session_ids = {s.id for s in doc.sessions}
    message_ids = {m.id for m in doc.messages}
    orphans = [m for m in doc.messages
               if m.session_id not in session_ids and not journal.has(Session, m.session_id)]
    if orphans:
        raise ImportProblem(
            f"{len(orphans)} message(s) in this export belong to a session that is neither in it "
            "nor in your journal (the file was changed or damaged); nothing was imported")
    records: list[BaseModel] = []
    seen: set[tuple[str, str]] = set()
    repeated = unlinked = 0
    for kind in KINDS:
        for record in getattr(doc, kind):
            key = (kind, record.id)
            if key in seen:
                repeated += 1
                continue
            seen.add(key)
            session_id = getattr(record, "session_id", None)
            if kind == "screener_answers" and session_id not in session_ids and not journal.has(
                    Session, session_id):
                unlinked += 1  # an answer means nothing without its session
                continue
            if kind == "screener_answers" and record.message_id and record.message_id not in message_ids \
                    and not journal.has(Message, record.message_id):
                record = record.model_copy(update={"message_id": None})
            if (kind in ("mood_entries", "thought_records") and session_id is not None
                    and session_id not in session_ids and not journal.has(Session, session_id)):
                record = record.model_copy(update={"session_id": None})
                unlinked += 1
            records.append(record)
    return records, repeated, unlinked


def import_document(journal: Journal, doc: ExportDocument,
                    progress: ImportProgress | None = None) -> ImportResult:
    """Merge ``doc`` into the journal by stable ids (what is there already is left alone).

    Everything that can be refused is refused before the first write. The records then go
    in short batches: if the import is stopped midway (a full disk, Ctrl-C), what was
    added stays, and running it again adds the rest without duplicating anything.
    """
    records, repeated, unlinked = plan_import(journal, doc)
    kind_of = {v: k for k, v in _KIND_TABLE.items()}
    added: dict[str, int] = {}
    skipped: dict[str, int] = {}
    done = committed = 0
    total = len(records)
    if progress:
        progress(0, total)
    try:
        while done < total:
            started = time.monotonic()
            with journal.transaction():
                while done < total:
                    record = records[done]
                    kind = kind_of[type(record)]
                    target = added if journal.insert_if_new(record) else skipped
                    target[kind] = target.get(kind, 0) + 1
                    done += 1
                    if done % 100 == 0 and (time.monotonic() - started > BATCH_SECONDS
                                            or done % BATCH_MAX == 0):
                        break
            committed = done
            if progress:
                progress(done, total)
            if done < total:
                time.sleep(PAUSE_SECONDS)
    except DatabaseError as exc:  # a constraint the checks above did not foresee
        raise ImportProblem(_stopped(committed, f"the export does not fit the journal ({exc})")) from exc
    except JournalError as exc:
        if not committed:
            raise
        raise ImportProblem(_stopped(committed, str(exc))) from exc
    if doc.safety_plan is not None:
        # a journal keeps one safety plan: an imported one never replaces one written here
        if journal.safety_plan() is None and journal.insert_if_new(doc.safety_plan):
            added["safety_plan"] = 1
        else:
            skipped["safety_plan"] = 1
    return ImportResult(added=added, already_there=skipped, repeated=repeated, unlinked=unlinked)


def _stopped(done: int, why: str) -> str:
    if not done:
        return f"{why}; nothing was imported"
    return (f"{why}; the import stopped after {done:,} records — run it again to add the rest "
            "(nothing is duplicated)")


_KIND_TABLE: dict[str, type[BaseModel]] = {
    "sessions": Session, "messages": Message, "mood_entries": MoodEntry,
    "thought_records": ThoughtRecord, "notes": Note, "screener_answers": ScreenerAnswer,
}


def read_export(data: bytes, *, passphrase: str | None = None,
                identities: list | None = None) -> ExportDocument:
    return parse(age_file.decrypt(data, passphrase=passphrase, identities=identities))
