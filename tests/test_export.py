"""Encrypted export and import, and interoperability with the reference `age` tool."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from datetime import UTC, datetime, timedelta

import pyrage
import pytest

from app.export.age_file import AgeError as age_file_error
from app.export.document import ExportDocument, collect, parse
from app.export.service import export_journal, import_document, read_export
from app.store import Journal
from app.store.records import AutomaticThought, EmotionRating, ThoughtRecord
from tests.conftest import PASSPHRASE, require_tool, run_haven

EXPORT_PASS = "export passphrase for my therapist"
MARKER = "blue-heron-2231"


def fill(journal: Journal) -> None:
    session = journal.start_session(model="scripted")
    journal.update_session(session.id, title="A hard | week", summary=f"Talked about {MARKER}.",
                           mood_before=3, mood_after=5, next_step="Walk after lunch")
    journal.add_message(session.id, "user", f"Work was hard and I thought about {MARKER}")
    journal.add_message(session.id, "assistant", "That sounds heavy. What went through your mind?")
    journal.add_message(session.id, "assistant", "half a reply", status="cancelled")
    journal.add_mood(4, [EmotionRating(name="sad", intensity=60)], "rainy day")
    journal.save_thought_record(ThoughtRecord(
        session_id=session.id, situation="Meeting | with boss\nat 9",
        moods=[EmotionRating(name="anxious", intensity=80)],
        automatic_thoughts=[AutomaticThought(text="I'll be fired", hot=True)],
        evidence_for="He frowned", evidence_against="He praised my report",
        balanced_thought="One frown is not a verdict", balanced_belief=60,
        moods_after=[EmotionRating(name="anxious", intensity=40)],
        distortions=["fortune_telling", "mind_reading"],
    ))
    journal.add_note(f"Note with {MARKER} and *markdown* [link](x)")


def records(journal: Journal) -> dict:
    doc = collect(journal, None, None)
    return doc.model_dump(mode="json", exclude={"exported_at", "app_version"})


@pytest.fixture
def journal(tmp_path):
    j = Journal.create(tmp_path / "source.db", PASSPHRASE)
    fill(j)
    yield j
    j.close()


def test_round_trip_into_a_fresh_journal_gives_the_same_records(journal, tmp_path):
    out = tmp_path / "journal.age"
    result = export_journal(journal, out, passphrase=EXPORT_PASS)
    assert result.counts == {"sessions": 1, "messages": 3, "mood_entries": 1,
                             "thought_records": 1, "notes": 1}
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert MARKER.encode() not in out.read_bytes()
    assert out.read_bytes().startswith(b"age-encryption.org/v1\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.age", "source.db",
                                                          "source.db-shm", "source.db-wal",
                                                          "source.db.lock"]
    with pytest.raises(age_file_error, match="one of Haven's own files"):
        export_journal(journal, tmp_path / "source.db", passphrase=EXPORT_PASS)
    fresh = Journal.create(tmp_path / "fresh.db", PASSPHRASE)
    doc = read_export(out.read_bytes(), passphrase=EXPORT_PASS)
    first = import_document(fresh, doc)
    assert sum(first.added.values()) == 7
    assert records(fresh) == records(journal)
    again = import_document(fresh, doc)  # merging twice adds nothing
    assert again.added == {} and sum(again.already_there.values()) == 7
    assert len(fresh.search(MARKER)) >= 2
    fresh.close()


def test_markdown_is_readable_and_json_matches_the_shipped_schema(journal):
    doc = collect(journal, None, None)
    from app.export.document import render, to_markdown

    md = to_markdown(doc)
    assert "# Haven journal" in md and "Session: A hard | week" in md
    assert "| Situation | Meeting \\| with boss<br>at 9 |" in md  # table-safe
    assert "🔥 I'll be fired" in md and "Fortune telling, Mind reading" in md
    assert "(stopped)" in md
    both = render(doc, "both").decode()
    assert parse(both.encode()).model_dump() == doc.model_dump()
    with open("docs/export.schema.json") as handle:
        assert json.load(handle) == ExportDocument.model_json_schema()


def test_date_range(journal, tmp_path):
    future = datetime.now(UTC) + timedelta(days=2)
    doc = collect(journal, future, None)
    assert doc.counts == {"sessions": 0, "messages": 0, "mood_entries": 0, "thought_records": 0,
                          "notes": 0}
    doc = collect(journal, datetime.now(UTC) - timedelta(days=1), future)
    assert doc.counts["notes"] == 1


def _cli_journal(home):
    assert run_haven(home, "journal", "note", f"cli note {MARKER}").returncode == 0
    assert run_haven(home, "mood", "add", "7").returncode == 0


def test_age_decrypts_a_recipient_export(haven_home, tmp_path):
    age = require_tool("age", "age")
    keygen = require_tool("age-keygen", "age")
    _cli_journal(haven_home)
    key = tmp_path / "therapist.key"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    public = next(line.split(": ")[1] for line in key.read_text().splitlines()
                  if line.startswith("# public key"))
    out = tmp_path / "for-therapist.age"
    result = run_haven(haven_home, "export", str(out), "--recipient", public)
    assert result.returncode == 0, result.stderr
    plain = subprocess.run([age, "-d", "-i", str(key), str(out)], check=True,
                           capture_output=True).stdout.decode()
    assert f"cli note {MARKER}" in plain and "```json haven-export" in plain

    # and Haven decrypts it back with the identity
    mine = run_haven(haven_home, "decrypt", str(out), "-i", str(key))
    assert mine.returncode == 0 and MARKER in mine.stdout


def test_age_decrypts_a_passphrase_export_and_haven_reads_ages_files(haven_home, tmp_path):
    age = require_tool("age", "age")
    expect = require_tool("expect", "expect")
    _cli_journal(haven_home)
    out = tmp_path / "journal.age"
    env = dict(os.environ, HAVEN_HOME=str(haven_home), HAVEN_PASSPHRASE=PASSPHRASE,
               HAVEN_EXPORT_PASSPHRASE=EXPORT_PASS)
    assert run_haven(haven_home, "export", str(out), "--format", "markdown", env=env).returncode == 0
    plain = tmp_path / "plain.md"
    script = f"""
        set timeout 60
        spawn {age} -d -o {plain} {out}
        expect "Enter passphrase:"
        send "{EXPORT_PASS}\\r"
        expect eof
        catch wait result
        exit [lindex $result 3]
    """
    subprocess.run([expect, "-c", script], check=True, capture_output=True, timeout=90)
    assert f"cli note {MARKER}" in plain.read_text()

    # a file that age encrypted with a passphrase, decrypted by Haven
    by_age = tmp_path / "by-age.age"
    source = tmp_path / "source.txt"
    source.write_text("written by age")
    script = f"""
        set timeout 60
        spawn {age} -p -o {by_age} {source}
        expect "Enter passphrase*:"
        send "{EXPORT_PASS}\\r"
        expect "Confirm passphrase:"
        send "{EXPORT_PASS}\\r"
        expect eof
    """
    subprocess.run([expect, "-c", script], check=True, capture_output=True, timeout=90)
    got = run_haven(haven_home, "decrypt", str(by_age), env=env)
    assert got.returncode == 0 and got.stdout == "written by age"


def test_haven_decrypts_what_age_encrypted_to_a_key(haven_home, tmp_path):
    age = require_tool("age", "age")
    identity = pyrage.x25519.Identity.generate()
    key = tmp_path / "key.txt"
    key.write_text(f"# test key\n{identity}\n")
    source = tmp_path / "hello.txt"
    source.write_text("hello from age")
    encrypted = tmp_path / "hello.age"
    subprocess.run([age, "-r", str(identity.to_public()), "-o", str(encrypted), str(source)],
                   check=True)
    got = run_haven(haven_home, "decrypt", str(encrypted), "-i", str(key))
    assert got.returncode == 0 and got.stdout == "hello from age"


@pytest.mark.parametrize("case", ["tampered", "wrong passphrase", "wrong identity", "truncated",
                                  "not age"])
def test_bad_files_one_line_exit_2_and_nothing_written(haven_home, tmp_path, case):
    _cli_journal(haven_home)
    env = dict(os.environ, HAVEN_HOME=str(haven_home), HAVEN_PASSPHRASE=PASSPHRASE,
               HAVEN_EXPORT_PASSPHRASE=EXPORT_PASS)
    out = tmp_path / "journal.age"
    key = tmp_path / "key.txt"
    if case == "wrong identity":
        identity = pyrage.x25519.Identity.generate()
        other = pyrage.x25519.Identity.generate()
        key.write_text(f"{other}\n")
        assert run_haven(haven_home, "export", str(out), "-r", str(identity.to_public()),
                         env=env).returncode == 0
    else:
        assert run_haven(haven_home, "export", str(out), env=env).returncode == 0
    data = bytearray(out.read_bytes())
    if case == "tampered":
        data[-40] ^= 0x01
    elif case == "truncated":
        data = data[: len(data) // 2]
    elif case == "not age":
        data = bytearray(b"# just a markdown file\n")
    elif case == "wrong passphrase":
        env["HAVEN_EXPORT_PASSPHRASE"] = "not the export passphrase"
    out.write_bytes(bytes(data))
    target = tmp_path / "plain.md"
    extra = ["-i", str(key)] if case == "wrong identity" else []
    for command in (["decrypt", str(out), "-o", str(target), *extra], ["import", str(out), *extra]):
        before = sorted(p.name for p in tmp_path.iterdir())
        result = run_haven(haven_home, *command, env=env)
        assert result.returncode == 2, (case, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_export_refuses_to_overwrite_and_checks_keys(haven_home, tmp_path):
    _cli_journal(haven_home)
    env = dict(os.environ, HAVEN_HOME=str(haven_home), HAVEN_PASSPHRASE=PASSPHRASE,
               HAVEN_EXPORT_PASSPHRASE=EXPORT_PASS)
    out = tmp_path / "x.age"
    out.write_text("keep me")
    assert run_haven(haven_home, "export", str(out), env=env).returncode == 2
    assert out.read_text() == "keep me"
    bad_key = run_haven(haven_home, "export", str(tmp_path / "y.age"), "-r", "age1nope", env=env)
    assert bad_key.returncode == 2 and "not an age public key" in bad_key.stderr


def test_cli_import_reports_what_it_added(haven_home, tmp_path):
    _cli_journal(haven_home)
    env = dict(os.environ, HAVEN_HOME=str(haven_home), HAVEN_PASSPHRASE=PASSPHRASE,
               HAVEN_EXPORT_PASSPHRASE=EXPORT_PASS)
    out = tmp_path / "j.age"
    assert run_haven(haven_home, "export", str(out), env=env).returncode == 0
    other = tmp_path / "other-home"
    env2 = dict(env, HAVEN_HOME=str(other))
    first = run_haven(other, "import", str(out), env=env2)
    assert first.returncode == 0 and "Imported 1 mood entry, 1 note." in first.stdout
    second = run_haven(other, "import", str(out), env=env2)
    assert "nothing new" in second.stdout and "already in your journal" in second.stdout
