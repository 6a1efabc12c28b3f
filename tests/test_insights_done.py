"""Issue 15, the "done when" items that had no test of their own: recall turned off in the
app's Settings brings nothing back, and the steps and the mood before and after sessions
are shown in the Insights panel and by `haven insights` (real journals, pilot at 120x40)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.conversation.prompts import prompt_library
from app.insights import insights, render_text
from app.paths import DataPaths
from app.store import Journal
from app.store.records import Message, Session
from app.tui.screens.chat import ChatScreen
from app.tui.screens.journal import JournalScreen
from app.tui.screens.settings import SettingsScreen
from app.tui.widgets.insights_panel import InsightsPanel, RecalledNote
from tests.conftest import PASSPHRASE, run_haven
from tests.month_journal import seed
from tests.test_tui import make_app, send, settle, unlock, until

SAME_THEME = "I have to present the quarterly figures to my team on Friday and I'm dreading it"
STEPS = "You planned 6 small steps between sessions; in the session after, Haven asked how 6"
MOOD = "After talking, your mood rose by 1.3 on average over 7 sessions"


def month_home(tmp_path):
    home = tmp_path / "home"
    journal = Journal.create(DataPaths(home).ensure().journal, PASSPHRASE)
    seed(journal)
    journal.close()
    return home


async def test_recall_turned_off_in_settings_brings_nothing_back(tmp_path):
    app, engine = make_app(month_home(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        await pilot.press("f8")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), "the settings")
        app.screen.query_one("#recall").value = False
        await pilot.press("ctrl+s")
        await settle(pilot)
        if not isinstance(app.screen, ChatScreen):
            await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), "back in the chat")
        await send(pilot, SAME_THEME)
        assert not list(app.screen.query(RecalledNote))  # no "Haven remembered" line
        assert engine.requests[-1].turns[-1].content == SAME_THEME  # and no block
        assert "From earlier" not in engine.requests[-1].system


async def test_steps_and_mood_after_sessions_are_in_the_panel(tmp_path):
    app, _ = make_app(month_home(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, JournalScreen), "the journal")
        await settle(pilot)
        panel = app.screen.query_one(InsightsPanel)
        shown = "\n".join(str(s.render()) for s in panel.query(".figure")
                          if not s.has_class("figure-hidden"))
        assert MOOD in shown and STEPS in shown


def test_steps_and_mood_after_sessions_are_on_the_command_line(haven_home):
    month_home_journal = haven_home / "journal.db"
    haven_home.mkdir(mode=0o700)
    journal = Journal.create(month_home_journal, PASSPHRASE)
    seed(journal)
    journal.close()
    done = run_haven(haven_home, "insights", "--width", "200")
    assert done.returncode == 0, done.stderr
    assert MOOD in done.stdout and STEPS in done.stdout


def test_a_step_counts_as_followed_up_only_when_asked_about_and_talked_over(tmp_path):
    """Four steps with a session after each: asked and answered, asked but the person
    wrote nothing, not asked, asked and answered; the last step has no session after it."""
    prompts = prompt_library()
    journal = Journal.create(tmp_path / "journal.db", PASSPHRASE)
    try:
        start = datetime(2026, 11, 1, 18, tzinfo=UTC)
        steps = ["walk to the park", "call my sister", "write one page", "cook a real dinner",
                 "go to bed at eleven"]
        asked = [None, True, True, False, True]  # did session n's opening ask about step n-1
        wrote = [True, True, False, True, True]
        for n, step in enumerate(steps):
            when = start + timedelta(days=2 * n)
            session = Session(started=when, ended=when + timedelta(minutes=30),
                              mood_before=4, mood_after=5, next_step=step)
            journal.insert_if_new(session)
            opening = (prompts.render("opening_return.md", step=steps[n - 1]) if asked[n]
                       else prompts.render("opening.md"))
            journal.insert_if_new(Message(session_id=session.id, role="system",
                                          content=opening, created=when))
            if wrote[n]:
                journal.insert_if_new(Message(session_id=session.id, role="user",
                                              content="It went all right, thanks",
                                              created=when + timedelta(minutes=2)))
        figure = insights(journal).figure("steps")
        assert figure.shown and figure.entries == 4
        assert figure.value == {"planned": 4, "followed_up": 2, "pending": 1}
        text = render_text(insights(journal), width=200)
        assert "You planned 4 small steps between sessions; in the session after, Haven " \
               "asked how 2 of them went" in text
        # a new session has just asked about the last step: not counted until they answer
        now = start + timedelta(days=12)
        latest = Session(started=now)
        journal.insert_if_new(latest)
        journal.insert_if_new(Message(session_id=latest.id, role="system", created=now,
                                      content=prompts.render("opening_return.md", step=steps[-1])))
        assert insights(journal).figure("steps").value == {
            "planned": 4, "followed_up": 2, "pending": 1}
        journal.insert_if_new(Message(session_id=latest.id, role="user", content="It helped",
                                      created=now + timedelta(minutes=1)))
        assert insights(journal).figure("steps").value == {
            "planned": 5, "followed_up": 3, "pending": 0}
    finally:
        journal.close()
