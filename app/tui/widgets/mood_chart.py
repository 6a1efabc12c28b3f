"""The mood trend: a sparkline of daily averages and a small weekly table."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from app.store.records import MoodEntry
from app.tui import keys


def daily_averages(entries: list[MoodEntry], days: int, today=None) -> list[float]:
    today = today or datetime.now().astimezone().date()
    by_day: dict = defaultdict(list)
    for entry in entries:
        by_day[entry.created.astimezone().date()].append(entry.score)
    out = []
    last = None
    for offset in range(days - 1, -1, -1):
        day = today - timedelta(days=offset)
        if by_day.get(day):
            last = sum(by_day[day]) / len(by_day[day])
        out.append(last if last is not None else 0.0)
    return out


def weekly_table(entries: list[MoodEntry], weeks: int = 8) -> Table:
    table = Table(box=None, padding=(0, 2))
    table.add_column("Week of")
    table.add_column("Average", justify="right")
    table.add_column("Entries", justify="right")
    by_week: dict = defaultdict(list)
    for entry in entries:
        day = entry.created.astimezone().date()
        by_week[day - timedelta(days=day.weekday())].append(entry.score)
    for monday in sorted(by_week, reverse=True)[:weeks]:
        scores = by_week[monday]
        table.add_row(monday.strftime("%d %b"), f"{sum(scores) / len(scores):.1f}/10", str(len(scores)))
    return table


class MoodChart(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("Mood over the last 30 days (0 = very low, 10 = very good)", id="mood-caption")
        yield Sparkline([], id="mood-spark")
        yield Static("", id="mood-weeks")

    def set_entries(self, entries: list[MoodEntry]) -> None:
        spark = self.query_one(Sparkline)
        weeks = self.query_one("#mood-weeks", Static)
        if not entries:
            spark.data = []
            weeks.update(f"No mood ratings yet. Check in from a session with {keys.MOOD.first}.")
            return
        spark.data = daily_averages(entries, 30)
        weeks.update(weekly_table(entries))
