"""The person's patterns, worked out from their journal (issue 15).

Each figure says how many entries it rests on (``entries``) and is shown only from
:data:`MINIMUM` entries up; below that it carries no numbers at all (``value`` is
``None``), only Haven's words saying how many more it needs. The words come from
``prompts/insights.toml`` (:mod:`app.insights.words`), never from the model.

What each figure rests on, and how it is worked out:

- **mood_by_day**: mood ratings (``mood_entries``: every check-in, and the start and end
  ratings of sessions), averaged per local calendar day. Only days with a rating exist;
  a day without one has no value at all (never a 0). Shown from 3 rated days.
- **mood_sessions**: sessions with a rating at the start *and* at the end; the average of
  (end - start). Shown from 3 such sessions.
- **traps**: thought records with at least one thinking trap marked; how many of them
  mark each trap (names from ``prompts/techniques/distortions.toml``). Shown from 3.
- **belief**: thought records where the person rated their belief in the hot thought and
  in the balanced thought (0-100); the average of each. Shown from 3.
- **feelings**: thought records whose feelings were rated before and re-rated after
  (the same feeling in both); the average intensity before and after. Shown from 3.
- **steps**: the between-session steps planned at the end of a session that has a later
  session. A step counts as *followed up* when the next session began with Haven asking
  about it (its opening words quote the step, as ``prompts/opening_return.md`` does) and
  the person wrote in that session. The journal cannot know whether a step was *done*;
  it knows whether it was come back to. The latest step, with no session after it yet,
  is not counted either way; nor is a step whose session after is the latest one and has
  no words from the person yet (it may be going on now: Haven has just asked). Shown from
  3 steps with a session after them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from statistics import mean
from typing import Literal

from pydantic import BaseModel, ConfigDict

from app.cbt import Distortion
from app.insights.words import Words, words
from app.store.records import Message, MoodEntry, Session, SessionStart, ThoughtRecord, Timestamp

#: No figure is shown from fewer entries than this.
MINIMUM = 3

FigureKey = Literal["mood_by_day", "mood_sessions", "traps", "belief", "feelings", "steps"]
ORDER: tuple[FigureKey, ...] = ("mood_by_day", "mood_sessions", "traps", "belief", "feelings",
                                "steps")


class MoodDay(BaseModel):
    """One local calendar day with at least one mood rating."""

    model_config = ConfigDict(frozen=True)

    day: date
    average: float
    ratings: int
    low: int
    high: int


class TrapCount(BaseModel):
    key: Distortion
    name: str
    count: int


class Figure(BaseModel):
    """One figure: how many entries it rests on, whether it is shown, Haven's words for it,
    and its numbers (``None`` when it rests on fewer than :data:`MINIMUM` entries)."""

    key: FigureKey
    entries: int
    shown: bool
    text: str
    value: dict | None = None


class Insights(BaseModel):
    since: Timestamp | None = None
    until: Timestamp | None = None
    minimum: int = MINIMUM
    figures: list[Figure]

    def figure(self, key: FigureKey) -> Figure:
        return next(f for f in self.figures if f.key == key)

    @property
    def shown(self) -> list[Figure]:
        return [f for f in self.figures if f.shown]

    @property
    def mood_days(self) -> list[MoodDay]:
        """The rated days behind the mood chart; empty while the figure is not shown."""
        value = self.figure("mood_by_day").value
        return [MoodDay.model_validate(d) for d in value["days"]] if value else []


@dataclass(frozen=True)
class Facts:
    """What the figures are worked out from (a journal, or an export's records)."""

    sessions: Sequence[Session]
    starts: Sequence[SessionStart]
    moods: Sequence[MoodEntry]
    thought_records: Sequence[ThoughtRecord]


def facts_from_journal(journal, since: datetime | None = None,
                       until: datetime | None = None) -> Facts:
    """Read what the figures need from an open :class:`app.store.Journal`."""
    return Facts(
        sessions=journal.sessions_between(since, until),
        starts=journal.session_starts(since, until),
        moods=journal.moods(since, until),
        thought_records=journal.thought_records(since, until),
    )


def facts_from_records(sessions: Sequence[Session], messages: Iterable[Message],
                       moods: Sequence[MoodEntry], thought_records: Sequence[ThoughtRecord]) -> Facts:
    """The same facts from records already in memory (an export document)."""
    by_session: dict[str, list[Message]] = defaultdict(list)
    for m in messages:
        by_session[m.session_id].append(m)
    starts = []
    for s in sorted(sessions, key=lambda s: s.started):
        found = sorted(by_session.get(s.id, []), key=lambda m: m.created)
        opening = found[0].content if found and found[0].role == "system" else None
        starts.append(SessionStart(session_id=s.id, started=s.started, opening=opening,
                                   person_wrote=any(m.role == "user" for m in found)))
    return Facts(sessions=sessions, starts=starts, moods=moods, thought_records=thought_records)


def _one(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _whole(value: float) -> str:
    return str(round(value))


def _figure(w: Words, key: FigureKey, entries: int, make) -> Figure:
    if entries < MINIMUM:
        text = w("insights.too_few", what=w(f"insights.{key}.what"), minimum=MINIMUM,
                 unit=w(f"insights.{key}.unit"), are="is" if entries == 1 else "are",
                 count=entries)
        return Figure(key=key, entries=entries, shown=False, text=text)
    text, value = make()
    return Figure(key=key, entries=entries, shown=True, text=text, value=value)


def mood_days(moods: Iterable[MoodEntry], tz: tzinfo | None = None) -> list[MoodDay]:
    """Mood ratings averaged per local day, oldest first; only days with a rating."""
    by_day: dict[date, list[int]] = defaultdict(list)
    for entry in moods:
        by_day[entry.created.astimezone(tz).date()].append(entry.score)
    return [MoodDay(day=day, average=round(mean(scores), 2), ratings=len(scores),
                    low=min(scores), high=max(scores))
            for day, scores in sorted(by_day.items())]


def _mood_by_day(w: Words, facts: Facts, tz: tzinfo | None) -> Figure:
    days = mood_days(facts.moods, tz)

    def make():
        ratings = sum(d.ratings for d in days)
        average = sum(d.average * d.ratings for d in days) / ratings
        low, high = min(d.low for d in days), max(d.high for d in days)
        text = w("insights.mood_by_day.text", days=len(days), ratings=ratings,
                 average=_one(average), low=low, high=high)
        return text, {"days": [d.model_dump(mode="json") for d in days], "ratings": ratings,
                      "average": round(average, 2), "low": low, "high": high}

    return _figure(w, "mood_by_day", len(days), make)


def _mood_sessions(w: Words, facts: Facts) -> Figure:
    rated = [s for s in facts.sessions if s.mood_before is not None and s.mood_after is not None]

    def make():
        before = mean(s.mood_before for s in rated)  # type: ignore[misc]
        after = mean(s.mood_after for s in rated)  # type: ignore[misc]
        change = after - before
        which = "same" if abs(change) < 0.05 else ("rose" if change > 0 else "fell")
        text = w(f"insights.mood_sessions.{which}", change=_one(abs(change)), count=len(rated),
                 before=_one(before), after=_one(after))
        return text, {"sessions": len(rated), "before": round(before, 2),
                      "after": round(after, 2), "change": round(change, 2)}

    return _figure(w, "mood_sessions", len(rated), make)


def _traps(w: Words, facts: Facts) -> Figure:
    marked = [t for t in facts.thought_records if t.distortions]

    def make():
        counts = Counter(d for t in marked for d in set(t.distortions))
        order = list(Distortion)
        top = sorted(counts.items(), key=lambda kv: (-kv[1], order.index(kv[0])))
        listed = [TrapCount(key=k, name=w.trap_names[k], count=n) for k, n in top]
        shown = w("insights.traps.joiner").join(
            w("insights.traps.item", name=t.name.lower() if i else t.name, count=t.count)
            for i, t in enumerate(listed[:3]))
        text = w("insights.traps.text", count=len(marked), list=shown)
        return text, {"records": len(marked),
                      "traps": [t.model_dump(mode="json") for t in listed]}

    return _figure(w, "traps", len(marked), make)


def _hot_belief(record: ThoughtRecord) -> int | None:
    return next((t.belief for t in record.automatic_thoughts if t.hot), None)


def _belief(w: Words, facts: Facts) -> Figure:
    rated = [(_hot_belief(t), t.balanced_belief) for t in facts.thought_records
             if _hot_belief(t) is not None and t.balanced_belief is not None]

    def make():
        hot = mean(h for h, _ in rated)  # type: ignore[misc]
        balanced = mean(b for _, b in rated)  # type: ignore[misc]
        text = w("insights.belief.text", count=len(rated), hot=_whole(hot),
                 balanced=_whole(balanced), change=_whole(balanced - hot))
        return text, {"records": len(rated), "hot": round(hot, 1),
                      "balanced": round(balanced, 1), "change": round(balanced - hot, 1)}

    return _figure(w, "belief", len(rated), make)


def _feelings(w: Words, facts: Facts) -> Figure:
    pairs = []
    for t in facts.thought_records:
        after = {m.name: m.intensity for m in t.moods_after}
        both = [(m.intensity, after[m.name]) for m in t.moods if m.name in after]
        if both:
            pairs.append((mean(b for b, _ in both), mean(a for _, a in both)))

    def make():
        before = mean(b for b, _ in pairs)
        after = mean(a for _, a in pairs)
        text = w("insights.feelings.text", count=len(pairs), before=_whole(before),
                 after=_whole(after), change=_whole(after - before))
        return text, {"records": len(pairs), "before": round(before, 1),
                      "after": round(after, 1), "change": round(after - before, 1)}

    return _figure(w, "feelings", len(pairs), make)


def _steps(w: Words, facts: Facts) -> Figure:
    starts = sorted(facts.starts, key=lambda s: s.started)
    steps = {s.id: s.next_step.strip() for s in facts.sessions if s.next_step and s.next_step.strip()}
    planned = followed = pending = 0
    for index, start in enumerate(starts):
        step = steps.get(start.session_id)
        if step is None:
            continue
        after = starts[index + 1] if index + 1 < len(starts) else None
        if after is None or (index + 2 == len(starts) and not after.person_wrote):
            pending += 1  # no session after it yet, or the one after has only just begun
            continue
        planned += 1
        if after.person_wrote and after.opening and step in after.opening:
            followed += 1

    def make():
        text = w("insights.steps.text", count=planned, followed=followed)
        return text, {"planned": planned, "followed_up": followed, "pending": pending}

    return _figure(w, "steps", planned, make)


def compute(facts: Facts, *, since: datetime | None = None, until: datetime | None = None,
            tz: tzinfo | None = None, vocabulary: Words | None = None) -> Insights:
    """Every figure, in :data:`ORDER`. ``tz`` is the person's time zone (default: local)."""
    w = vocabulary or words()
    figures = [_mood_by_day(w, facts, tz), _mood_sessions(w, facts), _traps(w, facts),
               _belief(w, facts), _feelings(w, facts), _steps(w, facts)]
    return Insights(since=since, until=until, figures=figures)


def insights(journal, since: datetime | None = None, until: datetime | None = None,
             tz: tzinfo | None = None) -> Insights:
    """The figures for an open journal (all of it, or ``since``..``until``)."""
    return compute(facts_from_journal(journal, since, until), since=since, until=until, tz=tz)
