"""What a new person's first five minutes found (issue 16 item 5), each pinned with the app
driven as they would drive it: App.run_test() at 80x24 and 120x40, real journal, scripted
engine."""

from __future__ import annotations

import ast
import re

import pytest
from textual.widgets import Input

from app.cbt import normalise_emotion
from app.export.service import describe_counts
from app.store.records import parse_emotions
from app.tui.screens.export import ExportScreen
from app.tui.screens.mood import MoodScreen
from app.tui.screens.settings import SettingsScreen
from app.tui.screens.thought_record import ThoughtRecordScreen
from app.tui.screens.unlock import CreatePassphraseScreen, UnlockScreen
from tests.conftest import ROOT, run_haven
from tests.test_tui import make_app, settle, type_text, unlock

SIZES = [(80, 24), (120, 40)]
#: Command-line syntax, which no screen of the app shows: a haven command, an --option, a
#: PATH placeholder.
CLI_SYNTAX = re.compile(r"\bhaven [a-z]|(^|[\s(])--?[a-z]|\bPATH\b")


def problem_text(screen) -> str:
    return str(screen.query_one("#problem").render())


# --- passphrase ---------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
async def test_a_too_short_passphrase_keeps_the_cursor_where_the_retyping_belongs(tmp_path, size):
    app, _ = make_app(tmp_path / "home", acknowledged=True, journal=False)
    app.engine_factory = lambda spec: None
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, CreatePassphraseScreen)
        await type_text(pilot, "short")
        await pilot.press("enter")
        await settle(pilot)
        assert "at least 8" in problem_text(app.screen)
        assert app.focused.id == "first"  # not moved on to the confirmation
        await type_text(pilot, "er than that")  # the person goes on typing
        await settle(pilot)
        assert app.screen.query_one("#first", Input).value == "shorter than that"
        assert app.screen.query_one("#second", Input).value == ""
        assert problem_text(app.screen) == ""  # the error about the last try is gone
        await pilot.press("enter")
        await settle(pilot)
        assert app.focused.id == "second"


async def test_different_passphrases_say_so_until_the_person_types_again(tmp_path):
    app, _ = make_app(tmp_path / "home", acknowledged=True, journal=False)
    app.engine_factory = lambda spec: None
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await type_text(pilot, "a long passphrase")
        await pilot.press("enter")
        await type_text(pilot, "a long passphrasf")
        await pilot.press("enter")
        await settle(pilot)
        assert "different" in problem_text(app.screen)  # clearing the box does not hide it
        assert app.focused.id == "second"
        await type_text(pilot, "a")
        await settle(pilot)
        assert problem_text(app.screen) == ""


async def test_three_wrong_passphrases_leave_a_line_on_the_terminal(tmp_path, capsys):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        for attempt in range(3):
            assert isinstance(app.screen, UnlockScreen)
            await type_text(pilot, f"wrong guess {attempt}")
            await pilot.press("enter")
            for _ in range(60):
                await pilot.pause(0.05)
                if not app.screen.query_one("#passphrase", Input).disabled or attempt == 2:
                    break
        for _ in range(100):  # the app closes itself a moment after the third
            await pilot.pause(0.05)
            if app._exit:
                break
    assert app.return_code == 2
    said = " ".join(capsys.readouterr().err.split())  # wrapped at the terminal's width
    assert said.startswith("haven: that passphrase did not open") and "unchanged" in said


