"""The session flow and the companion, with a scripted engine (and the real model once)."""

from __future__ import annotations

import json
import re
import shutil
import threading

import pytest

from app.cbt import Distortion
from app.conversation.companion import Companion, MessageTooLong
from app.conversation.events import (
    CheckIn,
    Crisis,
    FollowUp,
    NoModel,
    ReplyDone,
    ReplyReplaced,
    ScreenerQuestion,
    Token,
    UserSaved,
)
from app.conversation.flow import FlowError, Mode, SessionFlow, Step
from app.conversation.prompts import PromptError, PromptLibrary, prompt_library
from app.conversation.thought_records import DraftRecord, draft_schema, to_thought_record
from app.llm import Engine, GenerationParams, ModelSpec, Turn
from app.resources import prompts_dir
from app.settings import Settings
from app.store import Journal
from app.store.records import EmotionRating
from tests.conftest import PASSPHRASE
from tests.scripted_engine import ScriptedEngine


@pytest.fixture
def journal(tmp_path):
    j = Journal.create(tmp_path / "journal.db", PASSPHRASE)
    yield j
    j.close()


def make(journal, engine=None, country="GB", **kw):
    engine = engine if engine is not None else ScriptedEngine(**kw)
    return Companion(journal=journal, engine=engine, settings=Settings(country=country)), engine


def talk(companion, text):
    return list(companion.send(text))


# ---- the flow on its own ------------------------------------------------------------------

def test_full_session_walks_every_step():
    flow = SessionFlow()
    assert flow.record_mood(4) == "before" and flow.step is Step.FOCUS
    flow.choose_mode(Mode.THOUGHT_RECORD)
    assert flow.step is Step.WORK and flow.technique() == "thought_record"
    flow.user_message()
    flow.begin_closing()
    assert flow.technique() == "closing_summary"
    flow.set_next_step("take a 10 minute walk")
    assert flow.step is Step.CLOSING_MOOD
    assert flow.record_mood(6) == "after" and flow.ended
    assert flow.history == [Step.CHECKIN, Step.FOCUS, Step.WORK, Step.CLOSING, Step.CLOSING_MOOD,
                            Step.ENDED]


def test_every_step_can_be_skipped():
    flow = SessionFlow()
    for _ in range(2):
        flow.skip()
    assert flow.step is Step.WORK and flow.mood_before is None
    flow.begin_closing()
    flow.skip()
    flow.skip()
    flow.skip()
    assert flow.ended and flow.next_step is None and flow.mood_after is None


def test_talking_first_never_forces_a_rating_and_leaving_early_works():
    flow = SessionFlow()
    flow.user_message()
    assert flow.step is Step.WORK
    assert flow.record_mood(5) == "before"  # a late check-in is still welcome
    flow.leave()
    assert flow.ended
    with pytest.raises(FlowError):
        flow.user_message()


# ---- the companion ---------------------------------------------------------------------------

def test_a_full_session_through_the_companion(journal):
    companion, engine = make(journal, completions=["You talked about a hard meeting.",
                                                   "A hard meeting"])
    opening = companion.start_session()
    assert "What's on your mind" in opening.text
    companion.record_mood(3, [EmotionRating(name="anxious", intensity=70)])
    companion.choose_mode(Mode.THOUGHT_RECORD)
    events = talk(companion, "My boss ignored me in the meeting")
    kinds = [type(e) for e in events]
    assert kinds[0] is UserSaved and kinds[-1] is ReplyDone and Token in kinds
    assert "Technique now: a guided thought record" in engine.requests[0].system
    assert "rated their mood 3 out of 10" in engine.requests[0].system
    session = companion.close_session()
    assert session.summary == "You talked about a hard meeting." and session.title == "A hard meeting"
    companion.set_next_step("Notice one kind thing a colleague does")
    companion.record_mood(5)
    stored = journal.session(session.id)
    assert stored.ended and stored.mood_before == 3 and stored.mood_after == 5
    messages = journal.messages(session.id)
    assert [m.role for m in messages] == ["system", "user", "assistant"]
    assert messages[-1].status == "complete" and messages[-1].content == events[-1].message.content
    assert len(journal.moods()) == 2

    # memory across sessions
    second, engine2 = make(journal)
    opening = second.start_session()
    assert opening.returning and "Notice one kind thing a colleague does" in opening.text
    talk(second, "It went okay")
    assert "You talked about a hard meeting." in engine2.requests[0].system


