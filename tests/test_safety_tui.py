"""The safety parts of the real app under the pilot, at 80x24 and 120x40 (scripted engine,
real encrypted journal): crisis help that stays, Haven's questions, the SOS key on every
screen, the safety plan, the country step and the reply guard after Esc."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from app.export.document import collect, to_markdown
from app.paths import DataPaths
from app.safety.resources import all_resources, format_resources, resources_for
from app.settings import Settings, load_settings, save_settings
from app.tui.app import HavenApp
from app.tui.screens.chat import ChatScreen
from app.tui.screens.country import ELSEWHERE, CountryScreen
from app.tui.screens.dialogs import TextPromptScreen
from app.tui.screens.safety_plan import SafetyPlanScreen
from app.tui.screens.sos import SosScreen
from app.tui.screens.unlock import CreatePassphraseScreen, UnlockScreen
from app.tui.screens.welcome import WelcomeScreen
from app.tui.widgets.chat_message import ChatMessage
from app.tui.widgets.crisis_panel import CrisisPanel, resources_text
from tests.scripted_engine import ScriptedEngine
from tests.test_tui import make_app, send, type_text, unlock, until, wait_idle

SIZES = [(80, 24), (120, 40)]
IDS = ["80x24", "120x40"]
CRISIS = "I'm going to kill myself tonight"
ELEVATED = "I wish I could disappear"


def screen_text(app) -> str:
    """What a person sees on the terminal right now, as plain text."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system=None, record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True,
                                                       screen_stack=app._background_screens))
    return console.export_text()


@pytest.mark.parametrize("kind", ["self", "medical", "danger", "others"])
def test_the_panel_and_the_command_line_give_the_same_help(kind):
    """One formatter: the panel, the conversation and `haven sos` list the same lines."""
    for code in all_resources():
        found = resources_for(code, kind=kind)
        panel = resources_text(found, kind).plain.splitlines()
        plain = format_resources(found, kind).splitlines()
        markdown = [line for line in format_resources(found, kind, markdown=True).splitlines()
                    if line]
        assert [line.strip().lstrip("•").strip() for line in plain] \
            == [line.lstrip("•").strip() for line in panel] \
            == [line.strip("*").removeprefix("- ") for line in markdown]
        assert len(panel) == 1 + len(found.services)


def conversation(app) -> list[ChatMessage]:
    return list(app.screen.query(ChatMessage))


