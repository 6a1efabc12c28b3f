"""The smaller holes of the red-team pass (issue 17, item 8). The stale .part file is in
test_overwrite.py, the symlinked log in test_logs.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pyrage
from textual import events

from app.export.age_file import MAGIC
from app.export.document import ExportDocument, render
from app.export.service import import_document
from app.store import Journal
from app.store.records import Note
from app.text import MAX_TEXT_CHARS
from app.tui.screens.chat import ChatScreen
from app.tui.screens.journal import NoteScreen
from app.tui.screens.unlock import UnlockScreen
from tests.conftest import PASSPHRASE, ROOT, haven_env, run_haven
from tests.test_tui import make_app, send, type_text, unlock

EXPORT_PASS = "export passphrase"


def import_(home, plaintext: bytes, tmp_path):
    path = tmp_path / "in.age"
    path.write_bytes(pyrage.passphrase.encrypt(plaintext, EXPORT_PASS))
    return run_haven(home, "import", str(path), env=haven_env(home, HAVEN_EXPORT_PASSPHRASE=EXPORT_PASS))


def test_two_notes_sharing_an_id_are_counted_honestly(tmp_path):
    home = tmp_path / "home"
    note = Note(body="first")
    doc = ExportDocument(notes=[note, note.model_copy(update={"body": "second"})])
    result = import_(home, render(doc, "json"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Imported 1 note." in result.stdout  # never "1 notes"
    assert "1 record appeared more than once in the file" in result.stdout
    again = import_(home, render(doc, "json"), tmp_path)
    assert "Imported nothing new." in again.stdout and "1 record was already" in again.stdout
    with Journal.open(home / "journal.db", PASSPHRASE) as journal:
        assert [n.body for n in journal.notes()] == ["first"]


def test_garbage_after_an_age_header_is_called_damaged(tmp_path):
    import os

    bad = tmp_path / "bad.age"
    bad.write_bytes(MAGIC + os.urandom(4000))
    for args in (["decrypt", str(bad)], ["import", str(bad)]):
        result = run_haven(tmp_path / "home", *args)
        assert result.returncode == 2
        assert "damaged" in result.stderr and "public key" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_note_longer_than_a_chat_message_is_refused_everywhere(tmp_path):
    home = tmp_path / "home"
    too_long = "x" * (MAX_TEXT_CHARS + 1)
    result = run_haven(home, "journal", "note", input=too_long)
    assert result.returncode == 2 and "200,000" in result.stderr
    doc = ExportDocument(notes=[Note(body=too_long)])
    imported = import_(home, render(doc, "json"), tmp_path)
    assert imported.returncode == 2 and "notes.0.body" in imported.stderr
    assert len(imported.stderr.strip().splitlines()) == 1
    fits = run_haven(home, "journal", "note", input="x" * MAX_TEXT_CHARS)
    assert fits.returncode == 0, fits.stderr


async def test_the_app_keeps_a_note_that_is_too_long(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(100, 32)) as pilot:
        await unlock(pilot)
        await pilot.press("f3")
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause()
        note = app.screen
        assert isinstance(note, NoteScreen)
        note.query_one("#note").text = "y" * (MAX_TEXT_CHARS + 5)
        note.action_save()
        await pilot.pause()
        assert app.screen is note and len(note.query_one("#note").text) == MAX_TEXT_CHARS + 5
        assert "200,000" in str(note.query_one("#problem").render())
        assert app.journal.notes() == []


def test_a_large_import_shows_progress_and_commits_in_batches(tmp_path):
    home = tmp_path / "home"
    doc = ExportDocument(notes=[Note(body=f"note {n}") for n in range(2_500)])
    result = import_(home, render(doc, "json"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Importing 2,500 records" in result.stderr
    assert "Imported 2,500 notes." in result.stdout
    # the progress a caller sees, batch by batch
    journal = Journal.create(tmp_path / "j.db", PASSPHRASE)
    seen: list[tuple[int, int]] = []
    import app.export.service as service

    old = service.BATCH_MAX
    service.BATCH_MAX = 500
    try:
        import_document(journal, doc, progress=lambda done, total: seen.append((done, total)))
    finally:
        service.BATCH_MAX = old
    assert seen[0] == (0, 2_500) and seen[-1] == (2_500, 2_500)
    assert len(seen) >= 6 and [d for d, _ in seen] == sorted(d for d, _ in seen)
    journal.close()


async def test_a_megabyte_pasted_into_the_passphrase_field_is_refused_at_once(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test() as pilot:
        screen = app.screen
        assert isinstance(screen, UnlockScreen)
        field = screen.query_one("#passphrase")
        field.post_message(events.Paste("p" * 1_000_000))
        await pilot.pause()
        assert field.value == ""
        assert "too long for a passphrase" in str(screen.query_one("#problem").render())
        assert screen.tries == 0
        await unlock(pilot)  # the app answers the next keys as ever
        assert isinstance(app.screen, ChatScreen)


def test_note_text_from_stdin_and_help_says_why(tmp_path):
    home = tmp_path / "home"
    saved = run_haven(home, "journal", "note", input="typed into stdin\nsecond line\n")
    assert saved.returncode == 0, saved.stderr
    mood = run_haven(home, "mood", "add", "6", "--note", "-", input="a mood note from stdin\n")
    assert mood.returncode == 0, mood.stderr
    listed = run_haven(home, "journal", "list").stdout
    assert "typed into stdin" in listed
    assert "a mood note from stdin" in run_haven(home, "mood", "list").stdout
    helped = run_haven(home, "journal", "note", "--help").stdout
    assert "ps" in helped and "stdin" in helped and "editor" in helped
    assert "ps" in run_haven(home, "mood", "add", "--help").stdout


# Another Haven holds a write transaction (as a long import used to) until told to stop.
WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from app.store import Journal
    journal = Journal.open(Path(sys.argv[1]), sys.argv[2])
    with journal.transaction():
        journal.add_note("written by the other Haven")
        print("holding", flush=True)
        sys.stdin.readline()
    journal.close()
    print("released", flush=True)
""")