def test_crisis_never_calls_the_model_and_shows_resources_for_the_country(journal):
    companion, engine = make(journal, country="GB")
    companion.start_session()
    events = talk(companion, "I'm going to kill myself tonight")
    assert engine.requests == []
    crisis = next(e for e in events if isinstance(e, Crisis))
    assert crisis.resources.code == "GB" and "999" in crisis.text
    assert any("Samaritans" in s.name for s in crisis.resources.services)
    user = next(e for e in events if isinstance(e, UserSaved)).message
    assert user.risk_level == "crisis"
    # the session stays with Haven: a later message gets a follow-up, not the model
    later = talk(companion, "thank you")
    assert engine.requests == [] and any(isinstance(e, FollowUp) for e in later)
    # a new session talks with the model again, and never shows it the crisis message
    companion.end_session()
    companion.start_session()
    talk(companion, "thank you")
    assert all("kill myself" not in t.content for t in engine.requests[0].turns)

    us, us_engine = make(journal, country="US")
    us.start_session()
    us_crisis = next(e for e in talk(us, "i want to kill myself") if isinstance(e, Crisis))
    assert "988" in us_crisis.resources.services[0].how and us_engine.requests == []


def test_elevated_adds_a_check_in_and_asks_directly(journal):
    companion, engine = make(journal)
    companion.start_session()
    events = talk(companion, "I feel so hopeless lately")
    assert isinstance(events[1], CheckIn)
    assert events[1].resources.services
    assert isinstance(events[-1], ScreenerQuestion) and engine.requests == []
    assert events[0].message.risk_level == "elevated"


def test_an_unsafe_reply_is_replaced_and_never_stored(journal):
    companion, _ = make(journal, replies=["Sure. As a licensed therapist I can tell you more."])
    companion.start_session()
    events = talk(companion, "Who are you?")
    shown = "".join(e.text for e in events if isinstance(e, Token))
    assert "licensed" not in shown
    replaced = next(e for e in events if isinstance(e, ReplyReplaced))
    stored = journal.messages(companion.session.id)[-1]
    assert stored.content == replaced.text and "licensed" not in stored.content


def test_cancel_keeps_the_partial_reply_marked_cancelled(journal):
    companion, _ = make(journal, replies=["word " * 200], delay=0.01)
    companion.start_session()
    seen = []
    for event in companion.send("Tell me a long story"):
        seen.append(event)
        if isinstance(event, Token) and len(seen) > 10:
            companion.cancel()
    done = seen[-1]
    assert isinstance(done, ReplyDone) and done.status == "cancelled"
    assert done.message.status == "cancelled" and 0 < len(done.message.content) < len("word " * 200)


def test_without_a_model_the_message_is_still_saved(journal):
    companion = Companion(journal=journal, engine=None, settings=Settings())
    companion.start_session()
    events = talk(companion, "Just writing this down")
    assert isinstance(events[-1], NoModel) and "saved" in events[-1].text
    assert journal.messages(companion.session.id)[-1].content == "Just writing this down"


def test_huge_pastes_are_refused_before_anything_is_lost(journal):
    companion, _ = make(journal)
    companion.start_session()
    with pytest.raises(MessageTooLong):
        talk(companion, "x" * 300_000)
    events = talk(companion, "y" * 100_000)  # big but allowed: stored whole
    assert events[0].message.content == "y" * 100_000


def test_a_fold_is_kept_in_the_session_and_used_next_time(journal):
    companion, engine = make(journal)
    companion.start_session()
    for i in range(1, 4):
        talk(companion, f"message {i}")
    engine.next_reply_extra = {"summary": "They talked about three things.", "folded": 2}
    talk(companion, "message 4")
    session = journal.session(companion.session.id)
    assert session.running_summary == "They talked about three things."
    assert session.folded_until is not None
    talk(companion, "message 5")
    last = engine.requests[-1]
    assert last.summary == "They talked about three things."
    assert last.turns[0].content == "message 2"  # the first pair was folded away


def test_the_leading_opening_is_not_sent_as_a_turn(journal):
    companion, engine = make(journal)
    companion.start_session()
    talk(companion, "hi")
    assert [t.role for t in engine.requests[0].turns] == ["user"]


# ---- prompts -------------------------------------------------------------------------------

def test_prompts_load_and_traps_match_the_stored_list():
    library = prompt_library()
    assert set(library.traps) == set(Distortion)
    assert "not a therapist" in library.render("safety/notice.md", data_dir="/x").lower()


