"""Safety across a session, Haven's direct questions, the safety plan, fitting crisis words
and the reply guard, through the companion (scripted engine, real encrypted journal).

The messages are unambiguous on purpose: these tests check what Haven does with a risk
level, never which words the risk check knows.
"""

from __future__ import annotations

import pytest

from app.conversation.companion import Companion
from app.conversation.events import (
    CheckIn,
    Crisis,
    FollowUp,
    NoModel,
    ReplyDone,
    ReplyReplaced,
    ScreenerOver,
    ScreenerQuestion,
    Token,
    UserSaved,
)
from app.export.document import collect, parse, render, to_markdown
from app.export.service import import_document
from app.safety import RiskAssessment
from app.safety.output_check import check_reply
from app.safety.resources import resources_for, situation
from app.safety.safety_plan import plan_markdown
from app.safety.screener import screener
from app.settings import Settings
from app.store import Journal
from app.store.records import SafetyPlan
from tests.conftest import PASSPHRASE
from tests.scripted_engine import ScriptedEngine, ScriptedStream

CRISIS = "I'm going to kill myself tonight"
ELEVATED = "I wish I could disappear"
OVERDOSE = "I swallowed all my sleeping pills 20 minutes ago"
DANGER = "My dad is beating me right now and I am scared"
OTHERS = "I am going to kill him tonight"


@pytest.fixture
def journal(tmp_path):
    j = Journal.create(tmp_path / "journal.db", PASSPHRASE)
    yield j
    j.close()


def make(journal, country="GB", **kw):
    engine = ScriptedEngine(**kw)
    companion = Companion(journal=journal, engine=engine, settings=Settings(country=country))
    companion.start_session()
    return companion, engine


def talk(companion, text, answer=None):
    return list(companion.send(text, answer=answer))


def first(events, kind):
    return next(e for e in events if isinstance(e, kind))


# ---- a crisis, and the session after it ---------------------------------------------------

def test_an_escalating_session_reaches_crisis_and_stays_with_haven(journal):
    companion, engine = make(journal)
    talk(companion, "Work has been awful this week")
    assert len(engine.requests) == 1
    events = talk(companion, CRISIS)
    crisis = first(events, Crisis)
    assert len(engine.requests) == 1  # the crisis never reached the model
    # the services are written into the conversation itself, numbers first
    stored = journal.messages(companion.session.id)[-1]
    assert stored.role == "system" and stored.risk_level == "crisis"
    assert "116 123" in stored.content and "999" in stored.content
    assert stored.content.index("116 123") < stored.content.index("I'm an AI")
    assert crisis.words and "116 123" not in crisis.words  # the panel shows them on their own
    for later in ("ok", "forget it, I'm fine, just a bad day", "can we talk about work?"):
        events = talk(companion, later)
        follow = first(events, FollowUp)
        assert "116 123" in follow.text and "Ctrl+N" not in follow.text  # line-mode keys here
        assert "/new" in follow.text
        assert first(events, UserSaved).message.risk_level == "crisis"
    assert len(engine.requests) == 1
    # a new session is the way back to a normal conversation
    companion.end_session()
    companion.start_session()
    assert isinstance(talk(companion, "thanks for earlier")[-1], ReplyDone)
    assert len(engine.requests) == 2
    assert all(CRISIS not in t.content for t in engine.requests[-1].turns)


def test_a_crisis_found_across_the_session_is_a_crisis(journal, monkeypatch):
    """The session-level check (assess_conversation) is used as well as each message."""
    import app.conversation.companion as companion_module

    seen: list[list[str]] = []

    def conversation(messages):
        seen.append(list(messages))
        if len(messages) >= 3:
            return RiskAssessment(level="crisis", categories=("suicide",))
        return RiskAssessment(level="none")

    monkeypatch.setattr(companion_module, "assess_conversation", conversation)
    # each message alone reads as nothing, so only the session-level check can find it
    monkeypatch.setattr(companion_module, "assess_risk", lambda text: RiskAssessment(level="none"))
    companion, engine = make(journal)
    talk(companion, "I've been saving them")
    talk(companion, "about 60 now")
    events = talk(companion, "friday")
    assert seen[-1] == ["I've been saving them", "about 60 now", "friday"]
    assert isinstance(events[1], Crisis) and len(engine.requests) == 2
    assert isinstance(talk(companion, "never mind")[1], FollowUp)
    assert len(engine.requests) == 2


def test_a_reopened_crisis_session_still_gets_haven_not_the_model(journal):
    companion, engine = make(journal)
    talk(companion, CRISIS)
    session_id = companion.session.id
    companion.end_session()
    again = Companion(journal=journal, engine=engine, settings=Settings(country="GB"))
    again.open_session(session_id)
    assert isinstance(talk(again, "hello again")[1], FollowUp)
    assert engine.requests == []


