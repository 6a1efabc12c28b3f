"""Issue 15: what recall puts into the model's prompt, as the companion sends it (a real
SQLCipher journal seeded with a month of entries; a scripted engine records each request)."""

from __future__ import annotations

import pytest

from app.conversation.companion import Companion
from app.conversation.events import Crisis, Recalled, ReplyStarted
from app.insights.recall import DEFAULT_BUDGET, estimate_tokens
from app.settings import Settings
from app.store import Journal
from tests.conftest import PASSPHRASE
from tests.month_journal import seed
from tests.scripted_engine import ScriptedEngine

SAME_THEME = "I have to present the quarterly figures to my team on Friday and I'm dreading it"
UNRELATED = "What's a good recipe for banana bread?"


@pytest.fixture
def seeded(tmp_path):
    opened = []

    def make(name: str, **settings):
        journal = Journal.create(tmp_path / f"{name}.db", PASSPHRASE)
        opened.append(journal)
        ids = seed(journal)
        engine = ScriptedEngine()
        companion = Companion(journal=journal, engine=engine,
                              settings=Settings(country="GB", **settings))
        companion.start_session()
        return companion, engine, ids

    yield make
    for journal in opened:
        journal.close()


def test_recall_adds_a_budgeted_block_after_the_stable_prefix(seeded):
    on, on_engine, ids = seeded("on")
    off, off_engine, _ = seeded("off", recall=False)
    events = list(on.send(SAME_THEME))
    list(off.send(SAME_THEME))
    with_recall, without = on_engine.requests[-1], off_engine.requests[-1]
    # the stable part is exactly the same: system prompt (with memory) and earlier turns
    assert with_recall.system == without.system
    assert "tidy the kitchen for ten minutes" in with_recall.system  # memory is in it
    assert with_recall.turns[:-1] == without.turns[:-1]
    # the person's words come first; the block follows them, within its budget
    assert without.turns[-1].content == SAME_THEME
    newest = with_recall.turns[-1].content
    assert newest.startswith(SAME_THEME + "\n\n")
    block = newest.removeprefix(SAME_THEME + "\n\n")
    assert block.startswith("From earlier in this person's journal")
    assert "everyone will see I'm incompetent" in block
    assert estimate_tokens(block) <= DEFAULT_BUDGET
    # the UI is told what was recalled, before the reply starts
    recalled = [e for e in events if isinstance(e, Recalled)]
    assert len(recalled) == 1
    assert ids["record_presentation"] in {i.ref_id for i in recalled[0].items}
    assert "your thought record of 27 October" in recalled[0].line
    assert recalled[0].line.startswith("Haven remembered: ")
    kinds = [type(e) for e in events]
    assert kinds.index(Recalled) < kinds.index(ReplyStarted)


def test_the_next_request_shares_everything_up_to_the_block(seeded):
    companion, engine, _ = seeded("next")
    list(companion.send(SAME_THEME))
    list(companion.send("And my manager will be there too, watching the figures"))
    first, second = engine.requests
    assert second.system == first.system
    assert second.turns[:len(first.turns) - 1] == first.turns[:-1]
    earlier = second.turns[len(first.turns) - 1]
    assert earlier.content == SAME_THEME  # history is the person's words, never the block
    assert first.turns[-1].content.startswith(earlier.content)
    # and nothing recalled is ever written into the journal
    stored = [m.content for m in companion.journal.messages(companion.session.id)]
    assert SAME_THEME in stored
    assert not any("From earlier in this person's journal" in text for text in stored)


def test_recall_off_means_no_recall(seeded, monkeypatch):
    companion, engine, _ = seeded("off", recall=False)
    looked = []
    monkeypatch.setattr(companion.journal, "recall",
                        lambda *a, **k: looked.append(a) or [])
    events = list(companion.send(SAME_THEME))
    assert not any(isinstance(e, Recalled) for e in events)
    assert engine.requests[-1].turns[-1].content == SAME_THEME
    assert looked == []  # the journal was not even searched


def test_an_unrelated_message_recalls_nothing(seeded):
    companion, engine, _ = seeded("unrelated")
    events = list(companion.send(UNRELATED))
    assert not any(isinstance(e, Recalled) for e in events)
    assert engine.requests[-1].turns[-1].content == UNRELATED


def test_a_crisis_recalls_nothing_and_never_reaches_the_model(seeded):
    companion, engine, _ = seeded("crisis")
    events = list(companion.send(
        "I'm going to kill myself after the presentation at work, I have the pills"))
    assert any(isinstance(e, Crisis) for e in events)
    assert not any(isinstance(e, Recalled) for e in events)
    assert engine.requests == []


