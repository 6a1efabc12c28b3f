"""Nothing typed is ever lost (issue 16, item 3): Esc, Close, Skip or Cancel on a form with
free text asks "Discard what you wrote?" (Keep editing / Discard); an empty form closes at
once. Pilot tests at 80x24 and 120x40."""

from __future__ import annotations

import pytest

from app.tui.screens.chat import ChatScreen
from app.tui.screens.closing import ClosingScreen
from app.tui.screens.dialogs import DiscardScreen, TextPromptScreen
from app.tui.screens.journal import JournalScreen, NoteScreen
from app.tui.screens.mood import MoodScreen
from app.tui.screens.thought_record import ThoughtRecordScreen
from tests.test_tui import make_app, send, settle, type_text, unlock

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES)
async def test_escape_in_a_filled_thought_record_asks_and_keeps_the_text(tmp_path, size):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, ThoughtRecordScreen)
        await type_text(pilot, "My boss frowned at me")  # the cursor starts in Situation
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DiscardScreen)
        assert "Discard what you wrote?" in str(app.screen.query_one(".title").render())
        assert app.focused.id == "keep"  # the safe answer is the default
        await pilot.press("escape")  # Esc on the question = keep editing
        await settle(pilot)
        assert app.screen is form
        assert form.query_one("#situation").text == "My boss frowned at me"
        await pilot.click("#close")  # the Close button asks too
        await settle(pilot)
        assert isinstance(app.screen, DiscardScreen)
        await pilot.click("#keep")
        await settle(pilot)
        assert app.screen is form and form.query_one("#situation").text == "My boss frowned at me"
        # saved text is no longer at risk: Esc closes at once
        form.action_save()
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen)
        assert app.journal.thought_records()[0].situation == "My boss frowned at me"


@pytest.mark.parametrize("size", SIZES)
async def test_escape_in_a_filled_note_asks_and_keeps_the_text(tmp_path, size):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, JournalScreen)
        await pilot.press("ctrl+n")
        await settle(pilot)
        note = app.screen
        assert isinstance(note, NoteScreen)
        await type_text(pilot, "Today was heavy")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DiscardScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is note and note.query_one("#note").text == "Today was heavy"
        assert app.journal.notes() == []
        # and choosing Discard really discards
        await pilot.press("escape")
        await settle(pilot)
        await pilot.click("#discard")
        await settle(pilot)
        assert isinstance(app.screen, JournalScreen)
        assert app.journal.notes() == []


async def test_an_empty_form_closes_at_once(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        await type_text(pilot, "x")
        await pilot.press("backspace")  # typed and taken back: nothing to lose
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen)
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, JournalScreen)


async def test_the_mood_note_closing_step_and_rename_ask_too(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        await send(pilot, "hello")
        chat = app.screen
        # mood note
        await pilot.press("f2")
        await settle(pilot)
        mood = app.screen
        assert isinstance(mood, MoodScreen)
        mood.query_one("#note").value = "slept badly"
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DiscardScreen)
        await pilot.click("#keep")
        await settle(pilot)
        assert app.screen is mood and mood.query_one("#note").value == "slept badly"
        await pilot.click("#skip")
        await settle(pilot)
        assert isinstance(app.screen, DiscardScreen)
        await pilot.click("#discard")
        await settle(pilot)
        assert app.screen is chat
        # rename: an unchanged title closes at once, a changed one asks
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert isinstance(app.screen, TextPromptScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is chat
        await pilot.press("ctrl+r")
        await settle(pilot)
        await type_text(pilot, "Monday")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DiscardScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, TextPromptScreen)
        assert app.screen.query_one("Input").value.endswith("Monday")
        await pilot.press("enter")
        await settle(pilot)
        # the closing step
        app.push_screen(ClosingScreen(None))
        await settle(pilot)
        closing = app.screen
        await type_text(pilot, "walk after lunch")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DiscardScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is closing and closing.query_one("Input").value == "walk after lunch"


async def test_quitting_with_unsent_words_asks_first(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await type_text(pilot, "half a thought")
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert isinstance(app.screen, DiscardScreen) and app.is_running
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.query_one("#box").text == "half a thought"
        await pilot.press("ctrl+q")
        await settle(pilot)
        await pilot.click("#discard")
        await settle(pilot)
    assert app.return_code == 0


async def test_a_save_that_fails_keeps_every_word_on_screen(tmp_path):
    """A full disk (or a journal replaced underneath) at the moment of saving."""
    from app.store import DiskFull

    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        journal, companion = app.journal, app.companion

        failing = {"on": True}

        def full_then(real):
            def call(*args, **kwargs):
                if failing["on"]:
                    raise DiskFull("save that")
                return real(*args, **kwargs)
            return call

        full = full_then(None)

        # a note
        await pilot.press("f3")
        await settle(pilot)
        journal.add_note = full_then(journal.add_note)
        await pilot.press("ctrl+n")
        await settle(pilot)
        note = app.screen
        await type_text(pilot, "do not lose me")
        note.action_save()
        await settle(pilot)
        assert app.screen is note and note.query_one("#note").text == "do not lose me"
        assert "disk is full" in str(note.query_one("#problem").render())
        failing["on"] = False
        note.action_save()
        await settle(pilot)
        assert [n.body for n in journal.notes()] == ["do not lose me"]
        await pilot.press("escape")
        await settle(pilot)
        # a thought record
        await pilot.press("ctrl+t")
        await settle(pilot)
        form = app.screen
        await type_text(pilot, "the situation")
        failing["on"] = True
        real_save = companion.save_thought_record
        companion.save_thought_record = full
        form.action_save()
        await settle(pilot)
        assert app.screen is form and form.query_one("#situation").text == "the situation"
        assert "disk is full" in str(form.query_one("#problem").render())
        companion.save_thought_record = real_save
        # a mood note
        await pilot.press("escape")
        await settle(pilot)
        await pilot.click("#discard")
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        mood = app.screen
        await pilot.click("#score-6")
        mood.query_one("#note").value = "tired but ok"
        real_mood = companion.record_mood
        companion.record_mood = full
        await pilot.click("#save")
        await settle(pilot)
        assert app.screen is mood and mood.query_one("#note").value == "tired but ok"
        assert "disk is full" in str(mood.query_one("#problem").render())
        companion.record_mood = real_mood
        # Textual ignores a click on a button still showing its last press (0.2 s): a second
        # click that soon is dropped, so wait as a person would until Save can be pressed again
        save = mood.query_one("#save")
        while save.has_class("-active"):
            await pilot.pause(0.05)
        await pilot.click("#save")
        for _ in range(100):  # under load the dialog can take more than a few frames to close
            await settle(pilot)
            if isinstance(app.screen, ChatScreen):
                break
        assert isinstance(app.screen, ChatScreen)
        assert [m.note for m in journal.moods()] == ["tired but ok"]