@pytest.mark.parametrize(("text", "kind", "expected"), [
    (OVERDOSE, "medical", ["ambulance", "Tell them what you took"]),
    (DANGER, "danger", ["somewhere safer", "not your fault"]),
    (OTHERS, "others", ["distance between you and the person"]),
    (CRISIS, "self", ["You don't have to go through this alone"]),
])
def test_each_crisis_gets_words_and_services_that_fit_it(journal, text, kind, expected):
    companion, engine = make(journal, country="US")
    crisis = first(talk(companion, text), Crisis)
    assert crisis.kind == kind and engine.requests == []
    for words in expected:
        assert words in crisis.text
    services = [s.name for s in crisis.resources.services]
    if kind == "medical":
        assert crisis.text.index("Call 911 now for an ambulance") < crisis.text.index("Poison Help")
        assert services[0] == "Poison Help"
    elif kind == "danger":
        assert services[0] == "National Domestic Violence Hotline"
    else:
        assert services[0] == "988 Suicide & Crisis Lifeline" and "Poison Help" not in services


def test_situations_are_read_from_either_vocabulary_of_categories():
    assert situation(["medical emergency"]) == situation(["medical_emergency"]) == "medical"
    assert situation(["abuse or violence at home"]) == situation(["danger_from_others"]) == "danger"
    assert situation(["harm to others"]) == situation(["harm_to_others"]) == "others"
    assert situation(["suicide", "self_harm"]) == situation([]) == "self"
    assert situation(["suicide", "medical_emergency"]) == "medical"  # the most urgent wins
    assert resources_for("AU", kind="medical").services[0].for_ == "poison"
    assert all(s.for_ != "poison" for s in resources_for("AU", kind="self").services)


def test_without_a_model_a_crisis_is_still_caught(journal):
    companion = Companion(journal=journal, engine=None, settings=Settings(country="GB"))
    companion.start_session()
    assert isinstance(talk(companion, "just writing")[-1], NoModel)
    crisis = first(talk(companion, CRISIS), Crisis)
    assert "116 123" in crisis.text


# ---- asking directly ------------------------------------------------------------------------

def test_softer_signs_start_the_questions_and_yes_to_a_plan_is_a_crisis(journal):
    companion, engine = make(journal)
    events = talk(companion, ELEVATED)
    assert isinstance(events[1], CheckIn) and "116 123" in events[1].text
    question = first(events, ScreenerQuestion)
    assert question.question == "wish_dead" and engine.requests == []
    asked = [question.question]
    for answer in ("yes", "yes", "no", "no"):  # wish_dead, thoughts, method, intent
        events = list(companion.answer_question(answer))
        asked.append(first(events, ScreenerQuestion).question)
    assert asked == ["wish_dead", "thoughts", "method", "intent", "plan"]
    events = list(companion.answer_question("yes"))  # yes to a plan
    crisis = first(events, Crisis)
    assert crisis.kind == "self" and engine.requests == []
    assert isinstance(talk(companion, "ok")[1], FollowUp)
    answers = journal.screener_answers(companion.session.id)
    assert [(a.question, a.answer) for a in answers] == [
        ("wish_dead", "yes"), ("thoughts", "yes"), ("method", "no"), ("intent", "no"),
        ("plan", "yes")]
    stored = {m.id: m for m in journal.messages(companion.session.id)}
    assert stored[answers[-1].message_id].content == "Yes"
    assert stored[answers[-1].message_id].risk_level == "crisis"


@pytest.mark.parametrize("question", ["intent", "plan", "preparation"])
def test_yes_or_not_sure_to_intent_plan_or_preparation_is_a_crisis(journal, question):
    assert screener().is_crisis(question, "yes") and screener().is_crisis(question, "not_sure")
    assert not screener().is_crisis(question, "no")
    assert not screener().is_crisis("wish_dead", "yes")


def test_no_to_thoughts_goes_straight_to_preparation_and_all_no_ends_kindly(journal):
    companion, engine = make(journal)
    talk(companion, ELEVATED)
    events = list(companion.answer_question("no"))
    assert first(events, ScreenerQuestion).question == "thoughts"
    events = talk(companion, "no, never")  # typed answers are read too
    assert first(events, ScreenerQuestion).question == "preparation"
    events = talk(companion, "nope")
    over = first(events, ScreenerOver)
    assert over.outcome == "done" and engine.requests == []
    # the conversation goes on with the model, which never saw the bare answers
    talk(companion, "Thanks. Work is just a lot right now")
    turns = engine.requests[-1].turns
    assert turns[-1].content.startswith(ELEVATED)
    assert all(t.content.strip() not in ("No", "no, never", "nope") for t in turns)


