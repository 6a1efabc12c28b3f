"""How much the person believes the hot thought (issue 15): a plain 0-100 field under the
hot-thought choice, saved with the hot thought, shown when the record is reopened, in the
export, and counted in the Insights belief figure (never from fewer than three records).
Pilot tests at 80x24 and 120x40 on a real journal."""

from __future__ import annotations

import pytest
from textual.containers import VerticalScroll
from textual.widgets import Input, TabbedContent

from app.export.document import collect, to_markdown
from app.store import Journal
from app.store.records import AutomaticThought, ThoughtRecord
from app.tui.screens.chat import ChatScreen
from app.tui.screens.dialogs import DiscardScreen
from app.tui.screens.journal import JournalScreen
from app.tui.screens.thought_record import ThoughtRecordScreen
from app.tui.widgets.insights_panel import InsightsPanel
from tests.conftest import PASSPHRASE
from tests.scripted_engine import ScriptedEngine
from tests.test_tui import make_app, settle, type_text, unlock, until

SIZES = [(80, 24), (120, 40)]
FIELDS = ["situation", "moods", "thought-1", "thought-2", "thought-3", "hot", "hot_belief",
          "evidence_for", "evidence_against", "balanced", "belief", "moods_after", "traps"]


async def tab_to(pilot, form, field_id: str, seen: list[str]) -> None:
    """Tab through the form (as a person would) until ``field_id`` has the focus; every
    field met on the way must be on screen when it has the focus."""
    scroll = form.query_one(VerticalScroll)
    for _ in range(40):
        focused = pilot.app.focused
        if focused is not None and focused.id in FIELDS:
            if focused.id not in seen:
                seen.append(focused.id)
            visible = scroll.region.intersection(focused.region)
            assert visible.height >= 1, f"{focused.id} has the focus but is off screen"
        if focused is not None and focused.id == field_id:
            return
        await pilot.press("tab")
        await settle(pilot)
    raise AssertionError(f"Tab never reached {field_id}")


def figure_texts(screen) -> str:
    return "\n".join(str(s.render()) for s in screen.query_one(InsightsPanel).query(".figure"))


@pytest.mark.parametrize("size", SIZES)
async def test_the_hot_thought_belief_is_typed_saved_reopened_and_counted(tmp_path, size):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        # two records rated already: the figure needs a third
        for n in (1, 2):
            app.journal.save_thought_record(ThoughtRecord(
                situation=f"Earlier worry {n}",
                automatic_thoughts=[AutomaticThought(text="It will go wrong", hot=True,
                                                     belief=90)],
                balanced_thought="It has gone fine before", balanced_belief=50))
        await pilot.press("ctrl+t")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, ThoughtRecordScreen)
        await type_text(pilot, "Team meeting")  # the cursor starts in Situation
        seen: list[str] = []
        await tab_to(pilot, form, "thought-1", seen)
        await type_text(pilot, "They think I am useless")
        await tab_to(pilot, form, "hot", seen)
        await pilot.press("enter")  # the first choice: this thought is the hot one
        await settle(pilot)
        await tab_to(pilot, form, "hot_belief", seen)
        await type_text(pilot, "85")
        # Esc asks before anything typed is thrown away, and keeps it all
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DiscardScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is form and form.query_one("#hot_belief", Input).value == "85"
        await tab_to(pilot, form, "belief", seen)
        await type_text(pilot, "45")
        await tab_to(pilot, form, "traps", seen)
        assert seen == FIELDS  # every field, in order, each on screen when it had the focus
        await pilot.press("ctrl+s")
        await settle(pilot)
        record = next(t for t in app.journal.thought_records() if t.situation == "Team meeting")
        assert record.hot_thought == "They think I am useless"
        assert record.automatic_thoughts[0].belief == 85
        assert record.balanced_belief == 45
        await pilot.press("escape")  # saved: closes at once
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen)

        # reopened from the journal, the rating is there
        await pilot.press("f3")
        await settle(pilot)
        journal_screen = app.screen
        assert isinstance(journal_screen, JournalScreen)
        text = figure_texts(journal_screen)
        assert "In 3 thought records, you believed the hot thought 88 out of 100" in text
        journal_screen.query_one(TabbedContent).active = "records"
        await settle(pilot)
        records = journal_screen.query_one("#records-list")
        index = next(i for i, item in enumerate(records.children) if item.ref_id == record.id)
        records.index = index
        records.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ThoughtRecordScreen), "record reopened")
        reopened = app.screen
        assert reopened.query_one("#hot_belief", Input).value == "85"
        assert reopened.query_one("#belief", Input).value == "45"
        assert not reopened.has_unsaved_text()


