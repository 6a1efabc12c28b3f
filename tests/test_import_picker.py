"""The model import picker (issue 16 item 4): a file chosen from a tree or pasted, checked,
and a format chosen from a list when the file has none. Driven with App.run_test() at 80x24
and 120x40 on small GGUF files built for the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Input, OptionList

from app.tui.app import HavenApp
from app.tui.screens.import_model import (
    FORMAT_WORDS,
    ImportChoice,
    ImportModelScreen,
    ModelFileTree,
    guess_format,
)
from tests.gguf_factory import make_gguf
from tests.test_tui import until

SIZES = [(80, 24), (120, 40)]
TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


class Host(App):
    """Opens the picker and keeps what it answered (with the app's own styles)."""

    CSS_PATH = HavenApp.CSS_PATH

    def __init__(self, start: Path) -> None:
        super().__init__()
        self.start = start
        self.answers: list[ImportChoice | None] = []

    def on_mount(self) -> None:
        self.push_screen(ImportModelScreen(self.start), self.answers.append)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "Downloads").mkdir()
    bare = tmp_path / "Downloads" / "gemma-3-270m-Q4_K_M.gguf"
    bare.write_bytes(make_gguf())  # no chat template of its own
    with_template = tmp_path / "Downloads" / "tiny-chat.gguf"
    with_template.write_bytes(make_gguf(template=TEMPLATE))
    (tmp_path / "Downloads" / "notes.txt").write_text("not a model")
    (tmp_path / ".hidden").mkdir()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 10)
    return tmp_path, bare, with_template, broken


async def settle(pilot, times: int = 4) -> None:
    for _ in range(times):
        await pilot.pause(0.05)


def said(screen) -> str:
    return str(screen.query_one("#problem").render())


@pytest.mark.parametrize("size", SIZES)
async def test_a_bare_path_to_a_file_without_a_template_ends_with_a_format_from_a_list(
        files, size):
    root, bare, _, _ = files
    app = Host(root)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ImportModelScreen)
        screen.query_one("#path", Input).focus()
        await pilot.press(*str(bare))  # pasted or typed: a bare path, no options
        await pilot.press("enter")
        formats = screen.query_one("#formats", OptionList)
        await until(pilot, lambda: formats.has_class("shown"), "the list of formats", tries=100)
        assert "Which family" in said(screen) and "--" not in said(screen)
        assert app.focused is formats
        shown = [str(formats.get_option_at_index(i).prompt) for i in range(formats.option_count)]
        assert "Gemma (Google)" in shown and "Llama 3 (Meta)" in shown
        # the file name suggests Gemma: it is highlighted, and Enter takes it
        assert formats.get_option_at_index(formats.highlighted).id == "gemma"
        assert formats.region.height >= 3 and screen.region.contains_region(formats.region)
        assert screen.region.contains_region(screen.query_one("#check").region)
        assert str(screen.query_one("#check").label) == "Import"  # not "Save"
        await pilot.press("enter")
        await settle(pilot)
    assert app.answers == [ImportChoice(bare, "gemma")]


