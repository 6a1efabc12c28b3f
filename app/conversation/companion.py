"""The companion: one conversation service that owns the engine, the journal and safety.

The UI (Textual app, line-mode chat) calls only this. Every user message is committed
to the journal and passes the risk check *before* the model sees it; on a crisis the
model is never asked. Replies stream through the reply check, are committed as
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

import logging
import re
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from app.cbt import Distortion
from app.conversation.events import (
    CheckIn,
    Crisis,
    Event,
    FollowUp,
    NoModel,
    Recalled,
    ReplyDone,
    ReplyReplaced,
    ReplyStarted,
    ScreenerOver,
    ScreenerQuestion,
    Token,
    UserSaved,
)
from app.conversation.flow import FlowError, Mode, SessionFlow, Step
from app.conversation.prompts import PromptLibrary, prompt_library
from app.conversation.thought_records import draft_thought_record
from app.insights.opening import returning_pattern
from app.insights.recall import for_reply as recall_for_reply
from app.llm import ChatRequest, Engine, GenerationParams, Job, Turn
from app.safety import RiskAssessment, assess_conversation, assess_risk, resources_for
from app.safety.output_check import ReplyGuard
from app.safety.resources import Situation, services_markdown, situation
from app.safety.rules import LEVELS
from app.safety.screener import CHOICES, LABELS, Question, screener
from app.settings import Settings
from app.store import Journal
from app.store.records import (
    EmotionRating,
    Message,
    MoodEntry,
    SafetyPlan,
    ScreenerAnswer,
    Session,
    ThoughtRecord,
    now_utc,
)

log = logging.getLogger("haven.companion")

SAVE_EVERY_SECONDS = 0.75
MAX_MESSAGE_CHARS = 200_000  # a paste larger than this is refused (nothing is lost: it stays in the box)


CRISIS_TEXTS: dict[Situation, str] = {
    "self": "safety/crisis.md",
    "medical": "safety/crisis_medical.md",
    "danger": "safety/crisis_danger.md",
    "others": "safety/crisis_others.md",
}
# How Haven names its own keys in the texts it writes; the TUI passes its keys instead.
REASK_AFTER = 6  # messages before the model's reading alone asks Haven's questions again
LINE_MODE_KEYS = {"sos": "type /sos", "new_session": "/new"}


class MessageTooLong(ValueError):
    pass


def mood_words_help(emotions: list[EmotionRating] | None, note: str | None, sos: str,
                    prompts: PromptLibrary | None = None) -> tuple[str, str | None]:
    """(risk level, Haven's line or None) for what a person wrote with a mood rating: its
    note and the feelings they named in their own words. It never reaches the model, but a
    crisis written there must still meet help; ``sos`` names where help is (a key, or
    `haven sos` on the command line)."""
    found = RiskAssessment(level="none")
    for text in (note or "", ", ".join(e.name for e in emotions or [])):
        if text.strip():
            found = _higher(found, assess_risk(text))
    prompts = prompts or prompt_library()
    if found.level == "crisis":
        return "crisis", _fill(prompts.render("safety/mood_note.md"))
    if found.level == "elevated":
        return "elevated", _fill(prompts.render("safety/mood_note_heavy.md", sos=sos))
    return "none", None


@dataclass(frozen=True)
class SafetyState:
    """What the journal says about safety in one session (derived, never kept apart)."""

    crisis: bool  # the session has reached crisis
    history: list[str]  # the person's own messages, oldest first (not bare Yes/No answers)
    answers: list[ScreenerAnswer]
    open: ScreenerAnswer | None  # Haven's question waiting for an answer

    since_last_round: int = 0  # the person's messages (not answers) since the last questions began

    @property
    def rounds(self) -> int:
        return max((a.round for a in self.answers), default=0)


def _higher(a: RiskAssessment, b: RiskAssessment) -> RiskAssessment:
    return b if LEVELS.index(b.level) > LEVELS.index(a.level) else a


def _bare_answer(text: str) -> bool:
    return text.strip().lower() in {label.lower() for label in LABELS.values()}


def _fill(text: str, **values: str) -> str:
    filled = string.Template(text).safe_substitute(**values)
    return re.sub(r"\n{3,}", "\n\n", filled).strip()


@dataclass
class Opening:
    text: str
    returning: bool = False


@dataclass
class PendingReply:
    """A reply the model is streaming: what is needed to show it and to finish it.

    Made by :meth:`Companion.decide` (which stored the empty, ``partial`` reply); read by
    :meth:`Companion.stream_reply` (the model's words, through the reply check) and closed
    by :meth:`Companion.finish_reply` (what is kept, and how it ended). The guard belongs
    to this reply alone, so streaming needs no lock.
    """

    session_id: str
    message: Message
    stream: object
    owners: list[Message]
    guard: ReplyGuard = field(default_factory=ReplyGuard)
    finished: bool = False


@dataclass(frozen=True)
class ClosingWork:
    """What a closing summary is written from (a copy: the model works on it off-thread)."""

    session: Session
    turns: list[Turn]


@dataclass
class Companion:
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

    def choose_mode(self, mode: Mode) -> None:
        self.flow.choose_mode(mode)

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

    # ---- safety across the session ---------------------------------------------------------

    def safety_state(self, session: Session | None = None) -> SafetyState:
        session = session or self.session
        if session is None:
            return SafetyState(crisis=False, history=[], answers=[], open=None)
        messages = self.journal.messages(session.id)
        answers = self.journal.screener_answers(session.id)
        answered_by = {a.message_id for a in answers if a.message_id}
        history = [m.content for m in messages if m.role == "user"
                   and not (m.id in answered_by and _bare_answer(m.content))]
        crisis = any(m.risk_level == "crisis" for m in messages)
        open_q = answers[-1] if answers and answers[-1].answer is None else None
        last = max((a.round for a in answers), default=0)
        began = min((a.asked for a in answers if a.round == last), default=None)
        since = 0 if began is None else sum(1 for m in messages if m.role == "user"
                                            and m.created > began and m.id not in answered_by)
        return SafetyState(crisis=crisis, history=history, answers=answers, open=open_q,
                           since_last_round=since)

    def pending_question(self) -> Question | None:
        """Haven's question waiting for an answer in this session, if any."""
        state = self.safety_state()
        if state.crisis or state.open is None:
            return None
        return screener().question(state.open.question)

    def safety_plan(self) -> SafetyPlan | None:
        plan = self.journal.safety_plan()
        return None if plan is None or plan.is_empty else plan

    def _words(self, template: str, **values: str) -> tuple[str, str]:
        """(the text with the services, the same words without them)."""
        return (_fill(self.prompts.render(template, **values)),
                _fill(self.prompts.render(template, **{**values, "services": ""})))

    def _crisis_response(self, session: Session, risk: RiskAssessment) -> Crisis:
        kind = situation(risk.categories)
        found = resources_for(self.settings.country, risk.categories, kind)
        text, words = self._words(CRISIS_TEXTS[kind], emergency=found.emergency,
                                  services=services_markdown(found, kind))
        self.journal.add_message(session.id, "system", text, risk_level="crisis")
        return Crisis(text=text, resources=found, assessment=risk, kind=kind, words=words,
                      plan=self.safety_plan())

    def _follow_up(self, session: Session, risk: RiskAssessment) -> FollowUp:
        kind = situation(risk.categories)
        found = resources_for(self.settings.country, risk.categories, kind)
        text, words = self._words("safety/crisis_followup.md",
                                  services=services_markdown(found, kind), **self.keys)
        self.journal.add_message(session.id, "system", text, risk_level="crisis")
        return FollowUp(text=text, resources=found, words=words, plan=self.safety_plan(),
                        kind=kind)

    def _start_screener(self, session: Session, risk: RiskAssessment,
                        rounds: int) -> Iterator[Event]:
        questions = screener()
        if rounds == 0:
            found = resources_for(self.settings.country, risk.categories)
            text, words = self._words("safety/elevated.md", services=services_markdown(found))
            self.journal.add_message(session.id, "system", text, risk_level="elevated")
            yield CheckIn(text=text, resources=found, assessment=risk, words=words)
        intro = questions.intro if rounds == 0 else questions.intro_again
        yield self._ask(session, questions.first, rounds + 1, intro)

    def _ask(self, session: Session, question: Question, round: int,
             before: str = "") -> ScreenerQuestion:
        text = f"{before}\n\n{question.text}" if before else question.text
        message = self.journal.add_message(session.id, "system", text, risk_level="elevated")
        self.journal.ask_screener(session.id, question.id, round)
        return ScreenerQuestion(question=question.id, text=text, message=message, round=round)

    def _screener_answered(self, session: Session, asked: ScreenerAnswer, choice: str | None,
                           state: SafetyState,
                           own: RiskAssessment) -> Iterator[Event | PendingReply]:
        questions = screener()
        question = questions.question(asked.question)
        if choice in CHOICES:
            after = questions.next(question.id, "yes" if choice == "not_sure" else choice)
            if after is not None:
                yield self._ask(session, after, asked.round)
                return
            yield self._screener_done(session, asked.round)
            return
        # declined ("you misunderstood") or unclear: ask once more while signs are still
        # there or it was only unclear; otherwise pause (asked again if signs come back)
        unclear_before = any(a.round == asked.round and a.question == asked.question
                             and a.answer == "unclear" for a in state.answers)
        if own.level != "none" or (choice is None and not unclear_before):
            yield self._ask(session, question, asked.round, questions.unclear)
            return
        text = _fill(questions.paused, **self.keys)
        self.journal.add_message(session.id, "system", text, risk_level="elevated")
        yield ScreenerOver(text=text, outcome="paused")
        yield from self._reply_or_wait(session)

    def _screener_done(self, session: Session, round: int) -> ScreenerOver:
        questions = screener()
        answers = [a for a in self.journal.screener_answers(session.id) if a.round == round]
        some_yes = any(a.answer in ("yes", "not_sure") for a in answers)
        found = resources_for(self.settings.country)
        template = questions.done_some_yes if some_yes else questions.done_all_no
        text = _fill(template, services=services_markdown(found), **self.keys)
        self.journal.add_message(session.id, "system", text,
                                 risk_level="elevated" if some_yes else "none")
        return ScreenerOver(text=text, outcome="done", resources=found if some_yes else None)

    def _reply_or_wait(self, session: Session) -> Iterator[Event | PendingReply]:
        if self.engine is None or not self.engine.ready:
            state = "is still loading" if self.engine and self.engine.state.name == "LOADING" else (
                "is not set up yet" if not (self.engine and self.engine.error) else
                f"could not load ({self.engine.error})")
            yield NoModel(f"Your message is saved in your journal. The model {state}, so Haven "
                          "cannot reply right now.")
            return
        yield from self._reply(session)

    def system_prompt(self, flow: SessionFlow | None = None) -> str:
        # What never changes in a session comes first (the companion prompt, then the
        # memory of the last session), what changes late after it (the technique of the
        # moment, the mood): a change then costs the model only the tail of its KV cache.
        parts = [self.prompts.render("companion.md")]
        last = self.journal.last_ended_session()
        if last and last.id != (self.session.id if self.session else None) and (
            last.summary or last.next_step
        ):
            step_line = f"They planned to: {last.next_step}" if last.next_step else ""
            parts.append(self.prompts.render("memory.md", summary=last.summary or "(no summary)",
                                             step_line=step_line))
        flow = flow or self.flow  # issue 13: a prefill reads the flow after the next message
        technique = flow.technique()
        if technique:
            parts.append(self.prompts.technique(technique))
        if flow.mood_before is not None:
            parts.append(f"At the start of this session the person rated their mood "
                         f"{flow.mood_before} out of 10.")
        return "\n\n".join(parts)

    # ---- before Enter (issue 13) ---------------------------------------------------------

    def _next_request(self, session: Session) -> ChatRequest:
        turns, _ = self._model_turns(session)
        return ChatRequest(system=self.system_prompt(self.flow.after_message()),
                           turns=tuple(turns), summary=session.running_summary,
                           fold_instruction=self.prompts.render("fold_summary.md"),
                           params=self._params())

    def prefill(self, draft: str = "") -> Job | None:
        """Have the model evaluate the next reply's prompt before Enter: the system prompt
        and the conversation so far, and the whole words of ``draft`` (the message being
        typed). Cheap to call often (the model process evaluates in small chunks, yields
        to any reply, and a newer call continues an older one's work); call it when the
        model is ready, after a reply, and (debounced) while the person types. Nothing
        happens without a ready model, in a crisis session, while Haven's questions are
        open, or for a draft the risk check flags: such a draft never reaches the model.
        Returns the engine's job (a future of :class:`app.llm.Prefill`), or None."""
        session = self.session
        if session is None or self.engine is None or not self.engine.ready:
            return None
        if draft.strip() and assess_risk(draft).level != "none":
            return None
        state = self.safety_state(session)
        if state.crisis or state.open is not None:
            return None
        return self.engine.prefill(self._next_request(session), draft=draft)

    def prepare_next(self) -> Job | None:
        """After a reply: fold ahead of time if the context is nearly full (never between
        Enter and the first token), else prefill the history for the next message. The
        fold's summary is kept when it lands (a reply that comes first preempts it)."""
        session = self.session
        if session is None or self.engine is None or not self.engine.ready:
            return None
        state = self.safety_state(session)
        if state.crisis or state.open is not None:
            return None
        turns, owners = self._model_turns(session)
        if not turns:
            return self.prefill()
        request = self._next_request(session)
        job = self.engine.fold(request)
        self._fold_ahead = (session.id, session.running_summary, owners, job)
        return job

    def _take_fold(self, session: Session) -> Session:
        """Keep a fold done ahead of time (on this thread, before the next request)."""
        pending, self._fold_ahead = self._fold_ahead, None
        if pending is None:
            return session
        session_id, summary_then, owners, job = pending
        if session_id != session.id or session.running_summary != summary_then:
            return session
        if not job.done():
            job.stop()  # a fold never stands between Enter and the first token
            return session
        try:
            fold = job.result()
        except Exception:
            return session
        if fold.status == "done" and fold.folded and fold.summary is not None:
            session = self.journal.update_session(
                session.id, running_summary=fold.summary,
                folded_until=owners[fold.folded - 1].id)
            self.session = session
        return session

    def _model_turns(self, session: Session) -> tuple[list[Turn], list[Message]]:
        """The messages the model sees: after the last fold, no crisis messages, no
        Haven notices; consecutive messages of one role merged (templates need turns to
        alternate)."""
        messages = self.journal.messages(session.id)
        if session.folded_until:
            ids = [m.id for m in messages]
            if session.folded_until in ids:
                messages = messages[ids.index(session.folded_until) + 1 :]
        answers = {a.message_id for a in self.journal.screener_answers(session.id)
                   if a.answer in CHOICES}
        usable = [
            m for m in messages
            if m.role in ("user", "assistant") and m.content.strip() and m.risk_level != "crisis"
            and m.id not in answers
        ]
        return alternate([Turn(m.role, m.content) for m in usable], usable)  # type: ignore[arg-type]

    def _params(self) -> GenerationParams:
        g = self.settings.generation
        return GenerationParams(temperature=g.temperature, top_p=g.top_p,
                                repeat_penalty=g.repeat_penalty, max_tokens=g.max_tokens,
                                seed=g.seed)

    def _reply(self, session: Session) -> Iterator[Event | PendingReply]:
        assert self.engine is not None
        session = self._take_fold(session)
        turns, owners = self._model_turns(session)
        if not turns or turns[-1].role != "user":
            return
        # issue 15: recall goes into the newest turn only (the cached prefix stays the same)
        recalled = recall_for_reply(self.journal, self.settings, session.id, turns[-1].content)
        if recalled:
            turns[-1] = Turn("user", recalled.prompt_text(turns[-1].content))
            yield Recalled(items=recalled.items, line=recalled.note_line())
        request = ChatRequest(
            system=self.system_prompt(),
            turns=tuple(turns),
            summary=session.running_summary,
            fold_instruction=self.prompts.render("fold_summary.md"),
            params=self._params(),
        )
        reply_msg = self.journal.add_message(session.id, "assistant", "", status="partial")
        yield ReplyStarted(reply_msg)
        yield PendingReply(session_id=session.id, message=reply_msg,
                           stream=self.engine.chat(request), owners=owners)

    def stream_reply(self, pending: PendingReply,
                     save: Callable[[PendingReply, str], None] | None = None) -> Iterator[Token]:
        """The model's words as they pass the reply check. Only waits on the model; every
        so often ``save`` (by default :meth:`save_partial`) is handed the text released
        so far, to be stored as ``partial``."""
        save = save or self.save_partial
        stream, guard = pending.stream, pending.guard
        self._stream = stream
        last_save = time.monotonic()
        try:
            for chunk in stream:  # type: ignore[attr-defined]
                new = guard.feed(chunk)
                if guard.tripped:
                    stream.cancel()  # type: ignore[attr-defined]
                    break
                if new:
                    yield Token(new)
                    if time.monotonic() - last_save > SAVE_EVERY_SECONDS:
                        # only released text is ever stored: it has passed the reply check
                        save(pending, guard.released)
                        last_save = time.monotonic()
            if guard.tripped:
                for _ in stream:  # type: ignore[attr-defined]  # drain what came before the cancel
                    pass
        finally:
            self._stream = None

    def save_partial(self, pending: PendingReply, text: str) -> None:
        if not pending.finished:
            self.journal.update_message(pending.message.id, text, "partial")

    def finish_reply(self, pending: PendingReply) -> list[Event]:
        """How the reply ended: what is kept in the journal, and what the UI shows last."""
        if pending.finished:
            return []
        pending.finished = True
        result = pending.stream.wait()  # type: ignore[attr-defined]
        guard, message_id = pending.guard, pending.message.id
        events: list[Event] = []
        if not guard.tripped:
            # a stopped or failed reply keeps only whole sentences that passed the check
            rest = guard.finish(complete=result.status == "complete")
            if rest:
                events.append(Token(rest))
        if guard.tripped:
            found = resources_for(self.settings.country)
            if guard.tripped.only_identity:
                kind, safe = "identity", _fill(self.prompts.render("safety/unsafe_reply_identity.md"))
            else:
                kind, safe = "harm", _fill(self.prompts.render(
                    "safety/unsafe_reply.md", emergency=found.emergency,
                    services=services_markdown(found)))
            self.journal.update_message(message_id, safe, "complete")
            log.warning("a model reply was replaced (%s)", ", ".join(guard.tripped.categories))
            events.append(ReplyReplaced(text=safe, resources=found,
                                        categories=guard.tripped.categories, kind=kind))
            events.append(ReplyDone(self._reload(pending.session_id, message_id), "replaced"))
            return events
        shown = guard.released
        # "crashed": the model process died mid-reply; what was shown is kept as interrupted
        status = {"complete": "complete", "cancelled": "cancelled",
                  "crashed": "partial"}.get(result.status, "cancelled")
        if result.status == "error" and not shown:
            self.journal.update_message(message_id, "", "cancelled")
        else:
            self.journal.update_message(message_id, shown, status)
        if result.folded and result.summary is not None:
            last_folded = pending.owners[result.folded - 1]
            updated = self.journal.update_session(
                pending.session_id, running_summary=result.summary, folded_until=last_folded.id)
            if self.session is not None and self.session.id == updated.id:
                self.session = updated
        events.append(ReplyDone(self._reload(pending.session_id, message_id), result.status,
                                error=result.error))
        return events

    def _reload(self, session_id: str, message_id: str) -> Message:
        return next(m for m in self.journal.messages(session_id) if m.id == message_id)

    def cancel(self) -> None:
        stream = self._stream
        if stream is not None:
            stream.cancel()  # type: ignore[attr-defined]

    # ---- closing ---------------------------------------------------------------------------

    def close_session(self, with_summary: bool = True) -> Session:
        """Write the closing summary and title (with a model), and move to the closing steps."""
        work = self.begin_closing(with_summary)
        return self.finish_closing(work, self.closing_fields(work))

    def begin_closing(self, with_summary: bool = True) -> ClosingWork:
        """Move to the closing steps; what the summary is to be written from (no turns:
        no summary, as without a model)."""
        session = self._require_session()
        self.flow.begin_closing()
        turns: list[Turn] = []
        if with_summary and self.engine is not None and self.engine.ready:
            turns, _ = self._model_turns(session)
        return ClosingWork(session=session, turns=turns)

    def closing_fields(self, work: ClosingWork) -> dict:
        """The summary and title, from the model (blocking, and touching no state: the
        service runs it off its queue)."""
        engine = self.engine
        if not work.turns or engine is None:
            return {}
        context = list(work.turns)
        if work.session.running_summary:
            context.insert(0, Turn("user", f"(Earlier in this conversation: {work.session.running_summary})"))
        params = GenerationParams(temperature=0.3, max_tokens=200)
        try:
            transcript, _ = alternate(context + [Turn("user", "Please write the summary now.")])
            summary = engine.complete(self.prompts.render("session_summary.md"), transcript,
                                      params).result().strip()
            title_turns, _ = alternate(context + [Turn("user", "Please give the title now.")])
            title = engine.complete(self.prompts.render("session_title.md"), title_turns,
                                    GenerationParams(temperature=0.3, max_tokens=16)).result()
        except Exception as exc:
            log.warning("closing summary failed: %s", type(exc).__name__)
            return {}
        title = title.strip().strip('"').splitlines()[0][:80] if title.strip() else None
        return {"summary": summary or None, "title": title}

    def finish_closing(self, work: ClosingWork, fields: dict) -> Session:
        """Keep the summary and title (if the session is still there)."""
        if not fields or self.journal.session(work.session.id) is None:
            return self.session or work.session
        updated = self.journal.update_session(work.session.id, **fields)
        if self.session is not None and self.session.id == updated.id:
            self.session = updated
        return updated

    def draft_thought_record(self) -> ThoughtRecord:
        """A draft from this conversation for the person to edit (blocking: use a worker)."""
        session_id, turns = self.draft_context()
        return self.draft_from(session_id, turns)

    def draft_context(self) -> tuple[str, list[Turn]]:
        """The session and the turns a draft is written from (no turns without a model)."""
        session = self._require_session()
        if self.engine is None or not self.engine.ready:
            return session.id, []
        turns, _ = self._model_turns(session)
        return session.id, turns

    def draft_from(self, session_id: str, turns: list[Turn]) -> ThoughtRecord:
        """The model's draft (blocking, touching no state)."""
        engine = self.engine
        if engine is None or not engine.ready or not turns:
            return ThoughtRecord(session_id=session_id)
        instruction = self.prompts.render(
            "thought_record_draft.md", distortion_keys=", ".join(d.value for d in Distortion)
        )
        return draft_thought_record(engine, instruction, turns, session_id)

    def save_thought_record(self, record: ThoughtRecord) -> ThoughtRecord:
        return self.journal.save_thought_record(record)

    def set_next_step(self, text: str | None) -> None:
        self.flow.set_next_step(text)
        if self.session:
            self.session = self.journal.update_session(self.session.id, next_step=self.flow.next_step)

    def skip_step(self) -> None:
        self.flow.skip()
        if self.flow.ended:
            self._finish()

    def end_session(self) -> None:
        """Leave now (early exit or after the closing rating)."""
        self.flow.leave()
        self._finish()

    def _finish(self) -> None:
        if self.session is None:
            return
        if self._is_empty(self.session):
            # opened and closed without a word or a rating: leave no empty entry behind
            self.journal.delete_session(self.session.id)
            self.session = None
        elif self.session.ended is None:
            self.session = self.journal.update_session(self.session.id, ended=now_utc())

    def _is_empty(self, session: Session) -> bool:
        if session.mood_before is not None or session.mood_after is not None:
            return False
        if any(m.role == "user" for m in self.journal.messages(session.id)):
            return False
        return not any(e.session_id == session.id for e in self.journal.moods())


def alternate(turns: list[Turn], owners: list | None = None) -> tuple[list[Turn], list]:
    """Turns as chat templates need them: consecutive turns of one role merged into one,
    starting with the person's. ``owners`` (one per turn, e.g. the stored messages) follow
    the merge: each merged turn is owned by the last of its run."""
    owners = list(owners) if owners is not None else [None] * len(turns)
    out: list[Turn] = []
    kept: list = []
    for turn, owner in zip(turns, owners, strict=True):
        if out and out[-1].role == turn.role:
            out[-1] = Turn(turn.role, out[-1].content + "\n\n" + turn.content)
            kept[-1] = owner
        else:
            out.append(turn)
            kept.append(owner)
    while out and out[0].role != "user":
        out.pop(0)
        kept.pop(0)
    return out, kept
