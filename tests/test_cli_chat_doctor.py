"""`haven chat` in line mode and `haven doctor`, on the real test model."""

from __future__ import annotations

import pytest

from app.store import Journal
from tests.conftest import PASSPHRASE, run_haven

pytestmark = pytest.mark.model


@pytest.fixture
def home_with_model(model_home):
    return model_home(max_tokens=24, seed=1)


def test_line_mode_chat_reads_stdin_and_stores_every_message(home_with_model):
    script = "Hello, I had a long day\n/new\nI want to kill myself\n/quit\nnever sent\n"
    result = run_haven(home_with_model, "chat", input=script, timeout=240)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "What's on your mind" in out
    assert "findahelpline.com" in out  # the crisis message got resources, not the model
    # nothing from llama.cpp on the terminal: only Haven's own line about the new journal
    assert result.stderr.strip() == "Created a new encrypted journal."
    with Journal.open(home_with_model / "journal.db", PASSPHRASE) as journal:
        sessions = journal.sessions()
        assert len(sessions) == 2 and all(s.ended for s in sessions)
        texts = [m.content for s in sessions for m in journal.messages(s.id) if m.role == "user"]
        assert sorted(texts) == ["Hello, I had a long day", "I want to kill myself"]
        first = next(s for s in sessions if any(m.content.startswith("Hello")
                                                for m in journal.messages(s.id)))
        replies = [m for m in journal.messages(first.id) if m.role == "assistant"]
        assert len(replies) == 1 and replies[0].status == "complete"
        crisis_session = next(s for s in sessions if s.id != first.id)
        assert not [m for m in journal.messages(crisis_session.id) if m.role == "assistant"]


def test_chat_without_a_model_still_saves_checks_and_says_how_to_get_one(tmp_path):
    result = run_haven(tmp_path / "home", "chat", input="hi\n")
    assert result.returncode == 0, result.stderr
    assert "haven models download" in result.stdout and "not available" in result.stdout
    assert "saved" in result.stdout


def test_doctor_checks_versions_permissions_and_loads_the_model(home_with_model):
    result = run_haven(home_with_model, "doctor", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in ("Python", "llama-cpp-python", "sqlcipher3", "RAM", "Free disk",
                     "Data folder", "owner only", "gemma-270m", "Model loads", "yes",
                     "not checked (use --online)", "CPU features", "Weight buffers"):
        assert expected in out, expected
    assert "no AMX" in out or "AMX (" in out  # what was chosen for this CPU, and why
