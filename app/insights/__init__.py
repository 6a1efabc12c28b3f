"""Insights from the person's own journal (issue 15): recall for the prompt, and figures.

A "parts" package: it reads the journal (:mod:`app.store`) and uses the risk check
(:mod:`app.safety`); it never imports the engine, the conversation layer or the UI.

- :func:`recall` — the earlier items relevant to a message, as a budgeted prompt block
  and the labels the person sees ("Haven remembered: …").
- :func:`insights` — the figures (mood by day, before/after sessions, thinking traps,
  belief, feelings, steps), each with the entries it rests on; none from fewer than 3.
- :func:`render_text`, :func:`render_markdown` — the figures for the command line and
  the export; :func:`app.insights.chart.render` — the plain-text mood chart.
"""

from app.insights.figures import MINIMUM, Figure, Insights, MoodDay, compute, insights
from app.insights.recall import Recall, RecalledItem, estimate_tokens, recall
from app.insights.report import render_markdown, render_text

__all__ = [
    "MINIMUM", "Figure", "Insights", "MoodDay", "Recall", "RecalledItem", "compute",
    "estimate_tokens", "insights", "recall", "render_markdown", "render_text",
]
