"""The journal: sessions, messages, moods, thought records and notes in one SQLCipher file.

Every write is committed when it is made (autocommit, WAL, ``synchronous=FULL``), so
a crash or a kill loses at most the reply being typed. Methods take and return the
pydantic records of :mod:`app.store.records`; no raw rows leave this module.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from app.store import recall as recall_words
from app.store import schema
from app.store.connection import SQLITE_FULL, DatabaseError, connect, integrity_problems
from app.store.errors import (
    DiskFull,
    JournalBusy,
    JournalError,
    JournalExists,
    JournalMissing,
    JournalReplaced,
)
from app.store.lock import JournalLock
from app.store.records import (
    EmotionRating,
    Message,
    MessageStatus,
    MoodEntry,
    Note,
    RecallHit,
    RiskLevel,
    Role,
    SafetyPlan,
    ScreenerAnswer,
    ScreenerAnswerKind,
    SearchHit,
    Session,
    SessionStart,
    ThoughtRecord,
    iso_utc,
    now_utc,
)

R = TypeVar("R", bound=BaseModel)

_JSON_FIELDS = {"emotions", "moods", "automatic_thoughts", "moods_after", "distortions"}
_TABLES: dict[type[BaseModel], str] = {
    Session: "sessions",
    Message: "messages",
    MoodEntry: "mood_entries",
    ThoughtRecord: "thought_records",
    Note: "notes",
    SafetyPlan: "safety_plan",
    ScreenerAnswer: "screener_answers",
}


def _to_row(record: BaseModel) -> dict[str, Any]:
    row = record.model_dump(mode="json")
    for key in _JSON_FIELDS & row.keys():
        row[key] = json.dumps(row[key], ensure_ascii=False)
    return row


def _from_row(model: type[R], cursor, row) -> R:
    data = {col[0]: value for col, value in zip(cursor.description, row, strict=True)}
    for key in _JSON_FIELDS & data.keys():
        data[key] = json.loads(data[key])
    return model.model_validate(data)


def _fts_query(text: str) -> str:
    """Turn what a person typed into a safe FTS5 query: every word must appear."""
    words = re.findall(r"\w+", text, flags=re.UNICODE)
    if not words:
        return ""
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    quoted[-1] += "*"  # the last word may be half-typed
    return " ".join(quoted)


SQLITE_BUSY = 5

log = logging.getLogger("haven.store")


class Journal:
    """One open journal. While it is open it holds a shared lock on ``journal.db.lock``
    (see :mod:`app.store.lock`), and before every write it checks that the file on disk
    is still the one it opened, so it can never write into a replaced (deleted) file."""

    def __init__(self, path: Path, conn, file_lock: JournalLock | None = None) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()
        self._file_lock = file_lock
        self._identity = _identity(path)

    # ---- opening -------------------------------------------------------------------

    @staticmethod
    def exists(path: Path) -> bool:
        return path.is_file() and path.stat().st_size > 0

    @classmethod
    def create(cls, path: Path, passphrase: str, *, version: int | None = None) -> Journal:
        file_lock = JournalLock.exclusive_now(path)  # two first runs at once: one wins
        try:
            if cls.exists(path):
                raise JournalExists(path)
            path.unlink(missing_ok=True)
            journal = cls(path, connect(path, passphrase, must_exist=False), file_lock)
        except BaseException:
            file_lock.release()
            raise
        file_lock.share()
        try:
            journal.migrate(version)
        except BaseException:
            journal.close()
            raise
        return journal

    @classmethod
    def open(cls, path: Path, passphrase: str) -> Journal:
        if not cls.exists(path):
            raise JournalMissing(path)
        file_lock = JournalLock.shared(path)
        try:
            from app.store.rekey import discard_leftover

            # Under a shared lock no passphrase change is running, so a re-keyed copy
            # lying about is what a crash left: never the journal, always safe to remove.
            discard_leftover(path)
            journal = cls(path, connect(path, passphrase, must_exist=True), file_lock)
        except BaseException:
            file_lock.release()
            raise
        try:
            journal.migrate()
        except BaseException:
            journal.close()
            raise
        return journal

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    if self._is_same_file():
                        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except DatabaseError:
                    pass
                self._conn.close()
                self._conn = None
            if self._file_lock is not None:
                self._file_lock.release()
                self._file_lock = None

    # ---- writing safely ---------------------------------------------------------------

    def _is_same_file(self) -> bool:
        return self._identity is not None and _identity(self.path) == self._identity

    @contextmanager
    def _writing(self, doing: str = "save that") -> Iterator[None]:
        """Every write goes through here: it refuses to write into a replaced file, and
        turns a full disk or a long-held lock into one clear line."""
        with self._lock:
            if not self._is_same_file():
                raise JournalReplaced()
            try:
                yield
            except DatabaseError as exc:
                code = getattr(exc, "sqlite_errorcode", None)
                if code == SQLITE_FULL:
                    raise DiskFull(doing) from exc
                if code == SQLITE_BUSY:
                    raise JournalBusy(
                        f"could not {doing}: another Haven kept the journal busy for too long "
                        "(a large import?); nothing was saved — try again in a moment"
                    ) from exc
                raise

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- schema --------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self, target: int | None = None) -> None:
        target = schema.LATEST_VERSION if target is None else target
        with self._lock:
            current = self.version
            if current > schema.LATEST_VERSION:
                raise JournalError(
                    "this journal was written by a newer Haven; update Haven to open it"
                )
            for number in range(current + 1, target + 1):
                script = schema.MIGRATIONS[number - 1]
                try:
                    self._conn.executescript(
                        f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
                    )
                except DatabaseError as exc:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    if getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL:
                        raise DiskFull("upgrade the journal") from exc
                    raise JournalError(f"could not upgrade the journal: {exc}") from exc

    def integrity_problems(self) -> list[str]:
        with self._lock:
            return integrity_problems(self._conn)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            with self._writing("start saving"):
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            with self._writing():
                self._conn.execute("COMMIT")

    # ---- generic helpers -------------------------------------------------------------

    def _insert(self, record: R, *, or_ignore: bool = False) -> R:
        self._execute_insert(record, or_ignore=or_ignore)
        return record

    def _execute_insert(self, record: BaseModel, *, or_ignore: bool = False) -> int:
        """Insert ``record``; returns how many rows of its table were added (0 or 1)."""
        row = _to_row(record)
        cols = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
        with self._writing():
            cursor = self._conn.execute(
                f"{verb} INTO {_TABLES[type(record)]} ({cols}) VALUES ({marks})", row)
            return cursor.rowcount

    def _select(self, model: type[R], where: str = "", params: Any = (), order: str = "") -> list[R]:
        sql = f"SELECT * FROM {_TABLES[model]}"
        if where:
            sql += f" WHERE {where}"
        if order:
            sql += f" ORDER BY {order}"
        with self._lock:
            cursor = self._conn.execute(sql, params)
            return [_from_row(model, cursor, row) for row in cursor.fetchall()]

    def _one(self, model: type[R], record_id: str) -> R | None:
        found = self._select(model, "id = ?", (record_id,))
        return found[0] if found else None

    def _update(self, model: type[BaseModel], record_id: str, **fields: Any) -> None:
        if not fields:
            return
        row = _to_row(model.model_construct(**fields))
        values = {k: row[k] for k in fields}
        sets = ", ".join(f"{k} = :{k}" for k in values)
        with self._writing():
            cursor = self._conn.execute(
                f"UPDATE {_TABLES[model]} SET {sets} WHERE id = :_id", {**values, "_id": record_id}
            )
            if cursor.rowcount == 0:
                raise JournalError(f"no such {_TABLES[model][:-1].replace('_', ' ')}")

    # ---- sessions --------------------------------------------------------------------

    def start_session(self, model: str | None = None, mood_before: int | None = None) -> Session:
        return self._insert(Session(model=model, mood_before=mood_before))

    def session(self, session_id: str) -> Session | None:
        return self._one(Session, session_id)

    def sessions(self, limit: int | None = None) -> list[Session]:
        order = "started DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return self._select(Session, order=order)

    def update_session(self, session_id: str, **fields: Any) -> Session:
        Session.model_validate({**Session(id=session_id).model_dump(), **fields})
        self._update(Session, session_id, **fields)
        if fields.get("ended") is not None:
            self.tidy_recall_index()  # a quiet moment: the person has just closed a session
        found = self.session(session_id)
        assert found is not None
        return found

    def delete_session(self, session_id: str) -> None:
        with self._writing("delete the session"):
            self._conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def last_ended_session(self) -> Session | None:
        found = self._select(Session, "ended IS NOT NULL", order="ended DESC LIMIT 1")
        return found[0] if found else None

    # ---- messages --------------------------------------------------------------------

    def add_message(
        self,
        session_id: str,
        role: Role,
        content: str,
        status: MessageStatus = "complete",
        risk_level: RiskLevel = "none",
    ) -> Message:
        return self._insert(
            Message(session_id=session_id, role=role, content=content, status=status,
                    risk_level=risk_level)
        )

    def update_message(
        self, message_id: str, content: str, status: MessageStatus | None = None
    ) -> None:
        fields: dict[str, Any] = {"content": content}
        if status is not None:
            fields["status"] = status
        self._update(Message, message_id, **fields)

    def messages(self, session_id: str) -> list[Message]:
        return self._select(Message, "session_id = ?", (session_id,), order="created, rowid")

    # ---- moods -----------------------------------------------------------------------

    def add_mood(
        self,
        score: int,
        emotions: list[EmotionRating] | None = None,
        note: str | None = None,
        session_id: str | None = None,
    ) -> MoodEntry:
        return self._insert(
            MoodEntry(score=score, emotions=emotions or [], note=note, session_id=session_id)
        )

    def moods(self, since: datetime | None = None, until: datetime | None = None) -> list[MoodEntry]:
        where, params = _range("created", since, until)
        return self._select(MoodEntry, where, params, order="created")

    # ---- thought records ---------------------------------------------------------------

    def save_thought_record(self, record: ThoughtRecord) -> ThoughtRecord:
        with self._lock:
            if self._one(ThoughtRecord, record.id) is None:
                return self._insert(record)
            record = record.model_copy(update={"updated": now_utc()})
            # The fields themselves, not a dump: nested thoughts and moods stay models,
            # so writing the row serialises them as their types (a dump would hand dicts).
            fields = {name: getattr(record, name) for name in ThoughtRecord.model_fields
                      if name != "id"}
            self._update(ThoughtRecord, record.id, **fields)
            return record

    def thought_record(self, record_id: str) -> ThoughtRecord | None:
        return self._one(ThoughtRecord, record_id)

    def thought_records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[ThoughtRecord]:
        where, params = _range("created", since, until)
        return self._select(ThoughtRecord, where, params, order="created DESC")

    # ---- notes ---------------------------------------------------------------------------

    def add_note(self, body: str) -> Note:
        return self._insert(Note(body=body))

    def notes(self, since: datetime | None = None, until: datetime | None = None) -> list[Note]:
        where, params = _range("created", since, until)
        return self._select(Note, where, params, order="created DESC")

    # ---- the safety plan (one per journal) ------------------------------------------------

    def safety_plan(self) -> SafetyPlan | None:
        found = self._select(SafetyPlan, order="updated DESC LIMIT 1")
        return found[0] if found else None

    def save_safety_plan(self, plan: SafetyPlan) -> SafetyPlan:
        """Save the plan (a journal keeps one: saving replaces any other)."""
        with self.transaction():
            plan = plan.model_copy(update={"updated": now_utc()})
            if self._one(SafetyPlan, plan.id) is None:
                self._conn.execute("DELETE FROM safety_plan")
                return self._insert(plan)
            fields = plan.model_dump()
            fields.pop("id")
            self._update(SafetyPlan, plan.id, **fields)
            return plan

    # ---- Haven's direct safety questions -------------------------------------------------

    def ask_screener(self, session_id: str, question: str, round: int) -> ScreenerAnswer:
        return self._insert(ScreenerAnswer(session_id=session_id, question=question, round=round))

    def answer_screener(self, answer_id: str, answer: ScreenerAnswerKind,
                        message_id: str | None) -> None:
        self._update(ScreenerAnswer, answer_id, answer=answer, answered=now_utc(),
                     message_id=message_id)

    def screener_answers(self, session_id: str) -> list[ScreenerAnswer]:
        return self._select(ScreenerAnswer, "session_id = ?", (session_id,), order="asked, rowid")

    # ---- sessions and messages in a range (journal view, export) ----------------------

    def sessions_between(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[Session]:
        where, params = _range("started", since, until)
        return self._select(Session, where, params, order="started")

    # ---- search --------------------------------------------------------------------------

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        query = _fts_query(text)
        if not query:
            return []
        # Newest matches first, through the indexed search_map; snippets are made only for
        # the rows returned (they are the costly part).
        sql = (
            "SELECT m.kind, m.ref_id, m.created, m.session_id, "
            "snippet(search_index, 0, char(2), char(3), '…', 16) AS snippet "
            "FROM search_index JOIN search_map m ON m.rowid = search_index.rowid "
            "WHERE search_index MATCH :q AND search_index.rowid IN ("
            "  SELECT rowid FROM search_map INDEXED BY search_map_created WHERE rowid IN ("
            "    SELECT rowid FROM search_index WHERE search_index MATCH :q)"
            "  ORDER BY created DESC LIMIT :limit"
            ") ORDER BY m.created DESC"
        )
        with self._lock:
            cursor = self._conn.execute(sql, {"q": query, "limit": limit})
            return [_from_row(SearchHit, cursor, row) for row in cursor.fetchall()]

    # ---- recall: earlier items for the prompt (issue 15) ----------------------------------

    _RECALL_MODELS: dict[str, type[BaseModel]] = {
        "thought_record": ThoughtRecord, "session": Session, "note": Note, "mood": MoodEntry}

    def recall(
        self,
        text: str,
        *,
        session_id: str | None = None,
        exclude_ids: frozenset[str] | set[str] = frozenset(),
        limit: int = 3,
        pool: int = 40,
    ) -> list[RecallHit]:
        """The few earlier items most relevant to ``text`` (what the person just wrote).

        Looks only at what may be recalled — thought records, session summaries and steps,
        notes, mood notes (``recall_index``), never messages — ranked with FTS5's BM25
        (a thought record's situation, hot and balanced thought, a session's summary and
        step count double). Never returns anything from ``session_id`` (the current
        session) or from a session that reached crisis (any message stored at risk level
        ``crisis``), nor the items in ``exclude_ids`` (already in the prompt). An item must
        share enough meaningful words with ``text`` (:func:`app.store.recall.enough_shared`),
        so an unrelated message recalls nothing. Items saying the same thing are returned
        once. Everything happens inside the encrypted file (``temp_store=MEMORY``).
        """
        words = recall_words.terms(text)
        if not words or limit <= 0:
            return []
        # Where the time goes (``haven bench --store``): scoring the matches, and reading
        # the text of the ones looked at. So the BM25 query returns only (rowid, score);
        # the best ``pool`` are put in order here (score, then newest first), and an
        # item's text is read only when the loop reaches it, which is rarely more than a
        # handful. Matches beyond the pool rank too low to be worth a reply's time. The
        # word test and the duplicate test run on that text, and only an item that passes
        # both is loaded and checked against its session (current? reached crisis?).
        with self._lock:
            scored = self._conn.execute(
                "SELECT rowid, bm25(recall_index, 2.0, 1.0) FROM recall_index"
                " WHERE recall_index MATCH ?", (recall_words.any_of(words),)).fetchall()
            if not scored:
                return []
            scored.sort(key=lambda row: row[1])
            cut = scored[min(pool, len(scored)) - 1][1]
            score_of = {rowid: score for rowid, score in scored if score <= cut}  # ties kept
            candidates = self._conn.execute(
                "SELECT rowid, kind, ref_id, created FROM recall_map WHERE rowid IN"
                f" ({','.join('?' * len(score_of))})", tuple(score_of)).fetchall()
            candidates.sort(key=lambda row: row[3], reverse=True)  # newest first among equals
            candidates.sort(key=lambda row: score_of[row[0]])
            out: list[RecallHit] = []
            said: set[str] = set()
            crisis: set[str] | None = None
            for rowid, kind, ref_id, created in candidates[:pool]:
                if ref_id in exclude_ids:
                    continue
                gist, body = self._conn.execute(
                    "SELECT gist, body FROM recall_index WHERE rowid = ?", (rowid,)).fetchone()
                shared = recall_words.shared(words, f"{gist}\n{body}")
                if not recall_words.enough_shared(shared, len(words)):
                    continue
                key = " ".join(re.findall(r"\w+", gist.lower())) or ref_id
                if key in said:
                    continue
                record = self._one(self._RECALL_MODELS[kind], ref_id)  # type: ignore[type-var]
                if record is None:
                    continue
                in_session = record.id if isinstance(record, Session) else getattr(
                    record, "session_id", None)
                if in_session is not None:
                    if in_session == session_id:
                        continue
                    if crisis is None:  # one look, through the partial index messages_crisis
                        crisis = {row[0] for row in self._conn.execute(
                            "SELECT DISTINCT session_id FROM messages"
                            " WHERE risk_level = 'crisis'")}
                    if in_session in crisis:
                        continue
                said.add(key)
                out.append(RecallHit(kind=kind, ref_id=ref_id, created=created,
                                     session_id=in_session, score=score_of[rowid],
                                     shared=shared, record=record))
                if len(out) >= limit:
                    break
        return out

    def tidy_recall_index(self) -> None:
        """Merge the recall index into one piece (FTS5's ``optimize``).

        Every item is committed on its own, so a lived-in journal's recall index is a
        pile of small segments (and tombstones of edited items), and every recall reads
        all of them: that, more than the query itself, is what recall costs. Merging a
        year of items takes a few milliseconds; it is done when a session ends. A
        failure (a full disk) leaves the index as it was and costs only speed."""
        try:
            with self._writing("tidy the recall index"):
                self._conn.execute("INSERT INTO recall_index (recall_index) VALUES ('optimize')")
        except (DiskFull, JournalBusy, DatabaseError) as exc:
            log.info("recall index not merged (%s); recall stays correct", type(exc).__name__)

    def session_starts(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[SessionStart]:
        """Per session (oldest first): Haven's opening words, and whether the person wrote."""
        where, params = _range("s.started", since, until)
        sql = (
            "SELECT s.id, s.started, ("
            "  SELECT CASE WHEN role = 'system' THEN content END FROM messages"
            "  WHERE session_id = s.id ORDER BY created, rowid LIMIT 1) AS opening,"
            " EXISTS (SELECT 1 FROM messages WHERE session_id = s.id AND role = 'user')"
            " FROM sessions s" + (f" WHERE {where}" if where else "") + " ORDER BY s.started"
        )
        with self._lock:
            return [SessionStart(session_id=i, started=started, opening=opening,
                                 person_wrote=bool(wrote))
                    for i, started, opening, wrote in self._conn.execute(sql, params).fetchall()]

    # ---- import --------------------------------------------------------------------------

    def insert_if_new(self, record: BaseModel) -> bool:
        """Insert a record from an export unless one with its id is already here.

        (The row count of the insert itself says so; ``total_changes`` also counts what
        the search index's triggers and FTS5 write, so it cannot tell.)"""
        return self._execute_insert(record, or_ignore=True) == 1

    def has(self, model: type[BaseModel], record_id: str) -> bool:
        with self._lock:
            return self._conn.execute(
                f"SELECT 1 FROM {_TABLES[model]} WHERE id = ?", (record_id,)).fetchone() is not None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _range(column: str, since: datetime | None, until: datetime | None) -> tuple[str, tuple]:
    clauses, params = [], []
    if since is not None:
        clauses.append(f"{column} >= ?")
        params.append(iso_utc(since))
    if until is not None:
        clauses.append(f"{column} < ?")
        params.append(iso_utc(until))
    return " AND ".join(clauses), tuple(params)