async def settle(pilot, times=4):
    for _ in range(times):
        await pilot.pause(0.05)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_crisis_help_comes_first_and_stays_in_the_conversation(tmp_path, size):
    app, engine = make_app(tmp_path / "home", country="GB")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await send(pilot, "Work has been awful this week")
        assert len(engine.requests) == 1
        await send(pilot, CRISIS)
        await settle(pilot)
        panel = app.screen.query_one(CrisisPanel)
        assert panel.has_class("shown")
        seen = screen_text(app)
        # the numbers are on screen without scrolling, above Haven's words
        assert "call 999 now" in seen and "116 123" in seen and "85258" in seen
        assert "^o SOS" in seen  # the SOS key is in the footer at this size too
        assert len(engine.requests) == 1  # the crisis never reached the model
        await pilot.press("escape")  # "I've read this"
        await settle(pilot)
        assert not panel.has_class("shown")
        crisis_view = [v for v in conversation(app) if v.has_class("crisis")][-1]
        assert "116 123" in crisis_view.content and "999" in crisis_view.content
        # later messages stay with Haven, with the services, and never reach the model
        await send(pilot, "ok")
        await settle(pilot)
        assert panel.has_class("shown") and "116 123" in screen_text(app)
        assert "Are you safe right now?" in conversation(app)[-1].content
        assert len(engine.requests) == 1
        # a new session talks with the model again
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert not panel.has_class("shown")
        await send(pilot, "hello again")
        assert len(engine.requests) == 2


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_the_questions_with_buttons_and_yes_to_a_plan_is_a_crisis(tmp_path, size):
    app, engine = make_app(tmp_path / "home", country="US")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await send(pilot, ELEVATED)
        await settle(pilot)
        answers = app.screen.query_one("#answers")
        assert answers.has_class("shown")
        seen = screen_text(app)
        assert "wished you were dead" in seen and "Not sure" in seen
        for choice in ("yes", "yes", "no", "no"):  # wish_dead, thoughts, method, intent
            await pilot.click(f"#answer-{choice}")
            await wait_idle(pilot, app.screen)
            await settle(pilot, 2)
        assert "worked out, the details" in conversation(app)[-1].content  # the plan question
        await pilot.click("#answer-yes")
        await wait_idle(pilot, app.screen)
        await settle(pilot)
        assert app.screen.query_one(CrisisPanel).has_class("shown")
        assert not answers.has_class("shown")
        assert "988" in screen_text(app)
        assert engine.requests == []
        stored = app.journal.screener_answers(app.companion.session.id)
        assert [a.answer for a in stored] == ["yes", "yes", "no", "no", "yes"]


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_a_denial_does_not_close_the_questions(tmp_path, size):
    app, engine = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await send(pilot, ELEVATED)
        answers = app.screen.query_one("#answers")
        assert answers.has_class("shown")
        await send(pilot, "you misunderstood, I meant from this boring party")
        await settle(pilot)
        assert not answers.has_class("shown")
        assert len(engine.requests) == 1  # the conversation goes on
        await send(pilot, ELEVATED)  # signs come back: asked again
        await settle(pilot)
        assert answers.has_class("shown")
        assert "check in with you again" in conversation(app)[-1].content
        await pilot.press("ctrl+o")  # help stays one key away while the questions are open
        await settle(pilot)
        assert isinstance(app.screen, SosScreen)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_sos_works_before_unlock_in_dialogs_and_in_the_chat(tmp_path, size):
    app, engine = make_app(tmp_path / "home", country="GB")
    async with app.run_test(size=size) as pilot:
        assert isinstance(app.screen, UnlockScreen)
        assert "^o SOS" in screen_text(app)
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert isinstance(app.screen, SosScreen)
        seen = screen_text(app)
        assert "116 123" in seen and "999" in seen
        assert "once your journal is open" in seen and "Breathe" in seen
        await pilot.press("ctrl+o")  # pressing again never closes help
        await settle(pilot)
        assert sum(isinstance(s, SosScreen) for s in app.screen_stack) == 1
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen)
        await pilot.press("f12")  # the function-key alias
        await settle(pilot)
        assert isinstance(app.screen, SosScreen)
        await pilot.press("escape")
        await settle(pilot)
        await unlock(pilot)
        await pilot.press("ctrl+r")  # a dialog with a text field
        await settle(pilot)
        assert isinstance(app.screen, TextPromptScreen)
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert isinstance(app.screen, SosScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, TextPromptScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen)
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert "not written a safety plan yet" in screen_text(app)
        assert engine.requests == []


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_the_safety_plan_is_written_kept_encrypted_and_shown_first(tmp_path, size):
    home = tmp_path / "home"
    app, engine = make_app(home, country="GB")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await pilot.press("ctrl+o")
        await settle(pilot)
        await pilot.click("#sos-edit-plan")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, SafetyPlanScreen)
        await type_text(pilot, "I stop answering my phone")  # the first step has the cursor
        form.query_one("#helpers").text = "Sam MARKER-plan 07700 900123"
        await pilot.press("escape")  # changes not saved: asks first, nothing lost
        await settle(pilot)
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("escape")  # keep editing
        await settle(pilot)
        assert app.screen is form and "MARKER-plan" in form.query_one("#helpers").text
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, SosScreen)
        assert "MARKER-plan" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        plan = app.journal.safety_plan()
        assert plan.warning_signs == "I stop answering my phone"
        await send(pilot, CRISIS)
        await settle(pilot)
        panel = app.screen.query_one(CrisisPanel)
        assert "MARKER-plan" in str(panel.query_one("#crisis-plan").render())
        seen = screen_text(app)
        assert seen.index("116 123") < seen.index("My safety plan")  # numbers, then the plan
        assert "My warning signs" in seen
        assert engine.requests == []
        doc = collect(app.journal, None, None)
        assert "MARKER-plan" in to_markdown(doc) and doc.safety_plan is not None
    raw = b"".join(p.read_bytes() for p in home.glob("journal.db*"))
    assert b"MARKER-plan" not in raw


