"""The mood chart widget (issue 15): axes, dates, and points only on days with ratings.

Update the snapshots after an intended change with:
pytest tests/test_mood_plot.py --snapshot-update
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.app import App, ComposeResult

from app.insights.figures import mood_days
from app.store.records import MoodEntry
from app.tui.widgets.mood_plot import MARKER, MoodPlot, date_ticks
from tests.month_journal import DAYS, FIRST_DAY, UNRATED, at

SIZES = [(80, 24), (120, 40)]
IDS = ["80x24", "120x40"]


def month_days():
    entries = [MoodEntry(created=at(d, 8), score=3 + (d * 7) % 6)
               for d in range(DAYS) if d not in UNRATED]
    entries += [MoodEntry(created=at(d, 20), score=6) for d in (1, 4, 8)]  # two on some days
    from datetime import UTC
    return mood_days(entries, UTC)


class PlotApp(App):
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