async def test_a_belief_that_is_not_0_to_100_or_has_no_hot_thought_is_pointed_out(tmp_path):
    app, _ = make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        form = app.screen
        form.query_one("#situation").text = "A quiet evening alone"
        form.query_one("#thought-1", Input).value = "Nobody wants to see me"
        form.query_one("#hot_belief", Input).value = "120"
        form.action_save()
        problem = str(form.query_one("#problem").render())
        assert "Belief in the hot thought: a number from 0 to 100" in problem
        form.query_one("#hot_belief", Input).value = "70%"
        form.action_save()
        assert "choose which thought is the hot one" in str(form.query_one("#problem").render())
        assert app.journal.thought_records() == []  # nothing saved, nothing lost
        assert form.query_one("#thought-1", Input).value == "Nobody wants to see me"
        form.query_one("#hot-1").value = True
        form.action_save()
        saved = app.journal.thought_records()
        assert [t.belief for t in saved[0].automatic_thoughts] == [70]


async def test_a_draft_fills_only_empty_fields_and_keeps_the_belief_typed(tmp_path):
    draft = ('{"situation": "The team meeting", "moods": [], "automatic_thoughts": '
             '[{"text": "They think I am useless", "hot": true}], "evidence_for": "", '
             '"evidence_against": "", "balanced_thought": "One meeting is not a verdict", '
             '"distortions": []}')
    engine = ScriptedEngine(delay=0.005, completions=[draft])
    app, _ = make_app(tmp_path / "home", engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        await type_text(pilot, "The meeting went badly and I keep replaying it")
        await pilot.press("enter")
        await until(pilot, lambda: not app.screen.replying, "the reply")
        await pilot.press("ctrl+t")
        await settle(pilot)
        form = app.screen
        form.query_one("#hot_belief", Input).value = "80"
        form.query_one("#evidence_against").text = "My own words, typed while it drafted"
        await pilot.click("#draft")
        await until(pilot, lambda: form.query_one("#balanced").text, "the draft")
        assert form.query_one("#situation").text == "The team meeting"  # empty: filled
        assert form.query_one("#hot-1").value  # the draft chose the hot thought
        assert form.query_one("#hot_belief", Input).value == "80"  # and the rating stayed
        assert form.query_one("#evidence_against").text == "My own words, typed while it drafted"
        assert "what you wrote is unchanged" in str(form.query_one("#problem").render())
        form.action_save()
        saved = app.journal.thought_records()[0]
        assert saved.automatic_thoughts[0].belief == 80 and saved.hot_thought
        assert saved.evidence_against == "My own words, typed while it drafted"


def test_the_export_shows_the_hot_thought_belief(tmp_path):
    journal = Journal.create(tmp_path / "journal.db", PASSPHRASE)
    for n in range(3):
        journal.save_thought_record(ThoughtRecord(
            situation=f"Worry {n}",
            automatic_thoughts=[AutomaticThought(text="I will get it wrong", hot=True,
                                                 belief=80 + n)],
            balanced_thought="I usually manage", balanced_belief=50))
    md = to_markdown(collect(journal, None, None))
    journal.close()
    assert "I will get it wrong (belief 80/100)" in md
    assert "In 3 thought records, you believed the hot thought 81 out of 100" in md
