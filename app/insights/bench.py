"""Recall and insights at scale, for ``haven bench --store`` (issue 15: recall must add
less than 20 ms to a turn at 10,000 messages).

:func:`recall_figures` is called by :func:`app.bench.run_store_bench` with its journal of
10,000 messages. It adds about a year of what recall looks at — thought records, session
summaries and steps, notes, mood notes, each committed on its own as in real use (so the
full-text index has the segments a lived-in journal has), and a few sessions that reached
crisis — then times :func:`app.insights.recall` on messages of every kind, related and
unrelated, the way the service calls it (with the risk level the turn already has).
"""

from __future__ import annotations

import statistics
import time

from app.store.records import AutomaticThought, EmotionRating, ThoughtRecord

THEMES = [
    ("presentation at work", "everyone will see I'm incompetent", "I prepared well and people "
     "asked good questions last time", "practise the first two slides out loud"),
    ("my sister didn't call back", "she is angry with me", "she is busy with the new baby",
     "send her a short message on Sunday"),
    ("exam results next week", "I will fail and disappoint my parents", "I passed the mock "
     "exams and revised every evening", "revise one topic a day and go for a walk"),
    ("a party with new colleagues", "nobody will want to talk to me", "two people asked me to "
     "lunch last month", "stay for one hour and ask one question"),
    ("the rent went up again", "I'll never manage my money", "I have paid on time all year",
     "write down this month's spending"),
    ("my manager moved the deadline", "this project failing would be my fault", "the last "
     "delay was nobody's fault", "list tomorrow's three tasks before bed"),
    ("lying awake at night", "I can't cope without sleep", "I coped on Tuesday after a bad "
     "night", "no screens after ten and a warm drink"),
    ("my friend cancelled dinner", "people always let me down", "she rearranged straight "
     "away", "suggest a new date"),
    ("the doctor's appointment", "it will be bad news", "the last tests were all fine",
     "write my questions down before I go"),
    ("cleaning the flat", "I'm lazy and useless", "I cooked every night this week",
     "tidy the kitchen for ten minutes"),
]

MESSAGES = [
    "I have another presentation on Thursday and I'm already dreading it",
    "My sister still hasn't replied and I keep checking my phone",
    "Exam results come out soon and I can't stop worrying about failing",
    "There's a work party on Friday and I don't know anyone there",
    "Money is tight again this month, the rent is so high",
    "My manager changed the deadline again and I feel responsible",
    "I couldn't sleep again last night, lying awake for hours",
    "A friend cancelled on me and I feel let down",
    "What's a good recipe for banana bread?",
    "The weather has been lovely, we went to the beach",
    "I have a doctor's appointment tomorrow and I'm nervous",
    "I didn't clean the flat again, I'm so lazy",
]


def _seed(journal, per_theme: int = 15) -> int:
    """About a year of recallable items, each committed on its own; returns how many."""
    added = 0
    crisis_every = 40
    for i in range(per_theme * len(THEMES)):
        situation, hot, against, step = THEMES[i % len(THEMES)]
        session = journal.start_session(mood_before=4)
        if i % crisis_every == 0:
            journal.add_message(session.id, "system", "crisis services", risk_level="crisis")
        journal.save_thought_record(ThoughtRecord(
            session_id=session.id, situation=f"{situation} (week {i // len(THEMES) + 1})",
            automatic_thoughts=[AutomaticThought(text=hot, hot=True, belief=80)],
            evidence_against=against, balanced_thought=f"{against}, so it may go better",
            balanced_belief=60, moods=[EmotionRating(name="anxious", intensity=70)],
            moods_after=[EmotionRating(name="anxious", intensity=40)]))
        journal.update_session(session.id, summary=f"We talked about {situation}; {against}.",
                               next_step=step, mood_after=6)
        journal.add_note(f"Thinking about {situation} again. {against}.")
        journal.add_mood(5, note=f"{situation} on my mind", session_id=session.id)
        added += 4
    return added


def recall_figures(journal, runs: int = 3) -> dict:
    from app.insights import insights, recall

    indexed = _seed(journal)
    current = journal.start_session()
    for text in MESSAGES[:3]:  # warm the page cache, as a running app has
        recall(journal, text, session_id=current.id, risk_level="none")
    times, found = [], []
    for _ in range(runs):
        for text in MESSAGES:
            started = time.perf_counter()
            result = recall(journal, text, session_id=current.id, risk_level="none")
            times.append((time.perf_counter() - started) * 1000)
            found.append(len(result.items))
    started = time.perf_counter()
    insights(journal)
    insights_ms = (time.perf_counter() - started) * 1000
    times.sort()
    return {
        "recall_indexed_items": indexed,
        "recall_ms": round(statistics.median(times), 2),
        "recall_ms_p95": round(times[min(len(times) - 1, int(len(times) * 0.95))], 2),
        "recall_items_per_message": round(statistics.mean(found), 2),
        "insights_ms": round(insights_ms, 1),
    }