async def test_a_file_with_its_own_template_needs_no_format(files):
    root, _, with_template, _ = files
    app = Host(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.query_one("#path", Input).value = str(with_template)
        await pilot.click("#check")
        await until(pilot, lambda: app.answers, "the picker to close", tries=100)
    assert app.answers == [ImportChoice(with_template, None)]


async def test_the_tree_shows_folders_and_gguf_files_only_and_choosing_one_checks_it(files):
    root, bare, _, _ = files
    app = Host(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tree = app.screen.query_one(ModelFileTree)
        await until(pilot, lambda: len(tree.root.children) > 0, "the folder to load", tries=100)
        top = [node.data.path.name for node in tree.root.children]
        assert "Downloads" in top and ".hidden" not in top
        downloads = next(n for n in tree.root.children if n.data.path.name == "Downloads")
        downloads.expand()
        await until(pilot, lambda: len(downloads.children) > 0, "Downloads to open", tries=100)
        names = sorted(node.data.path.name for node in downloads.children)
        assert names == ["gemma-3-270m-Q4_K_M.gguf", "tiny-chat.gguf"]  # no notes.txt
        node = next(n for n in downloads.children if n.data.path == bare)
        tree.select_node(node)
        await until(pilot, lambda: app.screen.query_one("#formats").has_class("shown"),
                    "the list of formats", tries=100)
        assert app.screen.query_one("#path", Input).value == str(bare)


async def test_a_wrong_path_or_a_broken_file_says_so_plainly_and_keeps_the_path(files):
    root, _, _, broken = files
    app = Host(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        box = screen.query_one("#path", Input)
        box.value = str(root / "nowhere.gguf")
        await pilot.click("#check")
        await settle(pilot)
        assert said(screen) == f"There is no file at {root / 'nowhere.gguf'}."
        assert box.value == str(root / "nowhere.gguf")  # not forgotten
        box.value = str(broken)
        await pilot.click("#check")
        await until(pilot, lambda: "cannot be used" in said(screen), "the check", tries=100)
        assert box.value == str(broken) and not app.answers
        assert "Error" not in said(screen) and "--" not in said(screen)
        await pilot.press("escape")
        await settle(pilot)
    assert app.answers == [None]


def test_every_format_haven_knows_has_plain_words_and_names_guess_well():
    from app.conversation.service import chat_formats

    assert set(chat_formats()) <= set(FORMAT_WORDS)
    assert guess_format(Path("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf")) == "llama-3"
    assert guess_format(Path("qwen2.5-1.5b-instruct-q4_k_m.gguf")) == "qwen"
    assert guess_format(Path("model.gguf")) is None


async def test_models_import_opens_the_picker_and_installs_the_chosen_file(files, tmp_path):
    """F4 → Import…: the picker, not a box wanting a command line; a file without a template
    gets its family from the list and ends up installed."""
    from app.tui.screens.models import ModelsScreen
    from tests.test_tui import make_app, unlock

    root, bare, _, _ = files
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, ModelsScreen), "the models screen", tries=100)
        models = app.screen
        await pilot.click("#import")
        await until(pilot, lambda: isinstance(app.screen, ImportModelScreen), "the picker", tries=100)
        picker = app.screen
        picker.query_one("#path", Input).focus()
        await pilot.press(*str(bare))
        await pilot.press("enter")
        formats = picker.query_one("#formats", OptionList)
        await until(pilot, lambda: formats.has_class("shown"), "the list of families", tries=100)
        assert formats.get_option_at_index(formats.highlighted).id == "gemma"  # from its name
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is models, "the picker to close", tries=100)
        await until(pilot, lambda: app.service.installed_models(), "the import", tries=100)
    installed = app.service.installed_models()
    assert len(installed) == 1
    assert next(iter(installed.values())).chat_format == "gemma"


async def test_a_failed_download_leaves_no_bar_at_zero_and_says_why_in_words(tmp_path, monkeypatch):
    from textual.widgets import ProgressBar

    from app.conversation.service import ModelError
    from app.tui.screens.models import ModelsScreen
    from tests.test_tui import make_app, unlock

    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)

        def offline(name, progress):
            raise ModelError("cannot reach the model hub (no connection). Check your internet "
                             "connection and try again")

        monkeypatch.setattr(app.service, "download_model", offline)
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, ModelsScreen), "the models screen", tries=100)
        await pilot.click("#download")  # the recommended model is selected
        status = app.screen.query_one("#status")
        await until(pilot, lambda: "no connection" in str(status.render()), "the failure", tries=100)
        assert not app.screen.query_one(ProgressBar).display
        assert "Error" not in str(status.render())
        assert str(app.screen.query_one("#download").label) == "Download"
