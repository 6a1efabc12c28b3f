"""The mood chart widget (issue 15): axes, dates, and points only on days with ratings.

Update the snapshots after an intended change with:
pytest tests/test_mood_plot.py --snapshot-update
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from app.insights.figures import mood_days
from app.store.records import MoodEntry
from app.tui.widgets import mood_plot
from app.tui.widgets.mood_plot import MARKER, MoodPlot, date_ticks
from tests.month_journal import DAYS, FIRST_DAY, UNRATED, at

# The widgets' styles, as HavenApp loads them (app/tui/widgets/*.tcss).
WIDGET_CSS = [str(Path(mood_plot.__file__).with_name(name))
              for name in ("mood_plot.tcss", "insights_panel.tcss")]

SIZES = [(80, 24), (120, 40)]
IDS = ["80x24", "120x40"]


def month_days():
    entries = [MoodEntry(created=at(d, 8), score=3 + (d * 7) % 6)
               for d in range(DAYS) if d not in UNRATED]
    entries += [MoodEntry(created=at(d, 20), score=6) for d in (1, 4, 8)]  # two on some days
    from datetime import UTC
    return mood_days(entries, UTC)


class PlotApp(App):
    CSS_PATH = WIDGET_CSS

    def __init__(self, days) -> None:
        super().__init__()
        self.days = days

    def compose(self) -> ComposeResult:
        yield MoodPlot(self.days)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_mood_plot(snap_compare, size):
    assert snap_compare(PlotApp(month_days()), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_a_point_for_each_rated_day_and_none_for_the_others(size):
    days = month_days()
    assert len(days) == DAYS - len(UNRATED)
    app = PlotApp(days)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        plot = app.query_one(MoodPlot)
        text = plot.render().plain
        assert text.count(MARKER) == len(days)  # one point a rated day, nothing else drawn
        assert "25 Oct" in text and "23 Nov" in text  # dates along the bottom
        for tick in ("10", "8", "6", "4", "2", "0"):
            assert any(line.strip().startswith(tick) for line in text.splitlines())
        # a later rating moves nothing onto an unrated day
        plot.set_days(days[:3])
        await pilot.pause()
        assert plot.render().plain.count(MARKER) == 3


async def test_no_ratings_draws_empty_axes():
    app = PlotApp([])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = app.query_one(MoodPlot).render().plain
        assert MARKER not in text and "Mood by day" in text


def test_date_ticks_keep_the_first_and_last_day():
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    for width in (30, 80, 200):
        positions, labels = date_ticks(FIRST_DAY, last, width)
        assert positions[0] == 0 and positions[-1] == DAYS - 1
        assert labels[0] == "25 Oct" and labels[-1] == "23 Nov"
        assert len(labels) <= max(2, width // 9)


# ---- the Insights view --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def month_insights(tmp_path_factory):
    from datetime import UTC

    from app.insights.figures import compute, facts_from_journal
    from app.store import Journal
    from tests.conftest import PASSPHRASE
    from tests.month_journal import seed

    journal = Journal.create(tmp_path_factory.mktemp("panel") / "journal.db", PASSPHRASE)
    seed(journal)
    result = compute(facts_from_journal(journal), tz=UTC)
    journal.close()
    return result


class PanelApp(App):
    CSS_PATH = WIDGET_CSS

    def __init__(self, result) -> None:
        super().__init__()
        self.result = result

    def compose(self) -> ComposeResult:
        from app.tui.widgets.insights_panel import InsightsPanel, RecalledNote

        yield RecalledNote("Haven remembered: your thought record of 27 October")
        yield InsightsPanel()

    def on_mount(self) -> None:
        from app.tui.widgets.insights_panel import InsightsPanel

        self.query_one(InsightsPanel).show(self.result)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_insights_panel(snap_compare, month_insights, size):
    assert snap_compare(PanelApp(month_insights), terminal_size=size)


async def test_the_panel_shows_each_figure_with_its_count(month_insights):
    from app.tui.widgets.insights_panel import InsightsPanel

    app = PanelApp(month_insights)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        panel = app.query_one(InsightsPanel)
        texts = [str(s.render()) for s in panel.query(".figure")]
        assert len(texts) == len(month_insights.figures)
        assert any("over 7 sessions" in t for t in texts)
        assert panel.query_one(MoodPlot).display