# --- mood -----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
async def test_the_mood_row_answers_arrow_keys_and_enter_stays_put(tmp_path, size):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await pilot.press("f2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MoodScreen)
        assert app.focused.id == "score-5"
        await pilot.press("right", "right", "left")
        await settle(pilot)
        assert app.focused.id == "score-6" and screen.score == 6
        read = screen.query_one("#score-read")
        assert "Chosen: 6 of 10" in str(read.render()) and read.region.height == 1
        assert screen.query_one("#score-6").has_class("chosen")
        await pilot.press("enter")
        await settle(pilot)
        assert app.focused.id == "score-6" and screen.score == 6  # no silent jump
        await pilot.press("tab")  # the row is one stop: Tab goes on to the emotions
        await settle(pilot)
        assert app.focused.id == "emotions"
        await pilot.press("shift+tab")
        await settle(pilot)
        assert app.focused.id == "score-6"
        await pilot.press("tab")
        await type_text(pilot, "gutted, on edge 70")
        await settle(pilot)
        said = str(screen.query_one("#emotions-read").render())
        assert "gutted 50" in said and "on edge 70" in said
        assert "counts as 50" in said  # a bare word's intensity is said, not silent
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert not isinstance(app.screen, MoodScreen)
    entry = app.journal.moods()[-1]
    assert entry.score == 6
    assert [(e.name, e.intensity) for e in entry.emotions] == [("gutted", 50), ("on edge", 70)]


def test_emotions_are_the_persons_own_words():
    assert normalise_emotion("  Gutted ") == "gutted"
    assert normalise_emotion("a bit  On Edge") == "a bit on edge"
    assert [(r.name, r.intensity) for r in parse_emotions("gutted 80%, wiped out")] == [
        ("gutted", 80), ("wiped out", 50)]
    for bad, words in (("70", "not a feeling"), ("sad 1x", "number 0-100"),
                       ("<b>sad</b> 5", "letters only"), ("sad 150", "100")):
        with pytest.raises(ValueError, match=words):
            parse_emotions(bad)


def test_the_command_line_takes_the_persons_own_words_too(haven_home):
    result = run_haven(haven_home, "mood", "add", "4", "--emotion", "gutted=80")
    assert result.returncode == 0, result.stderr
    assert "gutted" in run_haven(haven_home, "mood", "list").stdout


@pytest.mark.parametrize("spec, words", [("sad=150", "from 0 to 100"), ("sad=1x", "number 0-100"),
                                         ("sad", "e.g. anxious=60")])
def test_the_command_line_reads_a_feeling_as_the_app_does(haven_home, spec, words):
    result = run_haven(haven_home, "mood", "add", "4", "--emotion", spec)
    assert result.returncode == 2
    assert result.stderr.startswith("haven: --emotion:") and words in result.stderr
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        parse_emotions(spec, default=None)


# --- forms ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
async def test_tab_into_a_filled_field_adds_to_it_and_the_hot_thought_choice_shows_thoughts(
        tmp_path, size):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ThoughtRecordScreen)
        screen.query_one("#thought-1", Input).focus()
        await type_text(pilot, "I always mess up")
        await pilot.press("tab")
        await type_text(pilot, "They noticed")
        await pilot.press("shift+tab")
        await type_text(pilot, " meetings")
        await settle(pilot)
        assert screen.query_one("#thought-1", Input).value == "I always mess up meetings"
        labels = [str(screen.query_one(f"#hot-{n}").label) for n in (1, 2, 3)]
        assert labels[0] == "I always mess up meetings" and labels[1] == "They noticed"
        assert "thought 3" in labels[2]  # an empty slot says so
        screen.query_one("#thought-3", Input).value = "[b]not markup[/b] " + "x" * 100
        await settle(pilot)
        label = str(screen.query_one("#hot-3").label)
        assert label.startswith("[b]not markup[/b]") and label.endswith("…")


