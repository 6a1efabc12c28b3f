"""A journal seeded with a month of a person's entries (issue 15 tests).

Thirty days, 25 October to 23 November 2026 (UTC): mood check-ins on most days but not
all (days 5-7 and 17-19 have none), a session every three days with a mood rating at the
start and the end, a closing summary and a between-session step that the next session's
opening asks about, thought records on a few recurring themes (a work presentation, a
sister who does not call back, sleep), notes, and one session that reached crisis, whose
thought record and summary must never be recalled.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from app.conversation.prompts import prompt_library
from app.store import Journal
from app.store.records import (
    AutomaticThought,
    EmotionRating,
    Message,
    MoodEntry,
    Note,
    Session,
    ThoughtRecord,
)

FIRST_DAY = date(2026, 10, 25)
DAYS = 30
#: Days (0-based from FIRST_DAY) with no mood rating of any kind.
UNRATED = {5, 6, 7, 17, 18, 19}

PRESENTATION_TEXT = "presenting the quarterly figures to the whole team at work"
CRISIS_TEXT = "the bridge near the office where I stood for a long time"


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    start = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC)
    return start + timedelta(days=day, hours=hour, minutes=minute)


def _record(day: int, session_id: str | None, situation: str, hot: str, hot_belief: int,
            against: str, balanced: str, balanced_belief: int, traps: list[str],
            before: int, after: int) -> ThoughtRecord:
    return ThoughtRecord(
        created=at(day, 10), updated=at(day, 10), session_id=session_id, situation=situation,
        moods=[EmotionRating(name="anxious", intensity=before)],
        automatic_thoughts=[AutomaticThought(text=hot, hot=True, belief=hot_belief),
                            AutomaticThought(text="I should be better at this by now")],
        evidence_for="I stumbled over a sentence last time",
        evidence_against=against, balanced_thought=balanced, balanced_belief=balanced_belief,
        moods_after=[EmotionRating(name="anxious", intensity=after)],
        distortions=traps)  # type: ignore[arg-type]


SESSIONS = [  # (day, mood before, mood after, summary, step)
    (1, 3, 5, "We talked about dreading the presentation of the quarterly figures at work.",
     "practise the first two slides out loud"),
    (4, 4, 5, "We talked about your sister not calling back and feeling left out.",
     "send your sister a short message on Sunday"),
    (8, 4, 6, "We talked about lying awake at night and the worry that you cannot cope.",
     "no screens after ten and a warm drink"),
    (11, 5, 6, "We talked about a friend cancelling dinner.", "suggest a new date to your friend"),
    (14, 2, 2, "We talked about " + CRISIS_TEXT + ".", "call the crisis line if it comes back"),
    (20, 5, 7, "We talked about the team presentation going better than feared.",
     "write down three things that went well"),
    (24, 5, 6, "We talked about tidying the flat in small steps.",
     "tidy the kitchen for ten minutes"),
]
CRISIS_DAY = 14


def seed(journal: Journal) -> dict[str, str]:
    """Fill ``journal`` with the month; returns the ids tests look for."""
    ids: dict[str, str] = {}
    prompts = prompt_library()
    previous_step: str | None = None
    for day, before, after, summary, step in SESSIONS:
        session = Session(started=at(day, 18), ended=at(day, 18, 40), mood_before=before,
                          mood_after=after, summary=summary, next_step=step,
                          title=summary.removeprefix("We talked about ").rstrip("."))
        journal.insert_if_new(session)
        opening = (prompts.render("opening_return.md", step=previous_step) if previous_step
                   else prompts.render("opening.md"))
        journal.insert_if_new(Message(session_id=session.id, role="system", content=opening,
                                      created=at(day, 18)))
        risk = "crisis" if day == CRISIS_DAY else "none"
        journal.insert_if_new(Message(session_id=session.id, role="user", created=at(day, 18, 5),
                                      content=summary.replace("We talked about", "I keep thinking about"),
                                      risk_level=risk))
        journal.insert_if_new(Message(session_id=session.id, role="assistant",
                                      created=at(day, 18, 6), content="That sounds hard."))
        for score, minute in ((before, 1), (after, 39)):
            journal.insert_if_new(MoodEntry(created=at(day, 18, minute), score=score,
                                            session_id=session.id))
        ids[f"session_{day}"] = session.id
        previous_step = step

    records = [
        (2, "session_1", PRESENTATION_TEXT, "everyone will see I'm incompetent", 85,
         "people asked good questions after my last talk",
         "I prepared well and most people will be listening to the figures, not judging me",
         60, ["fortune_telling", "mind_reading", "labelling"], 80, 45, "presentation"),
        (5, "session_4", "my sister did not call me back after my birthday",
         "she is angry with me", 75, "she is busy with the new baby",
         "she has a new baby and little time; it is probably not about me", 65,
         ["mind_reading", "personalisation_and_blame"], 70, 40, "sister"),
        (9, "session_8", "lying awake at three in the morning before a busy day",
         "I can't cope without sleep", 90, "I coped on Tuesday after a bad night",
         "one bad night is unpleasant but I have coped before", 55,
         ["catastrophising", "fortune_telling"], 85, 50, "sleep"),
        (CRISIS_DAY, "session_14", CRISIS_TEXT + " after the presentation at work",
         "nothing will ever change", 95, "my friend said she would come round",
         "I was not alone that evening", 20, ["all_or_nothing"], 95, 90, "crisis"),
        (21, "session_20", "the team presentation of the quarterly figures went well",
         "they were only being polite", 50, "two colleagues asked for my slides",
         "people asked for the slides, so they found it useful", 70,
         ["disqualifying_the_positive", "mind_reading"], 50, 25, "presentation_after"),
    ]
    for (day, session_key, situation, hot, hot_belief, against, balanced, balanced_belief,
         traps, before, after, key) in records:
        record = _record(day, ids[session_key], situation, hot, hot_belief, against, balanced,
                         balanced_belief, traps, before, after)
        journal.insert_if_new(record)
        ids[f"record_{key}"] = record.id

    rated_days = [d for d in range(DAYS) if d not in UNRATED]
    for d in rated_days:
        journal.insert_if_new(MoodEntry(created=at(d, 8), score=3 + (d * 7) % 6,
                                        emotions=[EmotionRating(name="calm", intensity=40)]))
    note = Note(created=at(12, 21), updated=at(12, 21),
                body="Went for a long walk by the river with the dog; it helped more than I expected.")
    journal.insert_if_new(note)
    ids["note_walk"] = note.id
    return ids


def rated_days() -> list[date]:
    return [FIRST_DAY + timedelta(days=d) for d in range(DAYS) if d not in UNRATED]