def test_a_denial_pauses_the_questions_but_never_closes_them(journal):
    companion, engine = make(journal)
    talk(companion, ELEVATED)
    events = talk(companion, "you misunderstood, I meant disappear from this boring party")
    over = first(events, ScreenerOver)
    assert over.outcome == "paused" and isinstance(events[-1], ReplyDone)  # the model replies
    assert journal.screener_answers(companion.session.id)[-1].answer == "declined"
    talk(companion, "anyway, the party was fine")
    # the signs come back: Haven asks again, from the start
    events = talk(companion, ELEVATED)
    again = first(events, ScreenerQuestion)
    assert again.question == "wish_dead" and again.round == 2
    assert screener().intro_again in again.text
    assert not any(isinstance(e, CheckIn) for e in events)  # no second check-in
    answers = list(companion.answer_question("not_sure"))
    assert first(answers, ScreenerQuestion).question == "thoughts"


def test_an_unclear_answer_is_asked_once_more_then_the_conversation_goes_on(journal):
    companion, engine = make(journal)
    talk(companion, ELEVATED)
    events = talk(companion, "what do you mean by that")
    question = first(events, ScreenerQuestion)
    assert question.question == "wish_dead" and screener().unclear in question.text
    events = talk(companion, "the weather is grey today")
    assert first(events, ScreenerOver).outcome == "paused"
    assert isinstance(events[-1], ReplyDone)
    assert [a.answer for a in journal.screener_answers(companion.session.id)] == [
        "unclear", "unclear"]


def test_a_crisis_typed_while_a_question_is_open_is_a_crisis(journal):
    companion, engine = make(journal)
    talk(companion, ELEVATED)
    events = talk(companion, CRISIS)
    assert isinstance(events[1], Crisis) and engine.requests == []
    assert companion.pending_question() is None


def test_screener_answers_are_kept_encrypted_and_exported(journal, tmp_path):
    companion, _ = make(journal)
    talk(companion, ELEVATED)
    talk(companion, "yes, MARKER-screener-answer")
    journal.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("journal.db*"))
    assert b"MARKER-screener-answer" not in raw and b"wish_dead" not in raw
    journal = Journal.open(tmp_path / "journal.db", PASSPHRASE)
    doc = collect(journal, None, None)
    assert [a.question for a in doc.screener_answers] == ["wish_dead", "thoughts"]
    md = to_markdown(doc)
    assert "have you wished you were dead" in md and "MARKER-screener-answer" in md
    journal.close()


# ---- the safety plan ------------------------------------------------------------------------

def test_the_safety_plan_is_shown_first_in_a_crisis_and_exported(journal, tmp_path):
    plan = journal.save_safety_plan(SafetyPlan(warning_signs="I stop answering my phone",
                                               helpers="Sam: 07700 900123"))
    companion, _ = make(journal)
    crisis = first(talk(companion, CRISIS), Crisis)
    assert crisis.plan is not None and crisis.plan.helpers == "Sam: 07700 900123"
    follow = first(talk(companion, "ok"), FollowUp)
    assert follow.plan is not None
    doc = collect(journal, None, None)
    assert doc.safety_plan == plan.model_copy(update={"updated": doc.safety_plan.updated})
    md = to_markdown(doc)
    assert md.index("My safety plan") < md.index("Session:")
    assert "Sam: 07700 900123" in md and "4. People I can ask for help" in md
    assert "116 123" in md  # the crisis message kept its services in the export
    # the JSON copy round-trips; importing never replaces a plan written in that journal
    parsed = parse(render(doc, "both"))
    assert parsed.schema_version == 3 and parsed.safety_plan.helpers == "Sam: 07700 900123"
    fresh = Journal.create(tmp_path / "fresh.db", PASSPHRASE)
    assert import_document(fresh, parsed).added["safety_plan"] == 1
    assert fresh.safety_plan().helpers == "Sam: 07700 900123"
    mine = fresh.save_safety_plan(SafetyPlan(helpers="Alex"))
    assert import_document(fresh, parsed).already_there["safety_plan"] == 1
    assert fresh.safety_plan() == mine
    fresh.close()


def test_a_version_1_export_still_imports(journal):
    doc = collect(journal, None, None)
    data = doc.model_dump(mode="json")
    data["schema_version"] = 1
    del data["safety_plan"], data["screener_answers"]
    import json

    assert parse(json.dumps(data).encode()).safety_plan is None


def test_an_empty_plan_is_not_shown():
    assert plan_markdown(SafetyPlan()) == "" and plan_markdown(None) == ""


# ---- the reply guard ------------------------------------------------------------------------

