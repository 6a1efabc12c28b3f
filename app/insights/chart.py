"""A plain-text mood chart for the command line and the export: axes, dates, and a mark
only on days with a rating.

The x axis runs day by day from the first rated day to the last (or over the range
given). When there are more days than columns, a column stands for a few days and shows
the average of the rated days among them; a column whose days have no rating stays
empty. Nothing is drawn between points: a line would claim a value on a day without one.
"""

from __future__ import annotations

from datetime import date, timedelta

from app.insights.figures import MoodDay

MARK = "●"
AXIS_WIDTH = 4  # "10 ┤"


def _day_label(day: date) -> str:
    return f"{day.day} {day.strftime('%b')}"


def columns(days: list[MoodDay], width: int, first: date | None = None,
            last: date | None = None) -> tuple[list[float | None], list[date]]:
    """The plotted value of each column (``None``: no rating on its days) and the first
    day of each column, for a plot ``width`` columns wide."""
    if not days:
        return [], []
    first = first or days[0].day
    last = last or days[-1].day
    span = (last - first).days + 1
    per_column = max(1, -(-span // max(width, 1)))  # days per column, rounded up
    count = -(-span // per_column)
    totals: list[list[tuple[float, int]]] = [[] for _ in range(count)]
    for d in days:
        offset = (d.day - first).days
        if 0 <= offset < span:
            totals[offset // per_column].append((d.average, d.ratings))
    values: list[float | None] = []
    for bucket in totals:
        ratings = sum(n for _, n in bucket)
        values.append(sum(a * n for a, n in bucket) / ratings if ratings else None)
    starts = [first + timedelta(days=i * per_column) for i in range(count)]
    return values, starts


def render(days: list[MoodDay], width: int = 80, *, title: str | None = None,
           first: date | None = None, last: date | None = None) -> str:
    """The chart as text lines, at most ``width`` characters wide (y: 0-10, x: dates)."""
    plot_width = max(width - AXIS_WIDTH - 1, 10)
    values, starts = columns(days, plot_width, first, last)
    if not values:
        return ""
    # each day gets the same number of character cells (1 or more) so dates line up
    cell = max(1, plot_width // len(values))
    rows = []
    for level in range(10, -1, -1):
        line = []
        for value in values:
            mark = MARK if value is not None and round(value) == level else " "
            line.append(mark.ljust(cell))
        label = f"{level:>2} ┤" if level % 2 == 0 else "   │"
        rows.append((label + "".join(line)).rstrip())
    used = cell * len(values)
    rows.append("   └" + "─" * used)
    # date labels, left-aligned under their column, never overlapping
    labels = [" "] * width
    next_free = 0
    for index, start in enumerate(starts):
        text = _day_label(start)
        at = index * cell
        if at < next_free or AXIS_WIDTH + at + len(text) > width:
            continue
        labels[at:at + len(text)] = list(text)
        next_free = at + len(text) + 2
    rows.append(("    " + "".join(labels)).rstrip())
    if title:
        rows.insert(0, title)
    return "\n".join(rows)
