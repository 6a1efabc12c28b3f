"""A full disk is not a wrong passphrase (issue 17, item 2): on a real, small tmpfs.

The data folder lives on a tmpfs of its own, filled to the last byte. Mounting needs
root (or a user namespace); where it is not permitted the tests skip, saying so — also
under CI, since a CI machine that cannot mount cannot run them at all.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid

import pytest

from app.store import Journal
from tests.conftest import PASSPHRASE, run_haven


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs mounted for this test only."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    tried = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
                           capture_output=True, text=True)
    if tried.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({tried.stderr.strip() or 'mount failed'})"
                    "; the full-disk tests need it")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill_up(folder) -> None:
    """Take every free byte of the filesystem (free it again with :func:`free_up`)."""
    fd = os.open(folder / "ballast", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = 1 << 20
        while chunk:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError:
                chunk //= 2
    finally:
        os.close(fd)
    assert os.statvfs(folder).f_bavail == 0


def free_up(folder) -> None:
    (folder / "ballast").unlink(missing_ok=True)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_on_a_full_disk_says_so_and_never_blames_the_passphrase(small_disk):
    home = small_disk / "haven"
    assert run_haven(home, "journal", "note", "written before the disk filled").returncode == 0
    db = home / "journal.db"
    before = digest(db)
    fill_up(small_disk)
    for args in (["journal", "list"], ["journal", "note", "one more"], ["mood", "list"]):
        result = run_haven(home, *args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith("haven: ") and "disk is full" in lines[0], lines[0]
        assert "passphrase" not in lines[0]
    assert digest(db) == before
    # a wrong passphrase on the same full disk is still called a wrong passphrase
    wrong = run_haven(home, "journal", "list",
                      env={**os.environ, "HAVEN_HOME": str(home), "HAVEN_PASSPHRASE": "wrong horse"})
    assert wrong.returncode == 2 and "passphrase does not open" in wrong.stderr
    free_up(small_disk)
    listed = run_haven(home, "journal", "list")
    assert listed.returncode == 0 and "written before the disk filled" in listed.stdout


async def test_app_unlock_on_a_full_disk_is_not_a_failed_try(small_disk):
    from app.tui.screens.chat import ChatScreen
    from app.tui.screens.unlock import UnlockScreen
    from tests.test_tui import make_app, type_text

    home = small_disk / "haven"
    app, _ = make_app(home)
    with Journal.open(home / "journal.db", PASSPHRASE) as journal:
        journal.add_note("kept safe")
    fill_up(small_disk)
    async with app.run_test() as pilot:
        screen = app.screen
        assert isinstance(screen, UnlockScreen)
        for _ in range(4):  # more than the three tries a wrong passphrase gets
            await type_text(pilot, PASSPHRASE) if not screen.query_one("#passphrase").value else None
            await pilot.press("enter")
            for _ in range(80):
                await pilot.pause(0.05)
                problem = str(screen.query_one("#problem").render())
                if "disk is full" in problem:
                    break
            assert "disk is full" in problem and "did not count as a try" in problem
            assert "passphrase does not open" not in problem
        assert screen.tries == 0 and app.is_running
        free_up(small_disk)
        await pilot.press("enter")  # the same passphrase, still in the field
        for _ in range(80):
            await pilot.pause(0.05)
            if isinstance(app.screen, ChatScreen):
                break
        assert isinstance(app.screen, ChatScreen)
        assert [n.body for n in app.journal.notes()] == ["kept safe"]


def test_a_model_too_big_for_the_disk_is_refused_before_copying(small_disk, gemma_gguf):
    home = small_disk / "haven"
    result = run_haven(home, "models", "import", "--no-prepare", str(gemma_gguf), "--chat-format", "gemma",
                       "--no-use")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert line.startswith("haven: ") and "not enough free disk space" in line, line
    assert "GB are free" in line and "\n" not in line
    assert not any((home / "models").iterdir())  # nothing half-copied left behind
