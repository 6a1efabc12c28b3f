"""The encrypted journal: a real SQLCipher file on disk."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from app.store import Journal, WrongPassphrase, schema
from app.store.records import AutomaticThought, EmotionRating, ThoughtRecord
from app.store.rekey import change_passphrase, rekey_path
from tests.conftest import PASSPHRASE, ROOT, run_haven

MARKER = "zebra-marmalade-4417"


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fill(journal: Journal, marker: str = MARKER) -> None:
    session = journal.start_session(model="test")
    journal.add_message(session.id, "user", f"I keep thinking about {marker} at work")
    journal.add_message(session.id, "assistant", f"That sounds hard. Tell me about {marker}?")
    journal.add_mood(4, [EmotionRating(name="anxious", intensity=70)], f"note {marker}")
    journal.add_note(f"Journal note about {marker}")
    journal.save_thought_record(ThoughtRecord(
        situation=f"Meeting about {marker}",
        automatic_thoughts=[AutomaticThought(text="They think I'm useless", hot=True)],
        evidence_against="My manager thanked me last week",
    ))


def test_no_plaintext_anywhere_in_the_data_dir(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    journal = Journal.create(home / "journal.db", PASSPHRASE)
    fill(journal)
    # while the journal is open the WAL holds recent pages: check it too
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name.endswith("-wal") for p in files)
    for path in files:
        data = path.read_bytes()
        assert MARKER.encode() not in data, path
        assert MARKER.encode("utf-16-le") not in data, path
        assert not data.startswith(b"SQLite format 3"), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    journal.close()
    for path in (p for p in home.rglob("*") if p.is_file()):
        assert MARKER.encode() not in path.read_bytes(), path


def test_cli_writes_leave_no_plaintext_and_private_permissions(haven_home):
    assert run_haven(haven_home, "mood", "add", "3", "--note", MARKER).returncode == 0
    assert run_haven(haven_home, "journal", "note", f"about {MARKER}").returncode == 0
    found = run_haven(haven_home, "journal", "search", MARKER)
    assert "**marmalade**" in found.stdout
    assert stat.S_IMODE(haven_home.stat().st_mode) == 0o700
    for path in haven_home.rglob("*"):
        if path.is_file():
            assert MARKER.encode() not in path.read_bytes(), path
            assert not path.read_bytes().startswith(b"SQLite format 3"), path
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        else:
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_wrong_passphrase_is_clear_and_changes_nothing(tmp_path):
    path = tmp_path / "journal.db"
    Journal.create(path, PASSPHRASE).close()
    before = digest(path)
    with pytest.raises(WrongPassphrase):
        Journal.open(path, "not the passphrase")
    assert digest(path) == before
    assert not (tmp_path / "journal.db-wal").exists()


def test_cli_wrong_passphrase_exit_2_one_line_file_unchanged(haven_home):
    assert run_haven(haven_home, "journal", "note", "hello").returncode == 0
    db = haven_home / "journal.db"
    before = digest(db)
    env = {k: v for k, v in os.environ.items()}
    env.update(HAVEN_HOME=str(haven_home), HAVEN_PASSPHRASE="wrong horse")
    result = run_haven(haven_home, "journal", "list", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "passphrase does not open" in result.stderr
    assert result.stdout == ""
    assert digest(db) == before


def test_migrations_from_empty_and_from_each_older_version(tmp_path):
    fresh = Journal.create(tmp_path / "fresh.db", PASSPHRASE)
    assert fresh.version == schema.LATEST_VERSION
    fresh.close()
    for version in range(1, schema.LATEST_VERSION):
        path = tmp_path / f"v{version}.db"
        old = Journal.create(path, PASSPHRASE, version=version)
        assert old.version == version
        session = old.start_session()
        old.add_message(session.id, "user", f"written at version {version} {MARKER}")
        old.add_note(f"an old note {MARKER}")
        old.close()
        upgraded = Journal.open(path, PASSPHRASE)
        assert upgraded.version == schema.LATEST_VERSION
        kinds = sorted(h.kind for h in upgraded.search(MARKER))
        assert kinds == ["message", "note"]  # the index was built for what was already there
        assert upgraded.integrity_problems() == []
        upgraded.close()


def _tables(journal: Journal) -> set[str]:
    return {name for (name,) in journal._conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_an_old_journal_with_a_settings_table_opens_and_loses_only_that_table(tmp_path):
    # The settings table (never read or written: settings live in settings.toml) is dropped
    # by a migration; the newest version that still had it must upgrade with nothing lost.
    with_table = []
    for version in range(1, schema.LATEST_VERSION):
        probe = Journal.create(tmp_path / f"probe{version}.db", PASSPHRASE, version=version)
        if "settings" in _tables(probe):
            with_table.append(version)
        probe.close()
    assert with_table, "no older version had a settings table"
    path = tmp_path / "journal.db"
    old = Journal.create(path, PASSPHRASE, version=with_table[-1])
    old._conn.execute("INSERT INTO settings (key, value) VALUES ('theme', '\"dark\"')")
    session = old.start_session()
    old.add_message(session.id, "user", f"written before the upgrade {MARKER}")
    old.add_mood(6, [EmotionRating(name="calm", intensity=40)], "a quiet evening")
    old.close()
    assert b"quiet evening" not in path.read_bytes()  # a real SQLCipher file
    upgraded = Journal.open(path, PASSPHRASE)
    assert upgraded.version == schema.LATEST_VERSION
    assert "settings" not in _tables(upgraded)
    assert [m.content for m in upgraded.messages(session.id)] == [
        f"written before the upgrade {MARKER}"]
    assert [(m.score, m.note) for m in upgraded.moods()] == [(6, "a quiet evening")]
    assert upgraded.integrity_problems() == []
    upgraded.close()
    fresh = Journal.create(tmp_path / "fresh.db", PASSPHRASE)
    assert "settings" not in _tables(fresh)
    fresh.close()


def test_search_snippets_newest_first_and_safe_queries(tmp_path):
    journal = Journal.create(tmp_path / "j.db", PASSPHRASE)
    journal.add_note("Walking in the park helped my mood")
    time.sleep(0.01)
    session = journal.start_session()
    msg = journal.add_message(session.id, "user", "The park was quiet and I felt calmer walking")
    hits = journal.search("walk park")
    assert [h.kind for h in hits] == ["message", "note"]
    assert hits[0].ref_id == msg.id and hits[0].session_id == session.id
    assert "\x02" in hits[0].snippet
    assert any(match for _, match in hits[0].segments())
    for nasty in ['"unbalanced', "AND OR NOT", "*", "park) OR (x", "NEAR(", ""]:
        journal.search(nasty)  # never an FTS syntax error
    journal.update_message(msg.id, "edited text about lakes")
    assert [h.kind for h in journal.search("park")] == ["note"]
    assert journal.search("lakes")[0].ref_id == msg.id
    journal.close()


def test_passphrase_change_rekeys_and_verifies(tmp_path):
    path = tmp_path / "journal.db"
    journal = Journal.create(path, PASSPHRASE)
    fill(journal)
    journal.close()
    change_passphrase(path, PASSPHRASE, "a brand new passphrase")
    with pytest.raises(WrongPassphrase):
        Journal.open(path, PASSPHRASE)
    reopened = Journal.open(path, "a brand new passphrase")
    assert len(reopened.search(MARKER)) == 5  # two messages, the mood note, note, record
    assert reopened.integrity_problems() == []
    reopened.close()
    assert not rekey_path(path).exists()


def test_a_crash_during_passphrase_change_leaves_the_old_journal(tmp_path, monkeypatch):
    path = tmp_path / "journal.db"
    journal = Journal.create(path, PASSPHRASE)
    fill(journal)
    journal.close()

    import app.store.rekey as rekey

    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(rekey.os, "replace", crash)
    with pytest.raises(OSError):
        change_passphrase(path, PASSPHRASE, "another passphrase")
    monkeypatch.undo()
    assert not rekey_path(path).exists()
    with Journal.open(path, PASSPHRASE) as still_old:
        assert len(still_old.search(MARKER)) == 5


def test_cli_passwd(haven_home):
    assert run_haven(haven_home, "journal", "note", f"before {MARKER}").returncode == 0
    env = dict(os.environ, HAVEN_HOME=str(haven_home), HAVEN_PASSPHRASE=PASSPHRASE,
               HAVEN_NEW_PASSPHRASE="short")
    assert run_haven(haven_home, "passwd", env=env).returncode == 2
    env["HAVEN_NEW_PASSPHRASE"] = "my new long passphrase"
    changed = run_haven(haven_home, "passwd", env=env)
    assert changed.returncode == 0, changed.stderr
    assert run_haven(haven_home, "journal", "list").returncode == 2  # old passphrase
    env = dict(env, HAVEN_PASSPHRASE="my new long passphrase")
    assert "marmalade" in run_haven(haven_home, "journal", "search", MARKER, env=env).stdout


@pytest.mark.parametrize("args, message", [
    (["mood", "add", "11"], "from 0 to 10"),
    (["mood", "add", "-1"], "from 0 to 10"),
    (["mood", "add", "seven"], "whole number"),
    (["mood", "add", "5", "--emotion", "anxious=101"], "0 to 100"),
    (["mood", "add", "5", "--emotion", "on edge!=10"], "letters only"),
    (["mood", "add", "5", "--emotion", "anxious"], "e.g. anxious=60"),
    (["mood", "add", "5", "--note", "   "], "empty"),
    (["journal", "note", "  "], "empty"),
    (["journal", "search", " "], "empty"),
])
def test_cli_bad_input_one_line_exit_2(haven_home, args, message):
    result = run_haven(haven_home, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_json_listings(haven_home):
    run_haven(haven_home, "mood", "add", "6", "--emotion", "calm=40", "--emotion", "tired=30")
    run_haven(haven_home, "journal", "note", "a quiet day")
    import json

    moods = json.loads(run_haven(haven_home, "mood", "list", "--json").stdout)
    assert moods[0]["score"] == 6 and {e["name"] for e in moods[0]["emotions"]} == {"calm", "tired"}
    items = json.loads(run_haven(haven_home, "journal", "list", "--json").stdout)
    assert items[0]["kind"] == "note" and items[0]["text"] == "a quiet day"
    hits = json.loads(run_haven(haven_home, "journal", "search", "quiet", "--json").stdout)
    assert hits[0]["snippet"] == "a **quiet** day"


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from app.store import Journal
    journal = Journal.open(Path(sys.argv[1]), sys.argv[2])
    session = journal.start_session()
    for i in range(20):
        journal.add_message(session.id, "user", f"message {i}")
        journal.add_message(session.id, "assistant", f"reply {i}")
    reply = journal.add_message(session.id, "assistant", "", status="partial")
    text = ""
    i = 0
    while True:
        text += f"token{i} "
        journal.update_message(reply.id, text, "partial")
        if i == 50:
            print("streaming", flush=True)
        i += 1
""")