def test_every_text_field_in_the_app_keeps_its_text_when_tabbed_into():
    """Input selects all on focus by default, so typing after Tab replaced a filled field.
    Every Input the app builds must say select_on_focus=False (PassphraseInput does)."""
    missing = []
    for path in sorted((ROOT / "app" / "tui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Input":
                keywords = {k.arg: k.value for k in node.keywords}
                value = keywords.get("select_on_focus")
                if not (isinstance(value, ast.Constant) and value.value is False):
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not missing, missing


# --- export ---------------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
async def test_every_export_field_can_be_seen_when_reached_and_export_is_in_view(tmp_path, size):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await pilot.press("f9")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExportScreen)
        whole = screen.region
        actions = screen.query_one("#actions").region
        assert whole.contains_region(screen.query_one("#export").region)  # no scrolling needed
        assert app.focused.id == "path"
        seen = []
        for _ in range(12):
            focused = app.focused
            assert focused is not None and focused.id, "Tab reached something with no name"
            if focused.id in seen:
                break
            seen.append(focused.id)
            region = focused.region
            assert region.height >= 3 and region.width >= 10, (focused.id, region)  # all of it
            assert whole.contains_region(region), focused.id
            if focused.id not in ("export", "close"):
                assert not region.overlaps(actions), focused.id
            await pilot.press("tab")
            await settle(pilot, 2)
        assert seen == ["path", "pass1", "pass2", "recipient", "since", "until", "format",
                        "export", "close"]


def test_counts_are_said_in_good_english():
    assert describe_counts({"sessions": 2, "notes": 1, "mood_entries": 1}) == (
        "2 sessions, 1 note, 1 mood entry")
    assert describe_counts({"messages": 1200}) == "1,200 messages"


# --- settings -------------------------------------------------------------------------------

async def test_settings_open_focused_and_speak_plainly(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await pilot.press("f8")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        assert app.focused is not None and app.focused.id == "country"
        shown = " ".join(str(label.render()) for label in screen.query("Label"))
        for jargon in ("Top-p", "Repeat penalty", "Seed"):
            assert jargon not in shown
        screen.query_one("#top_p", Input).value = "5"
        screen.action_save()
        await settle(pilot)
        said = problem_text(screen)
        assert said.startswith("Range of words it picks from: at most 1")
        assert "generation" not in said and "Input should" not in said
    assert app.settings.generation.top_p != 5



# --- journal search -------------------------------------------------------------------------

async def test_a_search_result_keeps_the_spaces_around_the_match(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        app.journal.add_note("My manager said the  report was late\nagain")
        await pilot.press("f3")
        await settle(pilot)
        app.screen.search("manager")
        await settle(pilot)
        results = app.screen.query_one("#search-results")
        shown = str(results.children[0].query_one("Label").render())
        assert "My manager said the report was late again" in shown


def test_every_dialog_with_a_save_button_saves_with_ctrl_s():
    import importlib
    import inspect
    import pkgutil

    from textual.screen import Screen

    import app.tui.screens as screens

    without = []
    for info in pkgutil.iter_modules(screens.__path__):
        module = importlib.import_module(f"app.tui.screens.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, Screen) or cls.__module__ != module.__name__:
                continue
            if 'Button("Save' in inspect.getsource(cls):
                keys = {b.key if hasattr(b, "key") else b[0] for b in cls.BINDINGS}
                if "ctrl+s" not in keys:
                    without.append(name)
    assert not without, without


# --- sessions -------------------------------------------------------------------------------

async def test_an_untitled_session_has_one_name_everywhere(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        session = app.companion.session
        assert session.title is None
        name = "Untitled session"
        sidebar = str(app.screen.query_one("SessionList").children[0].query_one("Label").render())
        assert sidebar.startswith(name) and "New session" not in sidebar
        app.screen.query_one("SessionList").focus()
        await pilot.press("delete")
        await settle(pilot)
        question = str(app.screen.query_one("Static").render())
        assert f"Delete “{name}” (today)" in question and "this session" not in question
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        timeline = app.screen.query_one("#timeline-list")
        shown = " ".join(str(item.query_one("Label").render()) for item in timeline.children)
        assert name in shown


async def test_a_crisis_only_session_does_not_blame_a_missing_model(tmp_path):
    from app.tui.screens.closing import ClosingScreen
    from tests.test_tui import send

    app, engine = make_app(tmp_path / "home", country="GB")
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        assert app.engine is not None and app.engine.ready
        await send(pilot, "I want to kill myself")
        assert engine.requests == []  # a crisis never reaches the model
        await pilot.press("ctrl+g")
        for _ in range(60):
            await pilot.pause(0.05)
            if isinstance(app.screen, ClosingScreen):
                break
        assert isinstance(app.screen, ClosingScreen)
        said = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "no model" not in said and "No summary this time" in said


@pytest.mark.parametrize("size", SIZES)
async def test_notifications_leave_the_message_box_clear(tmp_path, size):
    from textual.widgets._toast import Toast

    from app.tui.widgets.message_box import MessageBox

    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size, notifications=True) as pilot:
        await unlock(pilot)
        for n in range(3):
            app.notify(f"Something happened, number {n}, and this is what it was about.")
        await settle(pilot, 5)
        box = app.screen.query_one(MessageBox).region
        toasts = list(app.screen.query(Toast))
        assert toasts
        for toast in toasts:
            assert not toast.region.overlaps(box), (toast.region, box)


# --- 80 columns -----------------------------------------------------------------------------

def footer_keys(screen) -> list[str]:
    """The footer's keys a person can read whole (none cut off at the terminal's edge)."""
    from textual.widgets._footer import FooterKey

    footer = screen.query_one("Footer")
    whole = screen.region.intersection(footer.region)
    shown = []
    for key in footer.query(FooterKey):
        if whole.contains_region(key.region) and key.region.width >= len(key.description):
            shown.append(key.description)
    return shown


@pytest.mark.parametrize("size", SIZES)
async def test_every_key_a_person_needs_is_in_the_footer(tmp_path, size):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await settle(pilot)
        shown = footer_keys(app.screen)
        for needed in ("SOS", "New", "Mood", "Thoughts", "End", "Journal", "Models", "Help",
                       "Quit"):
            assert needed in shown, (needed, shown)
        if size[0] >= 100:
            assert "Commands" in shown  # at 80 columns Help lists Ctrl+P with the rest
        for key, needed in (("f3", ("Back", "New note")), ("f4", ("Back",)),
                            ("f8", ("Back", "Save")), ("ctrl+t", ("Close", "Save"))):
            await pilot.press(key)
            await settle(pilot)
            shown = footer_keys(app.screen)
            for label in (*needed, "SOS", "Help", "Quit"):
                assert label in shown, (key, label, shown)
            app.screen.dismiss()
            await settle(pilot)


async def test_at_80_columns_the_conversation_has_the_whole_width(tmp_path):
    from app.tui.widgets.message_box import MessageBox
    from app.tui.widgets.session_list import SessionList

    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        await settle(pilot)
        sidebar = app.screen.query_one(SessionList)
        assert sidebar.display and sidebar.region.width > 0
        await pilot.resize_terminal(80, 24)  # the window made smaller
        await settle(pilot, 5)
        assert not sidebar.display
        assert app.screen.query_one(MessageBox).region.width >= 78
        await pilot.press("ctrl+b")  # the person asks for the sessions: they stay
        await settle(pilot)
        assert sidebar.display
        await pilot.resize_terminal(81, 24)
        await settle(pilot, 5)
        assert sidebar.display
        await pilot.press("ctrl+b")
        await pilot.resize_terminal(120, 40)
        await settle(pilot, 5)
        assert not sidebar.display


# --- no command line in the app -------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
async def test_an_unreachable_hub_points_to_import_in_plain_words(tmp_path, size, monkeypatch):
    import huggingface_hub

    from app.tui.screens.models import ModelsScreen
    from tests.test_tui import until

    def unreachable(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(huggingface_hub.HfApi, "get_paths_info", unreachable)
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, ModelsScreen), "the models screen")
        await pilot.click("#download")  # the recommended model is selected
        status = app.screen.query_one("#status")
        await until(pilot, lambda: "no connection" in str(status.render()), "the failure")
        said = str(status.render())
        assert "Models → Import…" in said
        assert not CLI_SYNTAX.search(said), said


def test_no_text_the_app_shows_has_command_line_syntax():
    """Every string in the app's screens and widgets (not docstrings) and every prompt text
    the app renders; the command line's own words live in app/cli and the modelhub errors'
    str(), which the service swaps for their in_app words."""
    found = []
    for path in sorted((ROOT / "app" / "tui").rglob("*.py")):
        tree = ast.parse(path.read_text())
        docs = {id(node.body[0].value) for node in ast.walk(tree)
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                     ast.AsyncFunctionDef))
                and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docs and CLI_SYNTAX.search(node.value)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]}")
    for path in sorted((ROOT / "prompts").rglob("*")):
        if path.suffix not in (".md", ".toml") or path.name in (
                "README.md", "rules.toml", "reply_rules.toml"):  # patterns, never shown
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.lstrip().startswith("#") and CLI_SYNTAX.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line[:60]}")
    assert not found, found


