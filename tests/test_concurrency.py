"""Two Havens at once (issue 17, items 1 and 8): real second processes on a real journal.

`haven passwd` replaces the journal file. A program that still had the old file open
would go on writing into the deleted file and everything it wrote would be lost, so
passwd refuses while anyone has the journal open, a command started during passwd waits
for it, and an open journal never writes into a file that is no longer the one on disk.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time

import pytest

from app.store import Journal, JournalReplaced
from app.store.lock import JournalLock, lock_path
from tests.conftest import PASSPHRASE, ROOT, haven_env, run_haven

NEW = "a brand new passphrase"

# A second Haven that keeps the journal open and writes when told to (as the app does).
HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from app.store import Journal
    journal = Journal.open(Path(sys.argv[1]), sys.argv[2])
    session = journal.start_session()
    print("open", flush=True)
    for line in sys.stdin:
        text = line.strip()
        if text == "close":
            break
        try:
            journal.add_message(session.id, "user", text)
            print("saved", flush=True)
        except Exception as exc:
            print(f"refused {type(exc).__name__}: {exc}", flush=True)
    journal.close()
    print("closed", flush=True)
""")


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_holder(path):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), PASSPHRASE], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "open"
    return child


def tell(child, text: str) -> str:
    child.stdin.write(text + "\n")
    child.stdin.flush()
    return child.stdout.readline().strip()


def passwd(home, current=PASSPHRASE, new=NEW):
    return run_haven(home, "passwd", env=haven_env(home, HAVEN_PASSPHRASE=current,
                                                   HAVEN_NEW_PASSPHRASE=new))


def test_passwd_refuses_while_another_haven_has_the_journal_open(haven_home):
    assert run_haven(haven_home, "journal", "note", "before").returncode == 0
    db = haven_home / "journal.db"
    holder = start_holder(db)
    try:
        assert tell(holder, "written while passwd was tried: one") == "saved"
        before = digest(db)
        refused = passwd(haven_home)
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("haven: ")
        assert "open elsewhere" in lines[0] and "nothing was changed" in lines[0]
        assert not lines[0].startswith("haven: Haven")  # the name once, not twice
        assert digest(db) == before  # not re-keyed, not replaced
        # the other Haven goes on writing into the real journal, not a deleted file
        assert tell(holder, "written after passwd was refused: two") == "saved"
    finally:
        assert tell(holder, "close") == "closed"
        holder.wait(timeout=30)
    with Journal.open(db, PASSPHRASE) as journal:
        texts = [m.content for s in journal.sessions() for m in journal.messages(s.id)]
    assert "written while passwd was tried: one" in texts
    assert "written after passwd was refused: two" in texts
    # once nobody has it open, passwd works and nothing written before is lost
    assert passwd(haven_home).returncode == 0
    with Journal.open(db, NEW) as journal:
        texts = [m.content for s in journal.sessions() for m in journal.messages(s.id)]
    assert "written after passwd was refused: two" in texts


async def test_passwd_refuses_while_the_app_is_open(tmp_path):
    """The app (under the pilot, in this process) holds the journal; passwd runs apart."""
    import asyncio

    from tests.test_tui import make_app, send, unlock

    home = tmp_path / "home"
    app, _ = make_app(home)
    async with app.run_test() as pilot:
        await unlock(pilot)
        await send(pilot, "said in the app before passwd")
        refused = await asyncio.to_thread(passwd, home)
        assert refused.returncode == 2 and "open elsewhere" in refused.stderr
        await send(pilot, "said in the app after passwd")
        shown = [m.content for m in app.journal.messages(app.companion.session.id)]
    assert "said in the app after passwd" in shown
    app.shutdown()
    with Journal.open(home / "journal.db", PASSPHRASE) as journal:
        texts = [m.content for s in journal.sessions() for m in journal.messages(s.id)]
    assert "said in the app before passwd" in texts and "said in the app after passwd" in texts


def test_a_command_started_during_passwd_waits_then_sees_the_new_file(haven_home):
    assert run_haven(haven_home, "journal", "note", "kept through the change").returncode == 0
    db = haven_home / "journal.db"
    held = JournalLock.exclusive_now(db)  # what passwd holds while it re-keys
    env = haven_env(haven_home, HAVEN_PASSPHRASE=NEW)
    reader = subprocess.Popen([sys.executable, "-m", "app", "journal", "list"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = haven_home / "logs" / "haven.log"
    try:
        for _ in range(600):  # until the reader says, in the log, that it is waiting
            if "waiting for it" in (log.read_text() if log.exists() else ""):
                break
            assert reader.poll() is None, reader.communicate()
            time.sleep(0.05)
        else:
            raise AssertionError("the reader never waited for the lock")
        from app.store.rekey import change_passphrase

        change_passphrase(db, PASSPHRASE, NEW, held=held)
    finally:
        held.release()
    out, err = reader.communicate(timeout=120)
    # it waited for the change and then opened the new file with the new passphrase
    assert reader.returncode == 0, err
    assert "kept through the change" in out


def test_an_open_journal_never_writes_into_a_replaced_file(haven_home):
    """Even if something ignores the lock and swaps the file, the writer fails loudly."""
    assert run_haven(haven_home, "journal", "note", "first").returncode == 0
    db = haven_home / "journal.db"
    holder = start_holder(db)
    try:
        copy = db.with_name("copy.db")
        copy.write_bytes(db.read_bytes())
        os.replace(copy, db)  # what a careless tool (or an old Haven) might do
        answer = tell(holder, "this must not vanish silently")
        assert answer.startswith("refused JournalReplaced"), answer
        assert "was not saved" in answer
    finally:
        tell(holder, "close")
        holder.wait(timeout=30)


def test_the_replaced_file_check_in_process(tmp_path):
    path = tmp_path / "journal.db"
    journal = Journal.create(path, PASSPHRASE)
    session = journal.start_session()
    os.replace(Journal.create(tmp_path / "other.db", PASSPHRASE).path, path)
    with pytest.raises(JournalReplaced):
        journal.add_message(session.id, "user", "lost?")
    journal.close()


def test_the_lock_file_is_private_and_never_followed(tmp_path):
    path = tmp_path / "journal.db"
    Journal.create(path, PASSPHRASE).close()
    assert oct(lock_path(path).stat().st_mode & 0o777) == "0o600"
    lock_path(path).unlink()
    victim = tmp_path / "victim"
    victim.write_text("x")
    lock_path(path).symlink_to(victim)
    from app.store import JournalError

    with pytest.raises(JournalError, match="symbolic link"):
        Journal.open(path, PASSPHRASE)
