"""Safety across a session, for the companion: what the journal says about it, the crisis
response and follow-up, and Haven's direct questions (the C-SSRS screener in
``prompts/safety/screener.toml``).

A crisis, from one message or from the session so far, shows the crisis response; once a
session has reached crisis, Haven (not the model) answers every later message in it with a
short follow-up that keeps the services in view. Softer signs start Haven's questions.
Everything is derived from the journal, so it holds when a session is reopened.
:class:`SafetySteps` is a part of :class:`app.conversation.companion.Companion`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.conversation.events import CheckIn, Crisis, Event, FollowUp, ScreenerOver, ScreenerQuestion
from app.conversation.prompts import PromptLibrary, prompt_library
from app.safety import RiskAssessment, assess_risk, resources_for
from app.safety.resources import Situation, format_resources, situation
from app.safety.rules import LEVELS
from app.safety.screener import CHOICES, LABELS, Question, screener
from app.store.records import EmotionRating, SafetyPlan, ScreenerAnswer, Session

if TYPE_CHECKING:
    from app.conversation.replies import PendingReply

CRISIS_TEXTS: dict[Situation, str] = {
    "self": "safety/crisis.md",
    "medical": "safety/crisis_medical.md",
    "danger": "safety/crisis_danger.md",
    "others": "safety/crisis_others.md",
}


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


class SafetySteps:
    """The companion's safety steps (a part of it: they use its journal, settings, prompts,
    session and keys)."""

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
                                  services=format_resources(found, kind, markdown=True))
        self.journal.add_message(session.id, "system", text, risk_level="crisis")
        return Crisis(text=text, resources=found, assessment=risk, kind=kind, words=words,
                      plan=self.safety_plan())

    def _follow_up(self, session: Session, risk: RiskAssessment) -> FollowUp:
        kind = situation(risk.categories)
        found = resources_for(self.settings.country, risk.categories, kind)
        text, words = self._words("safety/crisis_followup.md",
                                  services=format_resources(found, kind, markdown=True), **self.keys)
        self.journal.add_message(session.id, "system", text, risk_level="crisis")
        return FollowUp(text=text, resources=found, words=words, plan=self.safety_plan(),
                        kind=kind)

    def _start_screener(self, session: Session, risk: RiskAssessment,
                        rounds: int) -> Iterator[Event]:
        questions = screener()
        if rounds == 0:
            found = resources_for(self.settings.country, risk.categories)
            text, words = self._words("safety/elevated.md", services=format_resources(found, markdown=True))
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
        text = _fill(template, services=format_resources(found, markdown=True), **self.keys)
        self.journal.add_message(session.id, "system", text,
                                 risk_level="elevated" if some_yes else "none")
        return ScreenerOver(text=text, outcome="done", resources=found if some_yes else None)