def test_the_modelhub_says_import_in_each_front_ends_words():
    from app.modelhub.download import _hub_unreachable

    error = _hub_unreachable(OSError("refused"))
    assert "haven models import PATH" in str(error)  # the command line keeps its command
    assert "Models → Import…" in error.in_app and not CLI_SYNTAX.search(error.in_app)


@pytest.mark.parametrize("size", SIZES)
async def test_search_finds_a_word_in_a_mood_note_with_its_spaces_intact(tmp_path, size):
    from textual.widgets import TextArea

    from app.tui.screens.journal import JournalScreen, NoteScreen
    from app.tui.screens.mood import MoodScreen
    from tests.test_tui import until

    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await pilot.press("f2")  # the person rates their mood and writes a note
        await until(pilot, lambda: isinstance(app.screen, MoodScreen), "the mood dialog")
        await pilot.press("right", "tab")
        await type_text(pilot, "gutted 70")
        await pilot.press("tab")
        await type_text(pilot, "My manager said the report was late")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, MoodScreen), "the mood saved")
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, JournalScreen), "the journal")
        screen = app.screen
        screen.query_one("TabbedContent").active = "search"
        await settle(pilot)
        screen.query_one("#search-box", Input).focus()
        await type_text(pilot, "manager")
        results = screen.query_one("#search-results")
        await until(pilot, lambda: len(results.children) == 1, "one result")
        shown = str(results.children[0].query_one("Label").render())
        assert shown.startswith("Mood")
        assert "My manager said the report was late" in shown  # the spaces intact
        assert "1 found" in str(screen.query_one("#search-count").render())
        screen.query_one("#search-box", Input).value = ""  # the feeling named is found too
        await type_text(pilot, "gutted")
        await until(pilot, lambda: len(results.children) == 1
                    and "gutted" in str(results.children[0].query_one("Label").render()),
                    "the feeling found")
        results.focus()
        results.index = 0
        await settle(pilot)
        await pilot.press("enter")  # and the entry opens to be read
        await until(pilot, lambda: isinstance(app.screen, NoteScreen), "the mood entry")
        text = app.screen.query_one(TextArea).text
        assert "Mood 6 of 10" in text and "gutted 70" in text and "report was late" in text


# --- after help -----------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
async def test_after_help_the_cursor_is_back_in_the_message_box(tmp_path, size):
    from app.tui.screens.help import HelpScreen
    from app.tui.widgets.message_box import MessageBox
    from tests.test_tui import until

    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        await type_text(pilot, "half a thought")
        for close in ("escape", "f1"):  # Help closes with Esc or with F1 again
            await pilot.press("f1")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
            await pilot.press(close)
            await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "help closed")
            await settle(pilot)
            assert isinstance(app.focused, MessageBox), (close, app.focused)
        await type_text(pilot, " more")
        assert app.screen.query_one(MessageBox).text == "half a thought more"
