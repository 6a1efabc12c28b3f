"""`haven sos` and `haven chat`'s safety in a child process: with no passphrase, with no
model, and with the real 270M model (the crisis never reaches it)."""

from __future__ import annotations

import pytest

from app.store import Journal
from app.store.records import SafetyPlan
from tests.conftest import PASSPHRASE, haven_env, run_haven

CRISIS = "I'm going to kill myself tonight"


def make_journal(home, plan: SafetyPlan | None = None, country: str | None = None):
    home.mkdir(parents=True, exist_ok=True)
    if country:
        (home / "settings.toml").write_text(f'country = "{country}"\ncountry_confirmed = true\n')
    with Journal.create(home / "journal.db", PASSPHRASE) as journal:
        if plan is not None:
            journal.save_safety_plan(plan)


def test_sos_needs_no_passphrase_and_no_journal(tmp_path):
    home = tmp_path / "home"
    env = haven_env(home, HAVEN_PASSPHRASE=None)
    result = run_haven(home, "sos", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("SOS")
    assert "call your local emergency number now" in out and "findahelpline.com" in out
    assert "Breathe in slowly" in out and "5 things you can see" in out
    assert "Passphrase" not in out and result.stderr == ""
    assert not home.exists()  # nothing written, nothing needed

    gb = run_haven(home, "sos", "--country", "gb", env=env)
    assert "call 999 now" in gb.stdout and "Samaritans: Call 116 123" in gb.stdout

    home.mkdir()
    (home / "settings.toml").write_text("this is [not toml")  # a damaged settings file
    damaged = run_haven(home, "sos", env=env)
    assert damaged.returncode == 0 and "findahelpline.com" in damaged.stdout


def test_sos_shows_the_plan_when_the_passphrase_is_given(tmp_path):
    home = tmp_path / "home"
    make_journal(home, SafetyPlan(warning_signs="I stop answering my phone",
                                  helpers="Sam 07700 900123"), country="US")
    without = run_haven(home, "sos", env=haven_env(home, HAVEN_PASSPHRASE=None))
    assert without.returncode == 0 and "988" in without.stdout
    assert "Sam 07700 900123" not in without.stdout
    with_plan = run_haven(home, "sos")  # HAVEN_PASSPHRASE is set
    out = with_plan.stdout
    assert with_plan.returncode == 0 and "Sam 07700 900123" in out
    assert out.index("988") < out.index("Breathe") < out.index("My safety plan")
    wrong = run_haven(home, "sos", env=haven_env(home, HAVEN_PASSPHRASE="not the passphrase"))
    assert wrong.returncode == 0 and "988" in wrong.stdout
    assert "does not open your journal" in wrong.stdout and "Sam" not in wrong.stdout


def test_sos_says_when_no_plan_is_written(tmp_path):
    home = tmp_path / "home"
    make_journal(home)
    result = run_haven(home, "sos")
    assert result.returncode == 0 and "not written a safety plan yet" in result.stdout


def test_chat_without_a_model_saves_checks_and_shows_crisis_help(tmp_path):
    home = tmp_path / "home"
    make_journal(home, SafetyPlan(helpers="Sam 07700 900123"), country="GB")
    script = ("just writing this down\n"
              "I wish I could disappear\nyes\nyes\nno\nno\nyes\n"  # yes to a plan
              "ok\n/sos\n/quit\n")
    result = run_haven(home, "chat", input=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "model is not available" in out and "cannot reply" in out
    assert "wished you were dead" in out and "worked out, the details" in out
    assert "call 999 now" in out and "Samaritans: Call 116 123" in out
    assert "Are you safe right now?" in out and "Sam 07700 900123" in out
    assert "Breathe in slowly" in out  # /sos
    with Journal.open(home / "journal.db", PASSPHRASE) as journal:
        session = journal.sessions()[0]
        messages = journal.messages(session.id)
        assert not [m for m in messages if m.role == "assistant"]
        crisis = [m for m in messages if m.role == "system" and m.risk_level == "crisis"]
        assert crisis and "116 123" in crisis[0].content
        answers = journal.screener_answers(session.id)
        assert answers[-1].question == "plan" and answers[-1].answer == "yes"


@pytest.mark.model
def test_chat_on_the_real_model_never_sends_it_a_crisis(model_home):
    home = model_home(max_tokens=24, seed=1, country="GB")
    script = f"Hello, I had a long day\n{CRISIS}\nthanks\n/new\nhello again\n/quit\n"
    result = run_haven(home, "chat", input=script, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Samaritans: Call 116 123" in result.stdout and "Are you safe right now?" in result.stdout
    with Journal.open(home / "journal.db", PASSPHRASE) as journal:
        first, second = sorted(journal.sessions(), key=lambda s: s.started)
        roles = [m.role for m in journal.messages(first.id)]
        # one model reply (to the first message); the crisis and the message after it got
        # Haven's own words
        assert roles == ["system", "user", "assistant", "user", "system", "user", "system"]
        assert [m.role for m in journal.messages(second.id)] == ["system", "user", "assistant"]
        for session in (first, second):
            for message in journal.messages(session.id):
                if message.role == "assistant":
                    assert message.status == "complete"


def test_a_crisis_in_a_mood_note_prints_the_services(tmp_path):
    """`haven mood add` saves the mood and, when its note reads as a crisis, prints the
    crisis services on stderr (stdout stays the one line scripts read)."""
    from tests.conftest import run_haven

    home = tmp_path / "home"
    (home).mkdir()
    (home / "settings.toml").write_text('country = "GB"\ncountry_confirmed = true\n')
    heavy = run_haven(home, "mood", "add", "2", "--note", "I'm going to kill myself tonight")
    assert heavy.returncode == 0, heavy.stderr
    assert heavy.stdout.strip() == "Logged mood 2/10."
    assert "help right now" in heavy.stderr and "Samaritans" in heavy.stderr
    plain = run_haven(home, "mood", "add", "6", "--note", "slept badly, work was fine")
    assert plain.returncode == 0 and plain.stderr == ""
