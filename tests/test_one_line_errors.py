"""Every traceback the red-team pass found is now one `haven:` line, exit 2, nothing changed
(issue 17, item 7). The passwd race is in test_concurrency.py."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pyrage
import pytest

from app.export.document import ExportDocument, render
from app.store import Journal
from app.store.records import Message, MoodEntry, Note, Session
from tests.conftest import PASSPHRASE, ROOT, haven_env, run_haven

EXPORT_PASS = "export passphrase"


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line(result, *words) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    err = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("haven: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    assert run_haven(home, "journal", "note", "already here").returncode == 0
    return home


def encrypted(tmp_path, plaintext: bytes, name: str = "x.age"):
    path = tmp_path / name
    path.write_bytes(pyrage.passphrase.encrypt(plaintext, EXPORT_PASS))
    return path


def import_(home, path):
    return run_haven(home, "import", str(path), env=haven_env(home, HAVEN_EXPORT_PASSPHRASE=EXPORT_PASS))


def test_import_of_a_message_whose_session_is_missing(home, tmp_path):
    orphan = Message(session_id="no-such-session", role="user", content="lost words")
    doc = ExportDocument(messages=[orphan], notes=[Note(body="a note in the same file")])
    before = digest(home / "journal.db")
    one_line(import_(home, encrypted(tmp_path, render(doc, "json"))), "belong to a session",
             "nothing was imported")
    assert digest(home / "journal.db") == before


def test_a_mood_whose_session_is_elsewhere_is_kept_without_the_link(home, tmp_path):
    mood = MoodEntry(score=6, note="kept", session_id="a-session-not-in-this-export")
    result = import_(home, encrypted(tmp_path, render(ExportDocument(mood_entries=[mood]), "json")))
    assert result.returncode == 0, result.stderr
    assert "kept without that link" in result.stdout
    with Journal.open(home / "journal.db", PASSPHRASE) as journal:
        [entry] = journal.moods()
    assert entry.note == "kept" and entry.session_id is None


def test_json_nested_100000_deep(home, tmp_path):
    deep = b'{"schema_version": 1, "notes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    one_line(import_(home, encrypted(tmp_path, deep)), "nested")


@pytest.mark.parametrize("raw", [b"\x9b", b"\xff bad bytes", b"caf\xe9"])
def test_a_note_that_is_not_utf8_as_an_argument(home, raw):
    result = subprocess.run([sys.executable.encode(), b"-m", b"app", b"journal", b"note", raw],
                            cwd=ROOT, capture_output=True, env=haven_env(home))
    one_line(result, "not valid UTF-8", "nothing was saved")
    listed = run_haven(home, "journal", "list")
    assert listed.stdout.count("note") == 1  # only the one from before


def test_text_that_is_not_utf8_on_stdin(home):
    for args in (["journal", "note"], ["mood", "add", "5", "--note", "-"]):
        result = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True,
                                input=b"caf\xe9 \x9b", env=haven_env(home))
        one_line(result, "not valid UTF-8")
    assert run_haven(home, "mood", "list").stdout.startswith("No mood entries")


def test_a_passphrase_that_is_not_utf8(home):
    env = {k.encode(): v.encode() for k, v in haven_env(home).items()}
    env[b"HAVEN_PASSPHRASE"] = b"correct horse \xff staple"
    result = subprocess.run([sys.executable, "-m", "app", "journal", "list"], cwd=ROOT,
                            capture_output=True, env=env)
    one_line(result, "not valid UTF-8")


@pytest.mark.model
def test_a_piped_chat_that_is_not_utf8(home, gemma_gguf):
    result = subprocess.run(
        [sys.executable, "-m", "app", "chat", "--model", str(gemma_gguf), "--chat-format", "gemma"],
        cwd=ROOT, capture_output=True, input=b"bad \xff\xfe line\n", env=haven_env(home), timeout=300)
    one_line(result, "not valid UTF-8")


def test_journal_list_into_head(home):
    with Journal.open(home / "journal.db", PASSPHRASE) as journal, journal.transaction():
        for n in range(3000):  # far more than a pipe holds
            journal.add_note(f"note number {n} " + "words " * 8)
    err = home.parent / "err.txt"
    command = (f"{sys.executable} -m app journal list 2>{err} | head -3 >/dev/null; "
               "echo ${PIPESTATUS[0]}")
    rc = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True,
                        env=haven_env(home)).stdout.strip()
    assert rc == "2"
    lines = err.read_text().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("haven: the output was closed"), lines


def test_an_export_that_does_not_match_the_schema(home, tmp_path):
    data = json.loads(ExportDocument(notes=[Note(body="x")]).model_dump_json())
    del data["notes"][0]["body"]
    data["notes"].append({"nonsense": True})
    message = one_line(import_(home, encrypted(tmp_path, json.dumps(data).encode())),
                       "notes.0.body")
    assert "more problem" in message


@pytest.mark.parametrize("version", [True, "1", 1.0, 2.0, None, 0, 99])
def test_schema_version_must_be_a_known_whole_number(home, tmp_path, version):
    data = json.loads(ExportDocument(notes=[Note(body="x")]).model_dump_json())
    data["schema_version"] = version
    one_line(import_(home, encrypted(tmp_path, json.dumps(data).encode())))
    with Journal.open(home / "journal.db", PASSPHRASE) as journal:
        assert len(journal.notes()) == 1


def test_a_schema_mismatch_never_prints_the_persons_text(home, tmp_path):
    session = Session()
    data = json.loads(ExportDocument(sessions=[session]).model_dump_json())
    data["messages"] = [{"session_id": session.id, "role": "user",
                         "content": ["my private words"], "id": "m1"}]
    message = one_line(import_(home, encrypted(tmp_path, json.dumps(data).encode())), "messages.0")
    assert "private" not in message
    assert os.path.exists(home / "journal.db")
