"""Recall and insights at scale, for ``haven bench --store`` (issue 15: recall must add
less than 20 ms to a turn at 10,000 messages).

:func:`recall_figures` is called by :func:`app.bench.run_store_bench` with its journal of
10,000 messages. It adds about a year of what recall looks at — thought records, session
summaries and steps, notes, mood notes, each committed on its own as in real use (so the
full-text index has the segments a lived-in journal has), and a few sessions that reached
crisis — then times what a turn pays for recall (:func:`app.insights.recall.for_reply`,
as the companion calls it: the last session looked up, the message's risk check, the
search, the item checks, the budgeted block) on messages of every kind, short and long,
related and unrelated. Wall time and CPU time (``time.process_time``) are both reported,
with the load average: on a shared machine the wall time mostly measures the neighbours.

It times the index twice in the same run: as the items left it (one small segment per
item, as in a journal whose sessions were never closed), and after
:meth:`Journal.tidy_recall_index`, which runs when a session ends, with a few notes and
moods added since (as between sessions).
"""

from __future__ import annotations

import os
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
    # people who write more: a paragraph on several themes, and one on none of them
    "I had the presentation at work again this morning and my manager moved the deadline, "
    "so I was lying awake at night worrying that everyone will see I'm incompetent. My sister "
    "didn't call back either and the rent went up, and I keep thinking I'll never manage my "
    "money or cope without sleep.",
    "We went to my parents for Sunday lunch and it was mostly fine, but my brother made a joke "
    "about my job and I went quiet for the rest of the afternoon. On the drive home I kept "
    "going over it, thinking they all see me as the one who never quite got it together.",
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


def _time_turns(journal, session_id: str, settings, runs: int) -> dict:
    from app.insights.recall import for_reply

    for text in MESSAGES:  # warm the page cache and the risk model, as a running app has
        for_reply(journal, settings, session_id, text)
    wall, cpu, found = [], [], []
    for _ in range(runs):
        for text in MESSAGES:
            started, started_cpu = time.perf_counter(), time.process_time()
            result = for_reply(journal, settings, session_id, text)
            cpu.append((time.process_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
            found.append(len(result.items))
    wall.sort()
    cpu.sort()
    p95 = min(len(wall) - 1, int(len(wall) * 0.95))
    return {"ms": round(statistics.median(wall), 2), "ms_p95": round(wall[p95], 2),
            "cpu_ms": round(statistics.median(cpu), 2), "cpu_ms_p95": round(cpu[p95], 2),
            "items": round(statistics.mean(found), 2)}


def recall_figures(journal, runs: int = 3) -> dict:
    from app.insights import insights
    from app.settings import Settings

    settings = Settings()  # recall on, as by default
    indexed = _seed(journal)
    current = journal.start_session()
    load = os.getloadavg()[0]
    untidy = _time_turns(journal, current.id, settings, runs)
    started = time.perf_counter()
    journal.tidy_recall_index()  # what ending a session does
    tidy_ms = (time.perf_counter() - started) * 1000
    for i in range(3):  # a few entries between sessions, each committed on its own
        journal.add_note(f"{THEMES[i][0]} again, but calmer this time.")
        journal.add_mood(6, note=f"{THEMES[i + 3][0]} went better")
    tidy = _time_turns(journal, current.id, settings, runs)
    load = max(load, os.getloadavg()[0])
    started = time.perf_counter()
    insights(journal)
    insights_ms = (time.perf_counter() - started) * 1000
    return {
        "recall_indexed_items": indexed,
        "recall_ms": tidy["ms"],
        "recall_ms_p95": tidy["ms_p95"],
        "recall_cpu_ms": tidy["cpu_ms"],
        "recall_cpu_ms_p95": tidy["cpu_ms_p95"],
        "recall_items_per_message": tidy["items"],
        "recall_ms_untidy": untidy["ms"],
        "recall_cpu_ms_untidy": untidy["cpu_ms"],
        "recall_cpu_ms_p95_untidy": untidy["cpu_ms_p95"],
        "recall_tidy_ms": round(tidy_ms, 1),
        "recall_load_average": round(load, 2),
        "insights_ms": round(insights_ms, 1),
    }
