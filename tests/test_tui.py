"""The Textual app, driven with App.run_test()'s pilot (scripted engine; real journal)."""

from __future__ import annotations

import pyrage
import pytest

from app.export.service import read_export
from app.paths import DataPaths
from app.settings import Settings, save_settings
from app.store import Journal
from app.tui.app import HavenApp
from app.tui.screens.chat import ChatScreen
from app.tui.screens.journal import JournalScreen
from app.tui.screens.thought_record import ThoughtRecordScreen
from app.tui.screens.unlock import CreatePassphraseScreen, UnlockScreen
from app.tui.screens.welcome import WelcomeScreen
from app.tui.widgets.chat_message import ChatMessage
from app.tui.widgets.crisis_panel import CrisisPanel
from tests.conftest import PASSPHRASE
from tests.scripted_engine import ScriptedEngine


def make_app(home, engine=None, acknowledged=True, journal=True, country="GB"):
    paths = DataPaths(home).ensure()
    settings = Settings(notice_acknowledged=acknowledged, country=country)
    save_settings(paths, settings)
    if journal and not Journal.exists(paths.journal):
        Journal.create(paths.journal, PASSPHRASE).close()
    engine = engine or ScriptedEngine(delay=0.005)
    return HavenApp(paths, settings, engine_factory=lambda spec: engine), engine


async def type_text(pilot, text):
    for ch in text:
        await pilot.press("space" if ch == " " else ch)


async def unlock(pilot):
    await type_text(pilot, PASSPHRASE)
    await pilot.press("enter")
    for _ in range(50):
        await pilot.pause(0.05)
        if isinstance(pilot.app.screen, ChatScreen):
            return
    raise AssertionError("did not unlock")


async def wait_idle(pilot, screen):
    for _ in range(200):
        await pilot.pause(0.05)
        if not screen.replying:
            return
    raise AssertionError("Haven was still replying after 10 s of pilot pauses")


async def settle(pilot, times: int = 3) -> None:
    """Let the app process what the last key or click started."""
    for _ in range(times):
        await pilot.pause()


async def until(pilot, condition, what: str, tries: int = 200) -> None:
    """Pause until ``condition()`` holds; fail saying ``what`` never happened."""
    for _ in range(tries):
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"never happened: {what}")


async def send(pilot, text):
    await type_text(pilot, text)
    await pilot.press("enter")
    await pilot.pause(0.05)
    await wait_idle(pilot, pilot.app.screen)


async def test_first_run_notice_passphrase_and_model_choice(tmp_path):
    app, _ = make_app(tmp_path / "home", acknowledged=False, journal=False)
    app.engine_factory = lambda spec: None  # no model yet
    async with app.run_test(size=(100, 32)) as pilot:
        assert isinstance(app.screen, WelcomeScreen)
        await pilot.click("#ack")
        await pilot.pause()
        assert isinstance(app.screen, CreatePassphraseScreen)
        await type_text(pilot, "short")
        await pilot.press("enter")
        await pilot.pause()
        assert "at least 8" in str(app.screen.query_one("#problem").render())
        assert app.focused.id == "first"  # the retyping lands in the box it belongs in
        app.screen.query_one("#first").value = PASSPHRASE
        app.screen.query_one("#second").value = PASSPHRASE
        await pilot.click("#create")
        for _ in range(60):
            await pilot.pause(0.05)
            if type(app.screen).__name__ == "ModelsScreen":
                break
        assert type(app.screen).__name__ == "ModelsScreen"  # choose, import or skip
        await pilot.pause()  # laid out: on a busy machine a click could land on (0, 0)
        await pilot.click("#close")
        await pilot.pause()
        assert isinstance(app.screen, ChatScreen)
        assert "No model yet" in app.engine_status()
        await send(pilot, "just writing")
        assert app.journal.messages(app.companion.session.id)[-1].content == "just writing"
    assert Settings.model_validate(app.settings.model_dump()).notice_acknowledged
    assert Journal.exists(tmp_path / "home" / "journal.db")


