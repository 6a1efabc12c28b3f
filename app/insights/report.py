"""The figures as text: for ``haven insights`` (plain text) and the export (Markdown)."""

from __future__ import annotations

import textwrap

from app.insights import chart
from app.insights.figures import MINIMUM, Insights
from app.insights.words import Words, words


def _chart(result: Insights, w: Words, width: int) -> str:
    days = result.mood_days
    if not days:
        return ""
    return chart.render(days, width, title=w("insights.mood_by_day.chart_title"))


def render_text(result: Insights, width: int = 80, vocabulary: Words | None = None) -> str:
    """Heading, the mood chart, one paragraph per figure shown, then what is not shown yet."""
    w = vocabulary or words()
    width = max(width, 40)

    def para(text: str, bullet: str = "• ") -> str:
        return textwrap.fill(text, width, initial_indent=bullet,
                             subsequent_indent=" " * len(bullet))

    out = [w("insights.title"), textwrap.fill(w("insights.intro", minimum=MINIMUM), width), ""]
    drawn = _chart(result, w, width)
    if drawn:
        out += [drawn, ""]
    shown = result.shown
    if not shown:
        out += [textwrap.fill(w("insights.nothing", mood="haven mood add"), width), ""]
    out += [para(f.text) for f in shown]
    hidden = [f for f in result.figures if not f.shown]
    if hidden:
        out += [""] + [para(f.text, "  ") for f in hidden]
    return "\n".join(out).rstrip() + "\n"


def render_markdown(result: Insights, vocabulary: Words | None = None) -> list[str]:
    """The "Insights" section of the export's Markdown, as lines."""
    w = vocabulary or words()
    out = ["## Insights", "", f"*{w('insights.intro', minimum=MINIMUM)}*", ""]
    drawn = _chart(result, w, 80)
    if drawn:
        out += ["```text", drawn, "```", ""]
    shown = result.shown
    if not shown:
        out += [w("insights.nothing", mood="haven mood add"), ""]
    out += [f"- {f.text}" for f in shown]
    hidden = [f for f in result.figures if not f.shown]
    if shown:
        out.append("")
    if hidden:
        out += [f"- *{f.text}*" for f in hidden] + [""]
    return out
