"""The companion: one conversation service that owns the engine, the journal and safety.

The service (:mod:`app.conversation.service`) and the line-mode chat call only this.
Every user message is committed to the journal and passes the risk check *before* the
model sees it; on a crisis the model is never asked. Replies stream through the reply check, are committed as
``partial`` while they stream, and completed (or marked cancelled) at the end.

Safety across a session (see :meth:`Companion.send`): each message is judged alone and
with the person's earlier messages in the session. A crisis, from either, shows the crisis
response; once a session has reached crisis, Haven (not the model) answers every later
message in it with a short follow-up that keeps the services in view, until the person
starts a new session. Softer signs start Haven's direct questions (the C-SSRS screener in
``prompts/safety/screener.toml``). All of this is derived from the journal, so it holds
when a session is reopened.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from app.conversation.closing import Closing, ClosingWork
from app.conversation.events import Event, UserSaved
from app.conversation.flow import FlowError, Mode, SessionFlow, Step
from app.conversation.prompts import PromptLibrary, prompt_library
from app.conversation.replies import SAVE_EVERY_SECONDS, PendingReply, Replies, alternate
from app.conversation.safety_steps import (
    CRISIS_TEXTS,
    SafetyState,
    SafetySteps,
    _bare_answer,
    _fill,
    _higher,
    mood_words_help,
)
from app.insights.opening import returning_pattern
from app.llm import Engine
from app.safety import RiskAssessment, assess_conversation, assess_risk
from app.safety.screener import CHOICES, LABELS, screener
from app.settings import Settings
from app.store import Journal
from app.store.records import EmotionRating, Message, MoodEntry, Session

# The parts of the companion live in their own modules; their names stay importable from
# here, where the rest of Haven has always found them.
__all__ = ["CRISIS_TEXTS", "LINE_MODE_KEYS", "MAX_MESSAGE_CHARS", "REASK_AFTER",
           "SAVE_EVERY_SECONDS", "ClosingWork", "Companion", "MessageTooLong", "Opening",
           "PendingReply", "SafetyState", "_bare_answer", "_fill", "alternate",
           "mood_words_help"]

MAX_MESSAGE_CHARS = 200_000  # a paste larger than this is refused (nothing is lost: it stays in the box)
REASK_AFTER = 6  # messages before the model's reading alone asks Haven's questions again
# How Haven names its own keys in the texts it writes; the TUI passes its keys instead.
LINE_MODE_KEYS = {"sos": "type /sos", "new_session": "/new"}


class MessageTooLong(ValueError):
    pass


@dataclass
class Opening:
    text: str
    returning: bool = False


@dataclass
class Companion(SafetySteps, Replies, Closing):
    """One conversation: sessions, moods and each message up to the model's reply (here);
    safety across the session (:mod:`~app.conversation.safety_steps`), the model's replies
    (:mod:`~app.conversation.replies`) and the closing steps
    (:mod:`~app.conversation.closing`) are its parts."""

    journal: Journal
    engine: Engine | None
    settings: Settings
    prompts: PromptLibrary = field(default_factory=prompt_library)
    session: Session | None = None
    flow: SessionFlow = field(default_factory=SessionFlow)
    keys: dict[str, str] = field(default_factory=lambda: dict(LINE_MODE_KEYS))
    _stream: object | None = None
    _fold_ahead: tuple | None = None

    # ---- sessions ----------------------------------------------------------------------

    def start_session(self) -> Opening:
        """Begin a new session; Haven's opening words pick up the last session if any."""
        model_name = self.engine.spec.name if self.engine and self.engine.spec else None
        self.session = self.journal.start_session(model=model_name)
        self.flow = SessionFlow()
        last = self.journal.last_ended_session()
        if last and last.next_step:
            text = self.prompts.render("opening_return.md", step=last.next_step)
            pattern = returning_pattern(self.journal, last, self.settings)  # issue 15
            text = f"{text}\n\n{pattern}" if pattern else text
            opening = Opening(text=text, returning=True)
        else:
            opening = Opening(text=self.prompts.render("opening.md"))
        self.journal.add_message(self.session.id, "system", opening.text)
        return opening

    def open_session(self, session_id: str) -> list[Message]:
        session = self.journal.session(session_id)
        if session is None:
            raise KeyError(session_id)
        if session.ended:  # reopening an ended session continues the conversation
            session = self.journal.update_session(session.id, ended=None)
        self.session = session
        self.flow = SessionFlow()
        self.flow.step = Step.WORK
        self.flow.mood_before = session.mood_before
        return self.journal.messages(session_id)

    def _require_session(self) -> Session:
        if self.session is None:
            self.start_session()
        assert self.session is not None
        return self.session

    # ---- moods -------------------------------------------------------------------------

    def record_mood(
        self, score: int, emotions: list[EmotionRating] | None = None, note: str | None = None
    ) -> MoodEntry:
        session = self._require_session()
        try:
            when = self.flow.record_mood(score)
        except FlowError:
            when = None  # mid-session: logged as a mood entry, the session's ratings unchanged
        entry = self.journal.add_mood(score, emotions or [], note, session_id=session.id)
        if when is not None:
            field_name = "mood_before" if when == "before" else "mood_after"
            self.session = self.journal.update_session(session.id, **{field_name: score})
        if when == "after":
            self._finish()
        return entry

    def choose_mode(self, mode: Mode) -> bool:
        return self.flow.choose_mode(mode)

    # ---- talking -----------------------------------------------------------------------

    def send(self, text: str, answer: str | None = None) -> Iterator[Event]:
        """Handle one user message and stream the reply: every event, in order, on the
        caller's thread (the service splits the same steps across its threads)."""
        for item in self.decide(text, answer):
            if isinstance(item, PendingReply):
                yield from self.stream_reply(item)
                yield from self.finish_reply(item)
            else:
                yield item

    def decide(self, text: str, answer: str | None = None) -> Iterator[Event | PendingReply]:
        """Handle one user message up to the model: yield what the UI should show, and
        last, when the model is to reply, the :class:`PendingReply` to stream.

        Quick (no waiting on the model). The user's message is committed before anything
        else happens. ``answer`` is a button's answer (yes, no,
        not_sure) to Haven's open question; typed text is read as an answer too.

        In order: a crisis in this message, in the session so far, or in an answer to
        Haven's questions shows the crisis response (words that fit it: an overdose gets
        an ambulance and a poison line); a message in a session that has already reached
        crisis gets Haven's follow-up; an answer to an open question gets the next
        question; softer signs start the questions; otherwise the model replies. The model
        is never asked in a crisis, and never again in that session.
        """
        if not text.strip():
            return
        if len(text) > MAX_MESSAGE_CHARS:
            raise MessageTooLong(
                f"that message is {len(text):,} characters; Haven takes up to "
                f"{MAX_MESSAGE_CHARS:,} at a time — try splitting it"
            )
        session = self._require_session()
        state = self.safety_state(session)
        own = assess_risk(text)
        risk = _higher(own, assess_conversation([*state.history, text]))
        open_q = None if state.crisis else state.open
        choice = None
        if open_q is not None:
            choice = answer if answer in CHOICES else screener().read(text)
        answer_crisis = choice in CHOICES and open_q is not None and screener().is_crisis(
            open_q.question, choice)
        level = "crisis" if (state.crisis or answer_crisis) else risk.level
        if level != risk.level:
            risk = RiskAssessment(level=level, categories=risk.categories, evidence=risk.evidence)
        self.flow.user_message()
        saved = self.journal.add_message(session.id, "user", text, risk_level=level)
        if open_q is not None:
            self.journal.answer_screener(open_q.id, choice or "unclear", saved.id)
        yield UserSaved(saved, risk)

        if own.level == "crisis":  # words that fit this message, even later in a crisis session
            yield self._crisis_response(session, own)
            return
        if level == "crisis" and not state.crisis:
            yield self._crisis_response(session, risk)
            return
        if state.crisis:
            yield self._follow_up(session, risk)
            return
        if open_q is not None:
            yield from self._screener_answered(session, open_q, choice, state, own)
            return
        if self._ask_again(own, risk, state):
            yield from self._start_screener(session, risk, state.rounds)
            return
        yield from self._reply_or_wait(session)

    @staticmethod
    def _ask_again(own: RiskAssessment, risk: RiskAssessment, state: SafetyState) -> bool:
        """Whether softer signs start Haven's questions (again).

        The first signs in a session always do. After a round, a rule's signs (plain words
        such as "I wish I could disappear") ask again at once; the trained model's reading
        alone asks again only after REASK_AFTER more messages, so a person who has answered
        is not questioned at every ordinary message the model reads as heavy."""
        if own.level != "elevated" and not (risk.level == "elevated" and state.rounds == 0):
            return False
        if state.rounds == 0 or any(e.rule != "model" for e in own.evidence):
            return True
        return state.since_last_round + 1 >= REASK_AFTER  # this message is the REASK_AFTER-th

    def answer_question(self, choice: str) -> Iterator[Event]:
        """A button answer (yes, no, not_sure) to Haven's open question."""
        if choice not in CHOICES:
            raise ValueError(f"unknown answer {choice!r}")
        yield from self.send(LABELS[choice], answer=choice)


