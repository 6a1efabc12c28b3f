"""The export document: every record as versioned JSON, and the same journal as Markdown.

The JSON is described by ``docs/export.schema.json`` (generated from
:class:`ExportDocument`; a test keeps the two in step). The plaintext inside an export
file is one UTF-8 text: Markdown, JSON, or (the default) Markdown followed by the JSON
in a fenced block, so that a person can read it and Haven can import it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app import __version__
from app.insights.figures import compute, facts_from_records
from app.insights.report import render_markdown
from app.insights.words import words
from app.safety.safety_plan import plan_markdown
from app.store import Journal
from app.store.records import (
    EmotionRating,
    Message,
    MoodEntry,
    Note,
    SafetyPlan,
    ScreenerAnswer,
    Session,
    ThoughtRecord,
    Timestamp,
    now_utc,
)
from app.text import MAX_TEXT_CHARS

# 2: adds safety_plan and screener_answers (a version 1 export still imports: it has neither)
# 3: adds automatic_thoughts[].belief (how much the person believed a thought, 0-100), so an
#    older Haven says "update Haven" instead of refusing the field
SCHEMA_VERSION = 3
SUPPORTED_VERSIONS = (1, 2, 3)
FENCE_OPEN = "```json haven-export"
Format = Literal["markdown", "json", "both"]


class ExportDocument(BaseModel):
    """A Haven journal export (schema version 3; versions 1 and 2 are read too)."""

    model_config = ConfigDict(extra="forbid", title="Haven journal export")

    schema_version: Literal[1, 2, 3] = SCHEMA_VERSION
    app: Literal["haven"] = "haven"
    app_version: str = __version__
    exported_at: Timestamp = Field(default_factory=now_utc)
    since: Timestamp | None = None
    until: Timestamp | None = None
    sessions: list[Session] = []
    messages: list[Message] = []
    mood_entries: list[MoodEntry] = []
    thought_records: list[ThoughtRecord] = []
    notes: list[Note] = []
    safety_plan: SafetyPlan | None = Field(
        None, description="the person's safety plan (always included, whatever the dates)")
    screener_answers: list[ScreenerAnswer] = Field(
        [], description="answers to Haven's direct safety questions, in the exported sessions")

    @property
    def counts(self) -> dict[str, int]:
        counts = {k: len(getattr(self, k)) for k in
                  ("sessions", "messages", "mood_entries", "thought_records", "notes")}
        if self.safety_plan is not None:
            counts["safety_plan"] = 1
        if self.screener_answers:
            counts["screener_answers"] = len(self.screener_answers)
        return counts


def collect(journal: Journal, since: datetime | None, until: datetime | None) -> ExportDocument:
    sessions = journal.sessions_between(since, until)
    messages = [m for s in sessions for m in journal.messages(s.id)]
    return ExportDocument(
        since=since,
        until=until,
        sessions=sessions,
        messages=messages,
        mood_entries=journal.moods(since, until),
        thought_records=sorted(journal.thought_records(since, until), key=lambda t: t.created),
        notes=sorted(journal.notes(since, until), key=lambda n: n.created),
        safety_plan=journal.safety_plan(),
        screener_answers=[a for s in sessions for a in journal.screener_answers(s.id)],
    )


def to_json(doc: ExportDocument) -> str:
    return doc.model_dump_json(indent=2)


def render(doc: ExportDocument, fmt: Format) -> bytes:
    if fmt == "json":
        text = to_json(doc)
    elif fmt == "markdown":
        text = to_markdown(doc)
    else:
        text = (to_markdown(doc) + "\n\n---\n\n## Machine-readable copy\n\n"
                "The same journal as JSON, for importing into Haven "
                "(schema: docs/export.schema.json in Haven's source).\n\n"
                f"{FENCE_OPEN}\n{to_json(doc)}\n```\n")
    return text.encode("utf-8")


class NotAnExport(ValueError):
    pass


def parse(plaintext: bytes) -> ExportDocument:
    """Read an export's plaintext (JSON, or Markdown with the fenced JSON copy)."""
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotAnExport("the decrypted file is not a Haven export (not text)") from exc
    stripped = text.lstrip()
    if stripped.startswith("{"):
        raw = stripped
    else:
        start = text.rfind(FENCE_OPEN)
        if start < 0:
            raise NotAnExport(
                "this export holds only Markdown, which Haven cannot import; export again with "
                "--format both or --format json"
            )
        body = text[start + len(FENCE_OPEN):]
        end = body.rfind("\n```")
        raw = body[:end] if end >= 0 else body
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        raise NotAnExport("the export's JSON is nested far too deeply to be a Haven export") from exc
    except ValueError as exc:
        raise NotAnExport("the export's JSON is damaged") from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if type(version) is not int or version not in SUPPORTED_VERSIONS:  # true == 1 in Python: not here
        raise NotAnExport(f"unsupported export schema version {version!r}; update Haven"
                          if isinstance(version, int) and not isinstance(version, bool) else
                          "this is not a Haven export (no usable schema_version)")
    try:
        doc = ExportDocument.model_validate(data)
    except RecursionError as exc:
        raise NotAnExport("the export's JSON is nested far too deeply to be a Haven export") from exc
    except ValidationError as exc:
        raise NotAnExport(_first_problem(exc)) from exc
    _check_lengths(doc)
    return doc