def test_a_missing_or_malformed_prompt_is_a_clear_startup_error(tmp_path):
    copy = tmp_path / "prompts"
    shutil.copytree(prompts_dir(), copy)
    (copy / "techniques" / "socratic.md").unlink()
    with pytest.raises(PromptError, match="socratic.md is missing"):
        PromptLibrary(copy)
    (copy / "techniques" / "socratic.md").write_text("Ask about $mystery")
    with pytest.raises(PromptError, match="unknown placeholders: mystery"):
        PromptLibrary(copy)


def test_prompts_read_well_aloud():
    for path in prompts_dir().rglob("*.md"):
        if path.name == "README.md":
            continue
        for sentence in re.split(r"[.?!:]\s|\n", path.read_text()):
            assert len(sentence.split()) <= 40, (path.name, sentence)
        text = path.read_text().lower()
        assert "cure" not in text.replace("never promise that things will be fixed or cured", "")


# ---- thought records ------------------------------------------------------------------------

def test_unusable_drafts_become_an_empty_form():
    assert to_thought_record("", None).situation == ""
    assert to_thought_record("{not json", None).automatic_thoughts == []
    record = to_thought_record(json.dumps({
        "situation": "At work", "moods": [{"name": "anxious", "intensity": 250},
                                          {"name": "bogus", "intensity": 5}],
        "automatic_thoughts": [{"text": "I'll fail", "hot": True}, {"text": "Again", "hot": True}],
        "evidence_for": "", "evidence_against": "", "balanced_thought": "",
        "distortions": ["fortune_telling", "nonsense"],
    }), "s1")
    assert record.moods == [EmotionRating(name="anxious", intensity=100)]
    assert [t.hot for t in record.automatic_thoughts] == [True, False]
    assert record.distortions == [Distortion.FORTUNE_TELLING]


@pytest.mark.model
def test_the_real_model_drafts_a_schema_valid_thought_record(gemma_gguf, journal):
    engine = Engine()
    try:
        engine.load(ModelSpec(gemma_gguf, "gemma", "gemma", n_ctx=2048, threads=2)).result(120)
        turns = [Turn("user", "At the meeting my boss ignored my idea. I felt anxious and "
                              "thought: they think I'm useless.")]
        raw = engine.complete("Draft a thought record as JSON.", turns,
                              GenerationParams(temperature=0.2, max_tokens=700, seed=3),
                              json_schema=draft_schema()).result(300)
        DraftRecord.model_validate(json.loads(raw))  # schema-valid, whatever it says
        companion = Companion(journal=journal, engine=engine, settings=Settings())
        companion.start_session()
        companion.journal.add_message(companion.session.id, "user", turns[0].content)
        record = companion.draft_thought_record()
        assert record.session_id == companion.session.id
        saved = companion.save_thought_record(record)
        assert journal.thought_record(saved.id) is not None
    finally:
        engine.close()


def test_the_companion_runs_from_a_worker_thread(journal):
    companion, _ = make(journal)
    companion.start_session()
    out = []
    worker = threading.Thread(target=lambda: out.extend(companion.send("hello")))
    worker.start()
    worker.join(10)
    assert isinstance(out[-1], ReplyDone)


@pytest.mark.model
def test_a_conversation_on_the_real_engine_completes_every_reply(gemma_gguf, journal):
    engine = Engine()
    try:
        engine.load(ModelSpec(gemma_gguf, "gemma", "gemma", n_ctx=2048, threads=2)).result(120)
        settings = Settings(generation={"max_tokens": 24, "seed": 5})
        companion = Companion(journal=journal, engine=engine, settings=settings)
        companion.start_session()
        for text in ("Hello there", "I had a long day", "Thanks for listening"):
            done = [e for e in companion.send(text) if isinstance(e, ReplyDone)]
            assert len(done) == 1 and done[0].status in ("complete", "replaced")
        statuses = [m.status for m in journal.messages(companion.session.id) if m.role == "assistant"]
        assert statuses == ["complete"] * 3
    finally:
        engine.close()


def test_a_mood_mid_session_is_logged_and_an_empty_session_leaves_nothing(journal):
    companion, _ = make(journal)
    companion.start_session()
    talk(companion, "hello")
    companion.record_mood(4)  # talking first: a late check-in is the session's first rating
    entry = companion.record_mood(6)  # another one mid-session is simply logged
    assert entry.score == 6 and len(journal.moods()) == 2
    assert journal.session(companion.session.id).mood_before == 4
    companion.end_session()

    companion.start_session()  # opened and closed without a word
    empty_id = companion.session.id
    companion.end_session()
    assert journal.session(empty_id) is None
    assert len(journal.sessions()) == 1