async def test_unlock_with_a_wrong_then_the_right_passphrase(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test() as pilot:
        assert isinstance(app.screen, UnlockScreen)
        await type_text(pilot, "wrong guess")
        await pilot.press("enter")
        for _ in range(40):
            await pilot.pause(0.05)
            if "tries left" in str(app.screen.query_one("#problem").render()):
                break
        assert "2 tries left" in str(app.screen.query_one("#problem").render())
        await unlock(pilot)
        assert app.focused.id == "box"  # the cursor is in the message box


async def test_a_streamed_reply_and_user_text_is_never_markup(tmp_path):
    app, engine = make_app(tmp_path / "home")
    async with app.run_test() as pilot:
        await unlock(pilot)
        await send(pilot, "hello [bold]there[/bold]")
        views = app.screen.query(ChatMessage)
        user = [v for v in views if v.role == "user"][0]
        assert user.content == "hello [bold]there[/bold]"
        assert "[bold]" in str(user.query_one(".body").render())
        reply = [v for v in views if v.role == "assistant"][-1]
        assert reply.content == "That sounds hard. What went through your mind?"
        stored = app.journal.messages(app.companion.session.id)
        assert [m.role for m in stored] == ["system", "user", "assistant"]
        assert stored[-1].status == "complete"


async def test_escape_cancels_a_reply(tmp_path):
    story = "Once there was a word. " * 200
    engine = ScriptedEngine(replies=[story], delay=0.05)
    app, _ = make_app(tmp_path / "home", engine=engine)
    async with app.run_test() as pilot:
        await unlock(pilot)
        await type_text(pilot, "tell me a story")
        await pilot.press("enter")
        for _ in range(200):  # until the first (checked, whole) sentence is on screen
            await pilot.pause(0.02)
            replies = [v for v in app.screen.query(ChatMessage) if v.role == "assistant"]
            if replies and replies[-1].content:
                break
        assert app.screen.replying
        await type_text(pilot, "typing while it replies")  # input is not blocked
        await pilot.press("escape")
        await wait_idle(pilot, app.screen)
        last = app.journal.messages(app.companion.session.id)[-1]
        assert last.status == "cancelled" and 0 < len(last.content) < len(story)
        assert last.content == replies[-1].content  # exactly what was shown
        assert app.screen.query_one("#box").text == "typing while it replies"


async def test_a_crisis_message_shows_resources_and_never_reaches_the_model(tmp_path):
    app, engine = make_app(tmp_path / "home", country="GB")
    async with app.run_test() as pilot:
        await unlock(pilot)
        await send(pilot, "I want to kill myself")
        panel = app.screen.query_one(CrisisPanel)
        assert panel.has_class("shown") and not panel.has_class("elevated")
        shown = str(panel.query_one("#crisis-resources").render())
        assert "Samaritans" in shown and "999" in shown
        assert engine.requests == []


async def test_saving_a_thought_record(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(100, 40)) as pilot:
        await unlock(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ThoughtRecordScreen)
        screen.query_one("#situation").text = "Team meeting, my idea was ignored"
        screen.query_one("#moods").value = "anxious 70, 10"
        screen.query_one("#thought-1").value = "They think I'm useless"
        screen.action_save()
        assert "not a feeling" in str(screen.query_one("#problem").render())
        screen.query_one("#moods").value = "anxious 70"
        screen.query_one("#hot-1").value = True
        screen.query_one("#traps").select("mind_reading")
        screen.action_save()
        records = app.journal.thought_records()
        assert len(records) == 1
        record = records[0]
        assert record.hot_thought == "They think I'm useless"
        assert [d.value for d in record.distortions] == ["mind_reading"]
        assert record.moods[0].intensity == 70


async def test_journal_search_highlights_matches(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(100, 32)) as pilot:
        await unlock(pilot)
        app.journal.add_note("Walking by the river calmed me down")
        await send(pilot, "I went to the river today")
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, JournalScreen)
        app.screen.search("river")
        await pilot.pause()
        results = app.screen.query_one("#search-results")
        assert len(results.children) == 2
        label = results.children[0].query_one("Label").render()
        assert "river" in str(label)
        assert "2 found" in str(app.screen.query_one("#search-count").render())


async def test_export_from_the_app(tmp_path):
    app, _ = make_app(tmp_path / "home")
    out = tmp_path / "export.age"
    async with app.run_test(size=(100, 40)) as pilot:
        await unlock(pilot)
        await send(pilot, "something to export")
        await pilot.press("f9")
        await pilot.pause()
        screen = app.screen
        screen.query_one("#path").value = str(out)
        screen.query_one("#pass1").value = "export passphrase"
        screen.query_one("#pass2").value = "export passphrase"
        await pilot.click("#export")
        for _ in range(100):
            await pilot.pause(0.1)
            if out.exists():
                break
        await pilot.pause(0.2)
    doc = read_export(out.read_bytes(), passphrase="export passphrase")
    assert any(m.content == "something to export" for m in doc.messages)
    with pytest.raises(pyrage.DecryptError):
        pyrage.passphrase.decrypt(out.read_bytes(), "wrong")


async def test_the_model_loads_while_the_passphrase_is_typed(tmp_path):
    app, engine = make_app(tmp_path / "home")
    started = []

    def factory(spec):
        started.append(app.service)  # None: the journal is not open yet
        return engine

    app.engine_factory = factory
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen)
        assert started == [None]  # loading behind the unlock screen
        await type_text(pilot, "not the passphrase")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen)
        app.screen.query_one("#passphrase").value = ""
        await unlock(pilot)
        assert app.engine is engine and started == [None]  # the same model, not a second one
    app.shutdown()


async def test_quitting_at_the_unlock_screen_closes_the_model_started_early(tmp_path):
    closed = []

    class Closing(ScriptedEngine):
        def close(self) -> None:
            closed.append(True)

    app, engine = make_app(tmp_path / "home", engine=Closing(delay=0.005))
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen) and not closed
        await pilot.press("ctrl+q")
        await settle(pilot)
    app.shutdown()
    assert closed == [True]
