"""The app's flows a person walks through, under the pilot (scripted engine; real journal):
closing a session (Ctrl+G -> summary -> a step -> closing mood), F2, rename, delete,
settings and the command palette."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from contextlib import asynccontextmanager

from textual.widgets import Input, Static

from app.llm.types import Fold, Prefill
from app.settings import load_settings
from app.tui import keys
from app.tui.screens.chat import ChatScreen
from app.tui.screens.closing import ClosingScreen
from app.tui.screens.dialogs import ConfirmScreen, TextPromptScreen
from app.tui.screens.help import HelpScreen
from app.tui.screens.journal import JournalScreen
from app.tui.screens.mood import MoodScreen
from app.tui.screens.settings import SettingsScreen
from app.tui.widgets.insights_panel import InsightsPanel
from app.tui.widgets.session_list import SessionList
from tests.scripted_engine import ScriptedEngine
from tests.test_tui import make_app, send, type_text, unlock, until, wait_idle


@asynccontextmanager
async def unlocked(tmp_path, engine=None):
    """The app (scripted engine, real journal) at 120x40, unlocked: (app, pilot)."""
    app, _ = make_app(tmp_path / "home", engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        yield app, pilot


async def test_closing_walks_summary_step_and_mood_then_starts_afresh(tmp_path):
    engine = ScriptedEngine(delay=0.005)
    engine.completions = ["We talked about a long day at work.", "A long day"]
    async with unlocked(tmp_path, engine) as (app, pilot):
        await send(pilot, "I had a long day at the office")
        first = app.service.session
        await pilot.press("ctrl+g")
        await until(pilot, lambda: isinstance(app.screen, ClosingScreen), "the closing dialog")
        await until(pilot, lambda: "long day at work" in (app.screen.summary or ""), "the summary")
        await type_text(pilot, "a short walk")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MoodScreen), "the closing mood")
        assert app.screen.closing
        await pilot.click("#score-7")
        await pilot.click("#save")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen)
                    and app.service.session is not None
                    and app.service.session.id != first.id, "a new session")
        closed = app.journal.session(first.id)
        assert closed.summary == "We talked about a long day at work."
        assert closed.title == "A long day"
        assert closed.next_step == "a short walk"
        assert closed.mood_after == 7 and closed.ended is not None
        # the next session picks up the step
        assert "a short walk" in app.journal.messages(app.service.session.id)[0].content


async def test_f2_saves_a_mood_for_this_session(tmp_path):
    async with unlocked(tmp_path) as (app, pilot):
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, MoodScreen), "the mood dialog")
        assert not app.screen.closing
        await pilot.click("#score-4")
        await pilot.press("tab")  # the score row keeps focus; Tab moves on to the emotions
        await type_text(pilot, "tired 40")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), "back to the chat")
        (entry,) = app.journal.moods()
        assert entry.score == 4 and [e.name for e in entry.emotions] == ["tired"]
        assert entry.session_id == app.service.session.id
        assert app.journal.session(app.service.session.id).mood_before == 4
        assert app.service.session.mood_before == 4  # the service's copy agrees


async def test_rename_and_delete_from_the_sidebar(tmp_path):
    async with unlocked(tmp_path) as (app, pilot):
        await send(pilot, "I had a long day at the office")
        first = app.service.session
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, TextPromptScreen), "the rename dialog")
        app.screen.query_one("#value").value = ""
        await type_text(pilot, "Office day")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), "back to the chat")
        assert app.journal.session(first.id).title == "Office day"
        assert app.service.session.title == "Office day"
        assert any("Office day" in str(label.render()) for label in app.screen.query("SessionList Label"))

        # delete the open session: it goes, and a fresh one takes its place
        sidebar = app.screen.query_one(SessionList)
        sidebar.focus()
        sidebar.index = next(i for i, item in enumerate(sidebar.children)
                             if getattr(item, "session", None) and item.session.id == first.id)
        await pilot.press("delete")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirm dialog")
        await pilot.click("#yes")
        await until(pilot, lambda: app.journal.session(first.id) is None, "the session deleted")
        await until(pilot, lambda: app.service.session is not None
                    and app.service.session.id != first.id, "a fresh session")
        assert app.journal.messages(first.id) == []


async def test_settings_are_saved_and_kept(tmp_path):
    async with unlocked(tmp_path) as (app, pilot):
        await pilot.press("f8")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), "the settings")
        app.screen.query_one("#country").value = "IE"
        app.screen.query_one("#theme").value = "textual-light"
        assert app.screen.query_one("#recall").value is True  # recall is on until turned off
        app.screen.query_one("#recall").value = False
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert app.theme == "textual-light"
        saved = load_settings(app.paths)
        assert saved.country == "IE" and saved.theme == "textual-light" and not saved.recall
        assert app.service.settings.country == "IE"  # one settings object for everyone
        assert not app.service.companion.settings.recall  # the next reply recalls nothing


async def test_the_palette_runs_chat_actions_and_names_their_keys(tmp_path):
    async with unlocked(tmp_path) as (app, pilot):
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert keys.MOOD.title in commands and "(F2)" in commands[keys.MOOD.title].help
        assert "(Ctrl+G)" in commands[keys.END.title].help
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await type_text(pilot, "journal")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JournalScreen), "the journal")


async def test_help_lists_the_bound_keys_and_the_empty_mood_chart_names_a_real_key(tmp_path):
    async with unlocked(tmp_path) as (app, pilot):
        chat_keys = {b.key for b in app.screen.BINDINGS}
        for key in keys.CHAT:
            assert key.keys in chat_keys
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        await pilot.press("escape")
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, JournalScreen), "the journal")
        chart = app.screen.query_one(InsightsPanel)
        text = " ".join(str(w.render()) for w in chart.query("Static"))
        assert "press m" not in text and keys.MOOD.first in text
        # and the key it names opens the mood check-in from the chat
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat")
        await pilot.press(keys.MOOD.keys)
        await until(pilot, lambda: isinstance(app.screen, MoodScreen), "the mood dialog")


async def test_skipping_the_check_in_offer_moves_the_session_on(tmp_path):
    async with unlocked(tmp_path) as (app, pilot):
        assert app.service.flow().checking_in
        await pilot.click("#offer-skip")
        await pilot.pause(0.1)
        assert not app.service.flow().checking_in
        assert not app.screen.query_one("#checkin-offer").has_class("shown")
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, MoodScreen), "the mood dialog")


async def test_closing_can_be_skipped_step_by_step(tmp_path):
    async with unlocked(tmp_path) as (app, pilot):
        await send(pilot, "I had a long day at the office")
        first = app.service.session
        await pilot.press("ctrl+g")
        await until(pilot, lambda: isinstance(app.screen, ClosingScreen), "the closing dialog")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MoodScreen), "the closing mood")
        await pilot.press("escape")
        await until(pilot, lambda: app.service.session is not None
                    and app.service.session.id != first.id, "a new session")
        closed = app.journal.session(first.id)
        assert closed.ended is not None and closed.next_step is None and closed.mood_after is None
        assert [m.content for m in app.journal.messages(first.id) if m.role == "user"] == [
            "I had a long day at the office"]


class ReadAheadEngine(ScriptedEngine):
    """Records what the chat screen asks to be evaluated ahead of Enter (issue 13)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.prefilled: list[str] = []
        self.folds: list[int] = []

    def prefill(self, request, draft=""):
        self.prefilled.append(draft)
        job = Future()
        job.stop = lambda: None
        job.set_result(Prefill(status="done"))
        return job

    def fold(self, request, headroom=0):
        self.folds.append(len(request.turns))
        job = Future()
        job.stop = lambda: None
        job.set_result(Fold(status="not needed", prefill=Prefill(status="done")))
        return job


