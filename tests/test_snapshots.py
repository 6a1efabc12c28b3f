"""Snapshots of the main screens at 80x24 and 120x40 (pytest-textual-snapshot).

Update after an intended change with: pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from tests.test_tui import make_app, send, unlock

SIZES = [(80, 24), (120, 40)]
IDS = ["80x24", "120x40"]
SHOWN_HOME = "/home/you/.local/share/haven"  # the data folder as the welcome notice shows it


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def show_fixed_home(app) -> None:
    """The notice names the data folder: show one fixed name, wherever the test runs."""
    render = app.prompts.render
    app.prompts.render = lambda name, **values: render(
        name, **({**values, "data_dir": SHOWN_HOME} if "data_dir" in values else values))


async def steady(pilot):
    """No blinking cursors: the screenshot must not depend on when it is taken."""
    for widget in pilot.app.screen.query("Input, TextArea"):
        widget.cursor_blink = False
    pilot.app.set_focus(None)  # a cursor caught mid-blink would differ from run to run
    await pilot.pause(0.2)
    for log in pilot.app.screen.query("#log"):
        log.scroll_end(animate=False)  # settle the conversation at its end, as a person sees it
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_welcome(snap_compare, home, size):
    app, _ = make_app(home, acknowledged=False, journal=False)
    show_fixed_home(app)
    assert snap_compare(app, terminal_size=size, run_before=steady)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_chat_after_a_reply(snap_compare, home, size):
    app, _ = make_app(home)

    async def run_before(pilot):
        await unlock(pilot)
        await send(pilot, "Work has been stressful this week")
        await steady(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_crisis_panel(snap_compare, home, size):
    app, _ = make_app(home, country="US")

    async def run_before(pilot):
        await unlock(pilot)
        await send(pilot, "I want to kill myself")
        await steady(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_journal(snap_compare, home, size):
    app, _ = make_app(home)

    async def run_before(pilot):
        await unlock(pilot)
        pilot.app.journal.add_note("A walk by the river helped")
        await pilot.press("f3")
        await steady(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_thought_record_form(snap_compare, home, size):
    app, _ = make_app(home)

    async def run_before(pilot):
        await unlock(pilot)
        await pilot.press("ctrl+t")
        await steady(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