def _first_problem(exc: ValidationError) -> str:
    """A validation error in one line: where, and what (never the value, which is a
    person's text)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "the top level"
    more = exc.error_count() - 1
    also = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    message = " ".join(str(first.get("msg", "invalid")).split()).removeprefix("Value error, ")
    return f"the export's JSON does not match Haven's format at {where}: {message}{also}"


_LONG_FIELDS = {
    "sessions": ("title", "summary", "running_summary", "next_step"),
    "messages": ("content",),
    "mood_entries": ("note",),
    "thought_records": ("situation", "evidence_for", "evidence_against", "balanced_thought"),
    "notes": ("body",),
}
_PLAN_FIELDS = ("warning_signs", "coping", "distractions", "helpers", "professionals", "environment")


def _check_lengths(doc: ExportDocument) -> None:
    """No single piece of text longer than a person can send in one message."""
    records = {kind: getattr(doc, kind) for kind in _LONG_FIELDS}
    fields_of = dict(_LONG_FIELDS)
    if doc.safety_plan is not None:
        records["safety_plan"] = [doc.safety_plan]
        fields_of["safety_plan"] = _PLAN_FIELDS
    for kind, fields in fields_of.items():
        for index, record in enumerate(records[kind]):
            values = [(name, getattr(record, name) or "") for name in fields]
            values += [(f"automatic_thoughts.{n}", t.text)
                       for n, t in enumerate(getattr(record, "automatic_thoughts", []))]
            for name, value in values:
                if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
                    raise NotAnExport(
                        f"{kind}.{index}.{name} is {len(value):,} characters; Haven keeps up to "
                        f"{MAX_TEXT_CHARS:,} in one piece, so this file was not made by Haven"
                    )


# ---- Markdown ---------------------------------------------------------------------------

def _local(moment: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return moment.astimezone().strftime(fmt)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return re.sub(r"\r?\n", "<br>", text.strip()).replace("|", "\\|") or " "


def _quote(text: str) -> str:
    return "\n".join("> " + line if line.strip() else ">" for line in text.strip().splitlines())


def _moods(moods: list[EmotionRating]) -> str:
    return ", ".join(f"{m.name} {m.intensity}" for m in moods)



def _session_md(session: Session, messages: list[Message]) -> list[str]:
    out = [f"## {_local(session.started)} — Session: {session.title or 'Untitled'}", ""]
    moods = []
    if session.mood_before is not None:
        moods.append(f"mood at the start {session.mood_before}/10")
    if session.mood_after is not None:
        moods.append(f"at the end {session.mood_after}/10")
    if moods:
        out += [f"*{'; '.join(moods).capitalize()}*", ""]
    if session.summary:
        out += ["**Summary**", "", _quote(session.summary), ""]
    if session.next_step:
        out += [f"**Between-session step:** {session.next_step}", ""]
    for m in messages:
        who = {"user": "You", "assistant": "Haven", "system": "Haven (notice)"}[m.role]
        flag = {"partial": " *(interrupted)*", "cancelled": " *(stopped)*"}.get(m.status, "")
        if not m.content.strip():
            continue
        out += [f"**{who}** · {_local(m.created, '%H:%M')}{flag}", "", _quote(m.content), ""]
    return out


def _thought_record_md(t: ThoughtRecord) -> list[str]:
    thoughts = "<br>".join(
        ("🔥 " if th.hot else "") + _cell(th.text)
        + (f" (belief {th.belief}/100)" if th.belief is not None else "")
        for th in t.automatic_thoughts
    )
    belief = f" (belief {t.balanced_belief}/100)" if t.balanced_belief is not None else ""
    rows = [
        ("Situation", _cell(t.situation)),
        ("Moods (0–100)", _cell(_moods(t.moods))),
        ("Automatic thoughts (🔥 = hot)", thoughts or " "),
        ("Evidence for", _cell(t.evidence_for)),
        ("Evidence against", _cell(t.evidence_against)),
        ("Balanced thought", _cell(t.balanced_thought) + belief),
        ("Moods re-rated", _cell(_moods(t.moods_after))),
        ("Thinking traps", _cell(", ".join(words().trap_names[d] for d in t.distortions))),
    ]
    return [f"## {_local(t.created)} — Thought record", "", "| Column | Entry |", "|---|---|",
            *[f"| {k} | {v} |" for k, v in rows], ""]


def insights_markdown(doc: ExportDocument) -> list[str]:
    """The "Insights" section: the figures of ``haven insights``, worked out from the
    exported records (the same period), each with the entries it rests on."""
    facts = facts_from_records(doc.sessions, doc.messages, doc.mood_entries, doc.thought_records)
    return render_markdown(compute(facts, since=doc.since, until=doc.until))


def to_markdown(doc: ExportDocument) -> str:
    span = ""
    if doc.since or doc.until:
        span = (f" · from {_local(doc.since, '%Y-%m-%d') if doc.since else 'the beginning'}"
                f" to {_local(doc.until, '%Y-%m-%d') if doc.until else 'now'}")
    lines = [
        "# Haven journal",
        "",
        f"Exported {_local(doc.exported_at)}{span} · Haven {doc.app_version}",
        "",
        "> Private: personal reflections written with Haven, a self-help tool (not therapy).",
        "",
    ]
    plan = plan_markdown(doc.safety_plan)
    if plan:
        lines += [plan, "*Written by you in Haven; kept encrypted in your journal.*", ""]
    lines += insights_markdown(doc)
    by_session: dict[str, list[Message]] = {}
    for m in doc.messages:
        by_session.setdefault(m.session_id, []).append(m)
    entries: list[tuple[datetime, list[str]]] = []
    for s in doc.sessions:
        entries.append((s.started, _session_md(s, by_session.get(s.id, []))))
    for e in doc.mood_entries:
        body = [f"## {_local(e.created)} — Mood {e.score}/10", ""]
        if e.emotions:
            body += [f"Emotions: {_moods(e.emotions)}", ""]
        if e.note:
            body += [_quote(e.note), ""]
        entries.append((e.created, body))
    for t in doc.thought_records:
        entries.append((t.created, _thought_record_md(t)))
    for n in doc.notes:
        entries.append((n.created, [f"## {_local(n.created)} — Note", "", _quote(n.body), ""]))
    entries.sort(key=lambda item: item[0])
    if not entries:
        lines += ["*Nothing in this period.*", ""]
    for _, body in entries:
        lines += body
    return "\n".join(lines).rstrip() + "\n"