async def test_the_model_reads_ahead_while_the_person_types(tmp_path):
    engine = ReadAheadEngine(delay=0.005)
    async with unlocked(tmp_path, engine) as (app, pilot):
        await until(pilot, lambda: "" in engine.prefilled, "the history prefilled once ready")
        await type_text(pilot, "a long day at work")
        await until(pilot, lambda: "a long day at work" in engine.prefilled,
                    "the draft prefilled after a pause in typing")
        await pilot.press("enter")
        await wait_idle(pilot, app.screen)
        await until(pilot, lambda: engine.folds == [2], "the next turn prepared after the reply")
        # a draft the risk check flags never reaches the model
        await type_text(pilot, "I want to kill myself tonight")
        await pilot.pause(0.6)
        await pilot.pause(0.2)
        assert "I want to kill myself tonight" not in engine.prefilled


def closing_steps_running(app) -> bool:
    """The chat screen's closing worker (it starts the next session last) is still going."""
    return any(w.group == "closing" and not w.is_finished for w in app.workers)


class SlowSummaryEngine(ScriptedEngine):
    """Writes the closing summary only when the test lets it (a 3B model on a laptop takes
    a minute or more)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def complete(self, system, turns, params, json_schema=None):
        future: Future = Future()

        def write() -> None:
            self.release.wait(60)
            future.set_result("We talked about a long day at work." if "summary" in system
                              else "A long day")
        threading.Thread(target=write, daemon=True).start()
        return future


async def ctrl_g_after_one_message(app, pilot):
    """Talk once, then Ctrl+G: returns the session being closed, with its dialog shown."""
    await send(pilot, "I had a long day at the office")
    first = app.service.session
    await pilot.press("ctrl+g")
    await until(pilot, lambda: isinstance(app.screen, ClosingScreen), "the closing dialog")
    return first


async def closed_when_the_next_session_starts(app, pilot, first):
    """Wait for the next session and the closing steps to end; returns ``first`` as saved."""
    await until(pilot, lambda: app.service.session is not None
                and app.service.session.id != first.id, "a new session")
    await until(pilot, lambda: not closing_steps_running(app), "the closing steps to finish")
    return app.journal.session(first.id)


async def test_the_closing_screen_shows_at_once_and_the_summary_fills_in(tmp_path):
    """Issue 13: Ctrl+G shows the closing screen before the model has written a word of
    the summary; the person can type their step meanwhile, and nothing typed is lost when
    the summary arrives."""
    engine = SlowSummaryEngine()
    async with unlocked(tmp_path, engine) as (app, pilot):
        first = await ctrl_g_after_one_message(app, pilot)
        screen = app.screen
        assert screen.writing and screen.summary is None
        assert "Writing a short summary" in str(screen.query_one("#summary").query_one(Static).render())
        await type_text(pilot, "a short walk")
        engine.release.set()
        await until(pilot, lambda: "long day at work" in (screen.summary or ""), "the summary")
        assert screen.query_one("#step", Input).value == "a short walk"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MoodScreen), "the closing mood")
        await pilot.click("#score-6")
        await pilot.click("#save")
        closed = await closed_when_the_next_session_starts(app, pilot, first)
        assert closed.summary == "We talked about a long day at work."
        assert closed.next_step == "a short walk" and closed.title == "A long day"


async def test_a_step_skipped_before_the_summary_is_written_still_ends_the_session(tmp_path):
    engine = SlowSummaryEngine()
    async with unlocked(tmp_path, engine) as (app, pilot):
        first = await ctrl_g_after_one_message(app, pilot)
        await pilot.press("escape")  # skip the step at once
        await until(pilot, lambda: isinstance(app.screen, MoodScreen), "the closing mood")
        await pilot.press("escape")
        engine.release.set()  # the summary comes after both dialogs
        closed = await closed_when_the_next_session_starts(app, pilot, first)
        assert closed.ended is not None and closed.summary == "We talked about a long day at work."
