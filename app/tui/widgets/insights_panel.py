"""The Insights view (issue 15): the mood chart with axes and dates, then each figure in
Haven's words with the entries it rests on, then what is not shown yet. A new widget for
the journal screen; it only shows an :class:`app.insights.Insights` it is given.

Also :class:`RecalledNote`, the quiet line under a reply: "Haven remembered: your thought
record of 27 October" (the ``line`` of a :class:`app.conversation.events.Recalled`).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from app.insights.figures import MINIMUM, Insights
from app.insights.words import words
from app.text import safe_rich
from app.tui import keys
from app.tui.widgets.mood_plot import MoodPlot


class InsightsPanel(VerticalScroll):
    def compose(self) -> ComposeResult:
        w = words()
        yield Static(safe_rich(w("insights.title")), id="insights-title")
        yield Static(safe_rich(w("insights.intro", minimum=MINIMUM)), id="insights-intro")
        yield MoodPlot(id="insights-chart")
        yield Static("", id="insights-figures")

    def show(self, result: Insights) -> None:
        """Show ``result`` (from :func:`app.insights.insights`)."""
        chart = self.query_one(MoodPlot)
        chart.set_days(result.mood_days)
        chart.display = bool(result.mood_days)
        figures = self.query_one("#insights-figures", Static)
        for old in self.query(".figure"):
            old.remove()
        shown = result.shown
        lines = [Static(safe_rich("• " + f.text), classes="figure") for f in shown]
        if not shown:
            lines.append(Static(safe_rich(words()("insights.nothing", mood=keys.MOOD.first)),
                                classes="figure"))
        lines += [Static(safe_rich(f.text), classes="figure figure-hidden")
                  for f in result.figures if not f.shown]
        self.mount_all(lines, after=figures)


class RecalledNote(Static):
    """The quiet line under a reply saying what Haven recalled for it."""

    def __init__(self, line: str, **kwargs) -> None:
        super().__init__(safe_rich(line), **kwargs)
