"""The returning session's opening: one pattern from the person's journal, in Haven's
words (``prompts/insights.toml`` ``[opening]``), never the model's (issue 15).

Haven's opening already names the last between-session step (``prompts/opening_return.md``).
:func:`returning_pattern` adds at most one sentence, chosen in this order:

1. a thinking trap the person marked in a thought record of the last session that has
   come up in at least :data:`~app.insights.figures.MINIMUM` thought records (the most
   frequent of them): it is about what they were working on last time;
2. otherwise, when their mood has risen from the start to the end of sessions (over at
   least three sessions), that.

Nothing when recall is off (``settings.recall``), when the last session reached crisis,
or when no figure rests on enough entries. A failure is logged (never the person's
words) and the opening goes ahead without a pattern.
"""

from __future__ import annotations

import logging

from app.insights.figures import MINIMUM, compute, facts_from_journal
from app.insights.words import Words, words
from app.store.records import Session

log = logging.getLogger(__name__)


def returning_pattern(journal, last: Session, settings=None,
                      vocabulary: Words | None = None) -> str | None:
    """One sentence about a pattern for a person coming back after ``last``, or ``None``."""
    if settings is not None and not getattr(settings, "recall", True):
        return None
    try:
        if any(m.risk_level == "crisis" for m in journal.messages(last.id)):
            return None
        w = vocabulary or words()
        result = compute(facts_from_journal(journal), vocabulary=w)
        traps = result.figure("traps")
        if traps.shown and traps.value:
            marked_last = {d.value for t in journal.thought_records() if t.session_id == last.id
                           for d in t.distortions}
            for trap in traps.value["traps"]:  # most frequent first
                if trap["key"] in marked_last and trap["count"] >= MINIMUM:
                    return w("opening.trap", name=trap["name"].lower(), count=trap["count"])
        moods = result.figure("mood_sessions")
        if moods.shown and moods.value and moods.value["change"] >= 0.5:
            change = f"{moods.value['change']:.1f}".removesuffix(".0")
            return w("opening.mood_rose", count=moods.value["sessions"], change=change)
    except Exception as exc:  # noqa: BLE001 - a pattern is a help, never a reason to fail
        log.warning("no pattern for the opening (%s)", type(exc).__name__)
    return None
