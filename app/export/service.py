"""Export a journal to an age file, and import an export back (merging by stable ids)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from app.export import age_file
from app.export.document import ExportDocument, Format, collect, parse, render
from app.store import Journal


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
    doc = collect(journal, since, until)
    parsed_recipients = age_file.parse_recipients(recipients or [])
    ciphertext = age_file.encrypt(render(doc, fmt), passphrase=passphrase,
                                  recipients=parsed_recipients)
    age_file.write_encrypted(out, ciphertext)
    return ExportResult(path=out, counts=doc.counts, size=len(ciphertext))


@dataclass(frozen=True)
class ImportResult:
    added: dict[str, int]
    already_there: dict[str, int]


def import_document(journal: Journal, doc: ExportDocument) -> ImportResult:
    added: dict[str, int] = {}
    skipped: dict[str, int] = {}
    with journal.transaction():
        for kind in ("sessions", "messages", "mood_entries", "thought_records", "notes",
                     "screener_answers"):
            for record in getattr(doc, kind):
                if journal.insert_if_new(record):
                    added[kind] = added.get(kind, 0) + 1
                else:
                    skipped[kind] = skipped.get(kind, 0) + 1
        # a journal keeps one safety plan: an imported one never replaces one written here
        if doc.safety_plan is not None:
            if journal.safety_plan() is None and journal.insert_if_new(doc.safety_plan):
                added["safety_plan"] = 1
            else:
                skipped["safety_plan"] = 1
    return ImportResult(added=added, already_there=skipped)


def read_export(data: bytes, *, passphrase: str | None = None,
                identities: list | None = None) -> ExportDocument:
    return parse(age_file.decrypt(data, passphrase=passphrase, identities=identities))