def test_a_failing_recall_never_stops_the_reply(seeded, monkeypatch, caplog):
    companion, engine, _ = seeded("failing")

    def broken(*args, **kwargs):
        raise RuntimeError("disk trouble")

    monkeypatch.setattr(companion.journal, "recall", broken)
    events = list(companion.send(SAME_THEME))
    assert any(isinstance(e, ReplyStarted) for e in events)
    assert engine.requests[-1].turns[-1].content == SAME_THEME
    assert "quarterly" not in caplog.text  # never the person's words in the log


# ---- the returning session's opening ----------------------------------------------------------


def test_a_returning_session_opens_with_the_last_step_and_one_pattern(tmp_path):
    from app.conversation.prompts import prompt_library
    from app.insights.words import words

    journal = Journal.create(tmp_path / "journal.db", PASSPHRASE)
    try:
        seed(journal)
        companion = Companion(journal=journal, engine=ScriptedEngine(),
                              settings=Settings(country="GB"))
        opening = companion.start_session()
        assert opening.returning
        step_part = prompt_library().render("opening_return.md",
                                            step="tidy the kitchen for ten minutes")
        assert opening.text.startswith(step_part)
        pattern = opening.text.removeprefix(step_part).strip()
        # the last session marked no thinking trap: the mood pattern, in Haven's words
        assert pattern == words()("opening.mood_rose", count=7, change="1.3")
        stored = journal.messages(companion.session.id)
        assert stored[0].role == "system" and stored[0].content == opening.text
        # with recall off, the step only
        off = Companion(journal=journal, engine=ScriptedEngine(),
                        settings=Settings(country="GB", recall=False))
        assert off.start_session().text == step_part
    finally:
        journal.close()


def test_the_pattern_is_a_trap_from_last_time_that_keeps_coming_up(tmp_path):

    from app.insights.opening import returning_pattern
    from app.store.records import AutomaticThought, ThoughtRecord
    from tests.month_journal import at

    journal = Journal.create(tmp_path / "journal.db", PASSPHRASE)
    try:
        ids = seed(journal)
        last = journal.session(ids["session_24"])
        journal.insert_if_new(ThoughtRecord(
            created=at(24, 19), updated=at(24, 19), session_id=last.id,
            situation="the messy kitchen", distortions=["mind_reading"],
            automatic_thoughts=[AutomaticThought(text="visitors will think I'm a slob",
                                                 hot=True)]))
        assert returning_pattern(journal, last) == (
            "Something you have noticed before: mind reading has come up in 4 of your "
            "thought records. It may be worth keeping an eye out for it.")
        # a last session that reached crisis brings no pattern at all
        crisis = journal.session(ids["session_14"])
        assert returning_pattern(journal, crisis) is None
    finally:
        journal.close()


async def test_the_app_says_quietly_what_haven_remembered_under_the_reply(tmp_path):
    """In the app, a reply that used the journal has a quiet line under it naming what
    was recalled; a reply that recalled nothing has none."""
    from app.paths import DataPaths
    from app.tui.widgets.chat_message import ChatMessage
    from app.tui.widgets.insights_panel import RecalledNote
    from tests.test_tui import make_app, send, unlock

    home = tmp_path / "home"
    paths = DataPaths(home).ensure()
    journal = Journal.create(paths.journal, PASSPHRASE)
    seed(journal)
    journal.close()
    app, _ = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        await send(pilot, UNRELATED)
        assert not list(app.screen.query(RecalledNote))
        await send(pilot, SAME_THEME)
        notes = list(app.screen.query(RecalledNote))
        assert len(notes) == 1
        line = str(notes[0].render())
        assert line.startswith("Haven remembered:") and "thought record" in line
        # it sits under the reply it belongs to
        log = notes[0].parent
        before = log.children[log.children.index(notes[0]) - 1]
        assert isinstance(before, ChatMessage) and before.role == "assistant"


async def test_the_journal_shows_the_persons_patterns_with_the_chart(tmp_path):
    """F3 → Mood: the chart of rated days and each figure with what it rests on."""
    from app.paths import DataPaths
    from app.tui.widgets.insights_panel import InsightsPanel
    from app.tui.widgets.mood_plot import MoodPlot
    from tests.test_tui import make_app, unlock, until

    home = tmp_path / "home"
    journal = Journal.create(DataPaths(home).ensure().journal, PASSPHRASE)
    seed(journal)
    journal.close()
    app, _ = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        await pilot.press("f3")
        await until(pilot, lambda: list(app.screen.query(InsightsPanel)), "the journal", tries=20)
        panel = app.screen.query_one(InsightsPanel)
        assert panel.query_one(MoodPlot).display  # a month of ratings: the chart is drawn
        shown = [str(s.render()) for s in panel.query(".figure") if not s.has_class("figure-hidden")]
        assert shown and all(line.startswith("• ") for line in shown)
        assert not any("Nothing to show yet" in line for line in shown)