def test_sigkill_mid_stream_loses_nothing_earlier(tmp_path):
    path = tmp_path / "journal.db"
    Journal.create(path, PASSPHRASE).close()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), PASSPHRASE], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "streaming"
    time.sleep(0.2)
    child.kill()
    child.wait()
    with Journal.open(path, PASSPHRASE) as journal:
        assert journal.integrity_problems() == []
        session = journal.sessions()[0]
        messages = journal.messages(session.id)
        assert [m.content for m in messages[:40]] == [
            text for i in range(20) for text in (f"message {i}", f"reply {i}")
        ]
        last = messages[-1]
        assert last.status == "partial" and last.content.startswith("token0 token1")


# --- search finds moods and sessions too (issue 16) --------------------------------------

def _before_mood_search() -> int:
    """The schema version just before the migration that indexed moods and sessions for
    search (found by what it creates, so renumbering migrations does not break this)."""
    return next(n for n, script in enumerate(schema.MIGRATIONS) if "search_mood_text" in script)


def test_search_finds_mood_notes_feelings_and_the_step_for_next_time(tmp_path):
    journal = Journal.create(tmp_path / "j.db", PASSPHRASE)
    session = journal.start_session()
    mood = journal.add_mood(3, [EmotionRating(name="gutted", intensity=80)],
                            "My manager said the report was late", session_id=session.id)
    journal.add_mood(6)  # a bare rating: nothing to find, nothing indexed
    journal.update_session(session.id, next_step="phone my sister on Sunday",
                           summary="We talked about the report.", title="A hard week")

    def kinds(text):
        return [(h.kind, h.ref_id) for h in journal.search(text)]

    assert kinds("manager") == [("mood", mood.id)]
    assert kinds("gutted") == [("mood", mood.id)]
    assert kinds("sister") == [("session", session.id)]
    hit = journal.search("sister")[0]
    assert hit.session_id == session.id  # the journal opens the session from the hit
    assert "phone my sister on Sunday" in hit.snippet.replace("\x02", "").replace("\x03", "")
    with journal._lock:  # the triggers keep up with a changed and a deleted entry
        journal._conn.execute("UPDATE mood_entries SET note = 'A quiet walk' WHERE id = ?",
                              (mood.id,))
    assert kinds("manager") == [] and kinds("walk") == [("mood", mood.id)]
    journal.update_session(session.id, next_step="go swimming")
    assert kinds("sister") == [] and kinds("swimming") == [("session", session.id)]
    with journal._lock:
        journal._conn.execute("DELETE FROM mood_entries WHERE id = ?", (mood.id,))
    journal.delete_session(session.id)
    assert kinds("walk") == [] and kinds("swimming") == [] and kinds("gutted") == []
    assert journal.integrity_problems() == []
    journal.close()


def test_an_existing_journal_migrates_and_its_old_mood_notes_become_searchable(tmp_path):
    path = tmp_path / "journal.db"
    old = Journal.create(path, PASSPHRASE, version=_before_mood_search())
    session = old.start_session()
    old.add_mood(4, [EmotionRating(name="wiped out", intensity=60)],
                 f"an old mood note about {MARKER}", session_id=session.id)
    old.update_session(session.id, next_step=f"an old step about {MARKER}")
    old.add_note(f"an old note {MARKER}")
    assert sorted(h.kind for h in old.search(MARKER)) == ["note"]  # before: moods unsearchable
    old.close()
    assert not path.read_bytes().startswith(b"SQLite format 3")  # a real SQLCipher file
    upgraded = Journal.open(path, PASSPHRASE)
    assert upgraded.version == schema.LATEST_VERSION
    assert sorted(h.kind for h in upgraded.search(MARKER)) == ["mood", "note", "session"]
    assert [h.kind for h in upgraded.search("wiped out")] == ["mood"]
    assert upgraded.integrity_problems() == []
    upgraded.close()
    for side in tmp_path.iterdir():
        if side.is_file():
            assert MARKER.encode() not in side.read_bytes(), side