async def test_sending_while_another_haven_writes_waits_and_duplicates_nothing(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test() as pilot:
        await unlock(pilot)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(app.paths.journal), PASSPHRASE],
                                  cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert writer.stdout.readline().strip() == "holding"
            await type_text(pilot, "sent while the journal was busy")
            await pilot.press("enter")
            # longer than the 5 s a write used to wait before "database is locked"
            deadline = time.monotonic() + 6.5
            while time.monotonic() < deadline:
                await pilot.pause(0.1)
            assert app.screen.replying  # still waiting, not failed
        finally:
            writer.stdin.write("go\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "released"
            writer.wait(timeout=30)
        for _ in range(200):
            await pilot.pause(0.05)
            if not app.screen.replying:
                break
        assert app.screen.query_one("#box").text == ""  # not put back: it was saved
        messages = app.journal.messages(app.companion.session.id)
        users = [m for m in messages if m.role == "user"]
        assert [m.content for m in users] == ["sent while the journal was busy"]
        assert messages[-1].role == "assistant" and messages[-1].status == "complete"
        assert messages[-1].content
        assert [n.body for n in app.journal.notes()] == ["written by the other Haven"]


async def test_a_failed_reply_after_the_message_was_saved_does_not_invite_a_duplicate(tmp_path):
    app, engine = make_app(tmp_path / "home")
    async with app.run_test() as pilot:
        await unlock(pilot)
        journal = app.journal
        real = journal.update_message

        def broken(*args, **kwargs):
            raise RuntimeError("the disk went away")

        journal.update_message = broken
        try:
            await send(pilot, "this one is saved")
        finally:
            journal.update_message = real
        assert app.screen.query_one("#box").text == ""
        users = [m for m in journal.messages(app.companion.session.id) if m.role == "user"]
        assert [m.content for m in users] == ["this one is saved"]
