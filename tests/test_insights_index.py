"""Issue 15: recall stays quick on a lived-in journal, and what made it quicker changes
nothing it finds (real SQLCipher journals; no timings here: `haven bench --store`)."""

from __future__ import annotations

import pytest

from app.insights import recall
from app.insights.bench import MESSAGES, _seed
from app.store import Journal
from app.store.records import now_utc
from tests.conftest import PASSPHRASE


@pytest.fixture
def lived_in(tmp_path):
    """Four months of thought records, summaries, notes and mood notes, each committed on
    its own as in real use (so the recall index is a pile of small pieces), and a few
    sessions that reached crisis."""
    journal = Journal.create(tmp_path / "journal.db", PASSPHRASE)
    _seed(journal, per_theme=4)
    yield journal
    journal.close()


def found(journal, session_id=None) -> list[list[str]]:
    return [[h.ref_id for h in journal.recall(text, session_id=session_id, limit=5)]
            for text in MESSAGES]


def pieces(journal) -> int:
    return journal._conn.execute("SELECT count(*) FROM recall_index_data").fetchone()[0]


def test_ending_a_session_tidies_the_index_and_recall_finds_the_same(lived_in):
    before = found(lived_in)
    assert sum(map(len, before)) > 10  # the themes are found ...
    assert before[MESSAGES.index("What's a good recipe for banana bread?")] == []  # ... and only they
    untidy = pieces(lived_in)
    session = lived_in.start_session()
    lived_in.add_message(session.id, "user", "I went for a walk by the canal")
    lived_in.update_session(session.id, summary="A walk helped.", ended=now_utc())
    assert pieces(lived_in) < untidy  # merged: what made recall slow
    assert found(lived_in) == before  # and the same items, in the same order


def test_crisis_sessions_stay_out_of_recall_however_the_index_is_kept(lived_in):
    crisis_sessions = {row[0] for row in lived_in._conn.execute(
        "SELECT session_id FROM messages WHERE risk_level = 'crisis'")}
    assert crisis_sessions
    theirs = {r.id for r in lived_in.thought_records() if r.session_id in crisis_sessions}
    for tidy in (False, True):
        if tidy:
            lived_in.tidy_recall_index()
        for text in MESSAGES:
            hits = lived_in.recall(text, limit=40, pool=400)
            assert not {h.ref_id for h in hits} & (theirs | crisis_sessions)
    # a session that reaches crisis later is left out from the next turn on
    exams = "Exam results come out soon and I can't stop worrying about failing"
    later = next(h.session_id for h in lived_in.recall(exams, limit=40) if h.session_id)
    lived_in.add_message(later, "system", "crisis services", risk_level="crisis")
    assert later not in {h.session_id for h in lived_in.recall(exams, limit=40, pool=400)}


def test_a_note_in_crisis_words_is_never_recalled_the_second_time_either(lived_in):
    words = ("presentation at work: I want to kill myself before the presentation, "
             "I have the pills ready")
    note = lived_in.add_note(words)
    text = "I have another presentation at work on Thursday"
    assert note.id in {h.ref_id for h in lived_in.recall(text, limit=40, pool=400)}
    for _ in range(2):  # the second time the risk check's answer is remembered
        assert note.id not in {i.ref_id for i in recall(lived_in, text, limit=10).items}


def test_a_failed_tidy_never_stops_a_session_from_ending(lived_in, caplog):
    from app.store.connection import DatabaseError

    class NoOptimize:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, *args):
            if "optimize" in sql:
                raise DatabaseError("database or disk is full")
            return self.conn.execute(sql, *args)

    caplog.set_level("INFO", logger="haven.store")
    real = lived_in._conn
    session = lived_in.start_session()
    lived_in._conn = NoOptimize(real)
    try:
        ended = lived_in.update_session(session.id, summary="A quiet talk.", ended=now_utc())
    finally:
        lived_in._conn = real
    assert ended.ended is not None and lived_in.session(session.id).ended is not None
    assert "recall index not merged" in caplog.text
    assert found(lived_in)  # recall still works on the unmerged index