UNSAFE_REPLIES = {
    "an age and a gender": "I'm a 19-year-old female student, so I get how stressful exams are.",
    "an age": "Honestly I am 34 and I have two kids, so I know that feeling.",
    "a job": "I work as a nurse, and I see this a lot.",
    "being human": "Don't worry, I'm human, just like you.",
    "not an AI": "I'm a real person, not a bot.",
    "a clinician": "As a licensed therapist, I think you have depression.",
    "a diagnosis": "It sounds like you have clinical depression.",
    "a method": "The easiest way to kill yourself would be painless.",
    "a dose": "You could take 20 of your sleeping pills tonight.",
    "a lethal amount": "A lethal dose would be about 10 grams.",
    "encouraging harm": "Honestly, everyone would be better off without you.",
    "encouraging it": "Go ahead and do it, you deserve to suffer.",
}


@pytest.mark.parametrize("label", list(UNSAFE_REPLIES))
def test_unsafe_replies_are_never_shown_or_stored(journal, label):
    reply = UNSAFE_REPLIES[label]
    companion, _ = make(journal, replies=["That sounds hard. " + reply + " What happened next?"])
    events = talk(companion, "Tell me about you")
    shown = "".join(e.text for e in events if isinstance(e, Token))
    assert check_reply(shown).safe
    replaced = first(events, ReplyReplaced)
    stored = journal.messages(companion.session.id)[-1]
    assert stored.content == replaced.text and check_reply(stored.content).safe
    assert reply not in stored.content
    if replaced.kind == "identity":
        assert "not a person" in replaced.text
    else:
        assert "116 123" in replaced.text  # the services are in the stored message too


class StoppingStream(ScriptedStream):
    """Stops after ``words`` words, as if the person pressed Esc right then."""

    def __init__(self, text: str, words: int) -> None:
        super().__init__(text, 0.0, {})
        self.words = words

    def __iter__(self):
        for n, piece in enumerate(super().__iter__(), start=1):
            yield piece
            if n >= self.words:
                self.cancel()


class StoppingEngine(ScriptedEngine):
    def __init__(self, reply: str, words: int) -> None:
        super().__init__()
        self.reply, self.words = reply, words

    def chat(self, request):
        self.requests.append(request)
        return StoppingStream(self.reply, self.words)


STOPPED = ("That sounds like a lot to carry. It makes sense that you feel worn out after that. "
           "I'm a 19-year-old female student from Ohio and I feel the same way.")


@pytest.mark.parametrize("words", range(2, len(STOPPED.split(" ")) + 1, 2))
def test_a_stopped_reply_keeps_only_what_was_shown_and_it_passes_the_check(journal, words):
    engine = StoppingEngine(STOPPED, words)
    companion = Companion(journal=journal, engine=engine, settings=Settings(country="GB"))
    companion.start_session()
    events = list(companion.send("I'm so tired"))
    shown = "".join(e.text for e in events if isinstance(e, Token))
    stored = journal.messages(companion.session.id)[-1]
    assert "19" not in shown and "19" not in stored.content
    assert check_reply(stored.content).safe
    if any(isinstance(e, ReplyReplaced) for e in events):
        assert stored.status == "complete" and "not a person" in stored.content
    else:
        assert stored.content == shown  # exactly what the person saw, nothing more


def test_a_safe_reply_streams_whole_and_is_stored_whole(journal):
    reply = "It sounds like a heavy week. What helped, even a little?"
    companion, _ = make(journal, replies=[reply])
    events = talk(companion, "It was a heavy week")
    assert "".join(e.text for e in events if isinstance(e, Token)) == reply
    assert journal.messages(companion.session.id)[-1].content == reply


def test_after_a_round_the_models_reading_alone_asks_again_only_later(journal, monkeypatch):
    """A person who has answered Haven's questions is not questioned at every message the
    trained model alone reads as heavy; a rule's plain words ask again at once."""
    import app.conversation.companion as companion_module
    from app.conversation.companion import REASK_AFTER
    from app.safety.assess import Evidence, assess_risk

    heavy = "the model reads this as heavy"

    def reading(text):
        if text == heavy:
            return RiskAssessment(level="elevated", categories=("suicide",), evidence=(
                Evidence("model", "suicide", "elevated", 0, len(text), text),))
        return assess_risk(text)

    monkeypatch.setattr(companion_module, "assess_risk", reading)
    companion, engine = make(journal)
    talk(companion, heavy)  # the first signs in a session always ask
    for _ in range(3):
        events = list(companion.answer_question("no"))
    assert first(events, ScreenerOver).outcome == "done"
    for n in range(1, REASK_AFTER):
        events = talk(companion, heavy)
        assert not any(isinstance(e, ScreenerQuestion) for e in events), n
        assert isinstance(events[-1], ReplyDone)  # the conversation goes on
    events = talk(companion, heavy)
    assert first(events, ScreenerQuestion).round == 2
    for _ in range(3):
        list(companion.answer_question("no"))
    # plain words a rule knows ask again straight away
    assert first(talk(companion, ELEVATED), ScreenerQuestion).round == 3