async def test_first_run_asks_for_the_country_sorted_by_english_name(tmp_path):
    home = tmp_path / "home"
    paths = DataPaths(home).ensure()
    settings = Settings()  # a real first run: nothing chosen yet
    app = HavenApp(paths, settings, engine_factory=lambda spec: None)
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, WelcomeScreen)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CountryScreen)
        seen = screen_text(app)
        assert "local emergency number" in seen and "findahelpline.com" in seen
        chooser = app.screen.query_one("#countries")
        names = [str(chooser.get_option_at_index(i).prompt) for i in range(chooser.option_count)]
        assert names[0] == ELSEWHERE
        assert names[1:] == sorted(names[1:], key=str.casefold)
        assert "Germany" in names and "Deutschland" not in names
        await pilot.press("ctrl+o")  # SOS works here too
        await settle(pilot)
        assert isinstance(app.screen, SosScreen) and "findahelpline.com" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        for _ in range(names.index("United Kingdom")):
            await pilot.press("down")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CreatePassphraseScreen)
    saved = load_settings(paths)
    assert saved.country == "GB" and saved.country_confirmed

    # the next start goes straight on; someone who chose "elsewhere" is not asked again
    saved.country = "international"
    save_settings(paths, saved)
    again = HavenApp(paths, load_settings(paths), engine_factory=lambda spec: None)
    async with again.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(again.screen, CreatePassphraseScreen)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_a_reply_claiming_to_be_a_person_is_never_shown_even_after_esc(tmp_path, size,
                                                                              monkeypatch):
    reply = ("That sounds hard. It makes sense you feel worn out after a week like that. "
             "I'm a 19-year-old female student from Ohio and I get it, honestly, so much.")
    engine = ScriptedEngine(replies=[reply, reply], delay=0.03)
    drawn: list[str] = []
    original = ChatMessage.append

    async def record(self, text):
        drawn.append(text)
        await original(self, text)

    monkeypatch.setattr(ChatMessage, "append", record)
    app, _ = make_app(tmp_path / "home", engine=engine)
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await type_text(pilot, "I'm so tired")
        await pilot.press("enter")
        for _ in range(200):  # stop as soon as the first words are on screen
            await pilot.pause(0.02)
            if drawn:
                break
        await pilot.press("escape")
        await wait_idle(pilot, app.screen)
        await send(pilot, "and again")  # this time let it run to the end
        await settle(pilot)
        assert drawn and "19" not in "".join(drawn)
        assert all("19-year-old" not in v.content for v in conversation(app))
        assert "19-year-old" not in screen_text(app)
        stored = [m for m in app.journal.messages(app.companion.session.id)
                  if m.role == "assistant"]
        assert stored[0].status == "cancelled" and "19" not in stored[0].content
        assert "not a person" in stored[1].content
        assert "19-year-old" not in to_markdown(collect(app.journal, None, None))


@pytest.mark.parametrize("size", SIZES)
async def test_a_crisis_written_with_a_mood_opens_help_at_once(tmp_path, size):
    """The note and the feelings named with a mood never reach the model, but they pass
    the risk check: a crisis there opens the SOS screen, and the mood is still saved."""
    from app.tui.screens.mood import MoodScreen

    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await pilot.press("f2")
        await pilot.pause()
        mood = app.screen
        assert isinstance(mood, MoodScreen)
        await pilot.press("right")
        mood.query_one("#note").value = "I'm going to kill myself tonight"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SosScreen), "the SOS screen", tries=20)
        # an ordinary note says only that the mood is saved
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("f2")
        for _ in range(5):
            await pilot.pause()
        assert isinstance(app.screen, MoodScreen)
        await pilot.press("right")
        app.screen.query_one("#note").value = "slept badly, work was fine"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat", tries=20)
    notes = [m.note for m in app.journal.moods()]
    assert notes == ["I'm going to kill myself tonight", "slept badly, work was fine"]
