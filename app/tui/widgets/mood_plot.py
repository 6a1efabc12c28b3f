"""The mood chart with axes and dates (issue 15), drawn with textual-plotext.

Mood (0-10) up the side, dates along the bottom, and a point only on days with at least
one rating: a day without one has nothing drawn (no 0, no line through it, nothing
carried over from the day before). Fed :class:`app.insights.MoodDay` values — the
``mood_by_day`` figure, which is empty until there are three rated days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from textual_plotext import PlotextPlot

from app.insights.figures import MoodDay
from app.insights.words import words

MARKER = "●"
#: At most this many date labels along the bottom (fewer on a narrow chart).
MAX_DATES = 8


def _label(day: date) -> str:
    return f"{day.day} {day.strftime('%b')}"


def date_ticks(first: date, last: date, width: int) -> tuple[list[int], list[str]]:
    """Positions (days from ``first``) and labels for the x axis, evenly spread, always
    with the first and the last day, never more than the width allows."""
    span = (last - first).days
    room = max(2, min(MAX_DATES, width // 9))
    if span <= 0:
        return [0], [_label(first)]
    step = max(1, -(-span // (room - 1)))
    positions = list(range(0, span, step))
    if span - positions[-1] < step / 2 and len(positions) > 1:
        positions.pop()
    positions.append(span)
    return positions, [_label(first + timedelta(days=p)) for p in positions]


class MoodPlot(PlotextPlot):
    """Mood by day: axes, dates, and points only on rated days."""

    def __init__(self, days: Iterable[MoodDay] = (), *, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(name=name, id=id, classes=classes)
        self._days = list(days)

    @property
    def days(self) -> list[MoodDay]:
        return list(self._days)

    def set_days(self, days: Iterable[MoodDay]) -> None:
        self._days = list(days)
        self.refresh()

    def render(self):
        self._draw()
        return super().render()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.title(words()("insights.mood_by_day.chart_title"))
        plt.ylim(0, 10)
        plt.yticks([0, 2, 4, 6, 8, 10])
        if not self._days:
            plt.xticks([], [])
            return
        first, last = self._days[0].day, self._days[-1].day
        xs = [(d.day - first).days for d in self._days]
        plt.scatter(xs, [d.average for d in self._days], marker=MARKER)
        plt.xlim(-0.5, (last - first).days + 0.5)
        positions, labels = date_ticks(first, last, self.size.width or 80)
        plt.xticks(positions, labels)
