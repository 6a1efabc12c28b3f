"""Haven never overwrites the live journal, asks for --force elsewhere, and cleans up what
a killed export leaves behind (issue 17, items 5 and 8)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import pyrage
import pytest

from app.export.age_file import AgeError
from app.export.service import export_journal
from app.store import Journal
from tests.conftest import PASSPHRASE, ROOT, haven_env, run_haven

EXPORT_PASS = "export passphrase"


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def journal_home(tmp_path):
    home = tmp_path / "home"
    assert run_haven(home, "journal", "note", "the only copy of this").returncode == 0
    return home


def export_env(home):
    return haven_env(home, HAVEN_EXPORT_PASSPHRASE=EXPORT_PASS)


def one_line_refusal(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("haven: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_decrypt_and_export_never_replace_the_live_journal(journal_home, tmp_path):
    db = journal_home / "journal.db"
    export = tmp_path / "e.age"
    assert run_haven(journal_home, "export", str(export), env=export_env(journal_home)).returncode == 0
    before = digest(db)
    link = tmp_path / "innocent-looking.db"
    link.symlink_to(db)
    for target, force in ((db, ["--force"]), (journal_home / "new-file.md", []), (link, ["--force"])):
        one_line_refusal(run_haven(journal_home, "decrypt", str(export), "-o", str(target),
                                   *force, env=export_env(journal_home)), "data folder")
        one_line_refusal(run_haven(journal_home, "export", str(target), *force,
                                   env=export_env(journal_home)), "data folder")
    assert digest(db) == before
    assert link.is_symlink()
    with Journal.open(db, PASSPHRASE) as journal:
        assert [n.body for n in journal.notes()] == ["the only copy of this"]


def test_the_app_export_refuses_the_data_folder_too(journal_home):
    with Journal.open(journal_home / "journal.db", PASSPHRASE) as journal:
        for own in ("journal.db", "journal.db-wal", "settings.toml", "logs/x.age"):
            with pytest.raises(AgeError, match="one of Haven's own files"):
                export_journal(journal, journal_home / own, passphrase=EXPORT_PASS)


def test_decrypt_asks_for_force_before_replacing_a_file(journal_home, tmp_path):
    export = tmp_path / "e.age"
    assert run_haven(journal_home, "export", str(export), env=export_env(journal_home)).returncode == 0
    mine = tmp_path / "my-letter.txt"
    mine.write_text("dear diary")
    one_line_refusal(run_haven(journal_home, "decrypt", str(export), "-o", str(mine),
                               env=export_env(journal_home)), "already exists", "--force")
    assert mine.read_text() == "dear diary"
    forced = run_haven(journal_home, "decrypt", str(export), "-o", str(mine), "--force",
                       env=export_env(journal_home))
    assert forced.returncode == 0 and "the only copy of this" in mine.read_text()


# A Haven export stopped dead (kill -9) in the middle of writing its file.
STUCK_EXPORT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import app.fileio as fileio
    def stuck(fd):
        print("writing", flush=True)
        time.sleep(600)
    fileio.os.fsync = stuck
    fileio.atomic_write(Path(sys.argv[1]), b"x" * 2_000_000)
""")


def test_a_killed_export_leaves_no_hidden_part_for_ever(journal_home, tmp_path):
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    target = out_dir / "journal.age"
    child = subprocess.Popen([sys.executable, "-c", STUCK_EXPORT, str(target)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        parts = list(out_dir.glob(".*.part"))
        assert len(parts) == 1 and parts[0].stat().st_size == 2_000_000
        # an export running beside it leaves a part that is still being written alone
        other = out_dir / "other.age"
        assert run_haven(journal_home, "export", str(other), env=export_env(journal_home)).returncode == 0
        assert parts[0].exists()
    finally:
        child.kill()
        child.wait()
    old_style = out_dir / ".journal.age.abcd1234.part"  # left by a Haven from before the tag
    old_style.write_bytes(b"y" * 1000)
    assert parts[0].exists()  # killed: stale now
    again = run_haven(journal_home, "export", str(target), env=export_env(journal_home))
    assert again.returncode == 0, again.stderr
    assert not list(out_dir.glob(".*.part"))
    assert pyrage.passphrase.decrypt(target.read_bytes(), EXPORT_PASS)
    assert sorted(p.name for p in out_dir.iterdir()) == ["journal.age", "other.age"]
    assert os.stat(target).st_mode & 0o777 == 0o600
