"""The companion: one conversation service that owns the engine, the journal and safety.

The UI (Textual app, line-mode chat) calls only this. Every user message is committed
to the journal and passes the risk check *before* the model sees it; on a crisis the
model is never asked. Replies stream through the reply check, are committed as
``partial`` while they stream, and completed (or marked cancelled) at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from app.cbt import Distortion
from app.conversation.events import (
    CheckIn,
    Crisis,
    Event,
    NoModel,
    ReplyDone,
    ReplyReplaced,
    ReplyStarted,
    Token,
    UserSaved,
)
from app.conversation.flow import FlowError, Mode, SessionFlow, Step
from app.conversation.prompts import PromptLibrary, prompt_library
from app.conversation.thought_records import draft_thought_record
from app.llm import ChatRequest, Engine, GenerationParams, Turn
from app.safety import RiskAssessment, assess_risk, resources_for
from app.safety.output_check import ReplyGuard
from app.settings import Settings
from app.store import Journal
from app.store.records import EmotionRating, Message, MoodEntry, Session, ThoughtRecord, now_utc

log = logging.getLogger("haven.companion")

SAVE_EVERY_SECONDS = 0.75
MAX_MESSAGE_CHARS = 200_000  # a paste larger than this is refused (nothing is lost: it stays in the box)


class MessageTooLong(ValueError):
    pass


@dataclass
class Opening:
    text: str
    returning: bool = False
    last_summary: str | None = None


@dataclass
class Companion:
    journal: Journal
    engine: Engine | None
    settings: Settings
    prompts: PromptLibrary = field(default_factory=prompt_library)
    session: Session | None = None
    flow: SessionFlow = field(default_factory=SessionFlow)
    _stream: object | None = None

    # ---- sessions ----------------------------------------------------------------------

    def start_session(self) -> Opening:
        """Begin a new session; Haven's opening words pick up the last session if any."""
        model_name = self.engine.spec.name if self.engine and self.engine.spec else None
        self.session = self.journal.start_session(model=model_name)
        self.flow = SessionFlow()
        last = self.journal.last_ended_session()
        if last and last.next_step:
            text = self.prompts.render("opening_return.md", step=last.next_step)
            opening = Opening(text=text, returning=True, last_summary=last.summary)
        else:
            opening = Opening(text=self.prompts.render("opening.md"),
                              last_summary=last.summary if last else None)
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

    def send(self, text: str) -> Iterator[Event]:
        """Handle one user message; yield what the UI should show, as it happens.

        Runs synchronously (the TUI calls it from a worker thread). The user's message is
        committed before anything else happens.
        """
        if not text.strip():
            return
        if len(text) > MAX_MESSAGE_CHARS:
            raise MessageTooLong(
                f"that message is {len(text):,} characters; Haven takes up to "
                f"{MAX_MESSAGE_CHARS:,} at a time — try splitting it"
            )
        session = self._require_session()
        risk = assess_risk(text)
        self.flow.user_message()
        saved = self.journal.add_message(session.id, "user", text, risk_level=risk.level)
        yield UserSaved(saved, risk)

        if risk.level == "crisis":
            yield self._crisis_response(session, risk)
            return
        if risk.level == "elevated":
            yield self._check_in(session, risk)

        if self.engine is None or not self.engine.ready:
            state = "is still loading" if self.engine and self.engine.state.name == "LOADING" else (
                "is not set up yet" if not (self.engine and self.engine.error) else
                f"could not load ({self.engine.error})")
            yield NoModel(f"Your message is saved in your journal. The model {state}, so Haven "
                          "cannot reply right now.")
            return
        yield from self._reply(session)

    def _crisis_response(self, session: Session, risk: RiskAssessment) -> Crisis:
        found = resources_for(self.settings.country, risk.categories)
        text = self.prompts.render("safety/crisis.md", emergency=found.emergency)
        self.journal.add_message(session.id, "system", text, risk_level="crisis")
        return Crisis(text=text, resources=found, assessment=risk)

    def _check_in(self, session: Session, risk: RiskAssessment) -> CheckIn:
        found = resources_for(self.settings.country, risk.categories)
        text = self.prompts.render("safety/elevated.md")
        self.journal.add_message(session.id, "system", text, risk_level="elevated")
        return CheckIn(text=text, resources=found, assessment=risk)

    def system_prompt(self) -> str:
        parts = [self.prompts.render("companion.md")]
        technique = self.flow.technique()
        if technique:
            parts.append(self.prompts.technique(technique))
        if self.flow.mood_before is not None:
            parts.append(f"At the start of this session the person rated their mood "
                         f"{self.flow.mood_before} out of 10.")
        last = self.journal.last_ended_session()
        if last and last.id != (self.session.id if self.session else None) and (
            last.summary or last.next_step
        ):
            step_line = f"They planned to: {last.next_step}" if last.next_step else ""
            parts.append(self.prompts.render("memory.md", summary=last.summary or "(no summary)",
                                             step_line=step_line))
        return "\n\n".join(parts)

    def _model_turns(self, session: Session) -> tuple[list[Turn], list[Message]]:
        """The messages the model sees: after the last fold, no crisis messages, no
        Haven notices; consecutive messages of one role merged (templates need turns to
        alternate)."""
        messages = self.journal.messages(session.id)
        if session.folded_until:
            ids = [m.id for m in messages]
            if session.folded_until in ids:
                messages = messages[ids.index(session.folded_until) + 1 :]
        usable = [
            m for m in messages
            if m.role in ("user", "assistant") and m.content.strip() and m.risk_level != "crisis"
        ]
        turns: list[Turn] = []
        owners: list[Message] = []
        for message in usable:
            if turns and turns[-1].role == message.role:
                turns[-1] = Turn(message.role, turns[-1].content + "\n\n" + message.content)
                owners[-1] = message
            else:
                turns.append(Turn(message.role, message.content))  # type: ignore[arg-type]
                owners.append(message)
        while turns and turns[0].role != "user":
            turns.pop(0)
            owners.pop(0)
        return turns, owners

    def _params(self) -> GenerationParams:
        g = self.settings.generation
        return GenerationParams(temperature=g.temperature, top_p=g.top_p,
                                repeat_penalty=g.repeat_penalty, max_tokens=g.max_tokens,
                                seed=g.seed)

    def _reply(self, session: Session) -> Iterator[Event]:
        assert self.engine is not None
        turns, owners = self._model_turns(session)
        if not turns or turns[-1].role != "user":
            return
        request = ChatRequest(
            system=self.system_prompt(),
            turns=tuple(turns),
            summary=session.running_summary,
            fold_instruction=self.prompts.render("fold_summary.md"),
            params=self._params(),
        )
        reply_msg = self.journal.add_message(session.id, "assistant", "", status="partial")
        yield ReplyStarted(reply_msg)
        stream = self.engine.chat(request)
        self._stream = stream
        guard = ReplyGuard()
        shown = ""
        last_save = time.monotonic()
        try:
            for chunk in stream:
                new = guard.feed(chunk)
                if guard.tripped:
                    stream.cancel()
                    break
                if new:
                    shown += new
                    yield Token(new)
                    if time.monotonic() - last_save > SAVE_EVERY_SECONDS:
                        self.journal.update_message(reply_msg.id, shown, "partial")
                        last_save = time.monotonic()
            if guard.tripped:
                for _ in stream:  # drain what was generated before the cancel took effect
                    pass
        finally:
            self._stream = None
        result = stream.wait()
        if not guard.tripped:
            rest = guard.finish()
            if rest:
                shown += rest
                yield Token(rest)
        if guard.tripped:
            found = resources_for(self.settings.country)
            safe = self.prompts.render("safety/unsafe_reply.md", emergency=found.emergency)
            self.journal.update_message(reply_msg.id, safe, "complete")
            log.warning("a model reply was replaced (%s)", ", ".join(guard.tripped.categories))
            yield ReplyReplaced(text=safe, resources=found, categories=guard.tripped.categories)
            yield ReplyDone(self._reload(reply_msg.id), "replaced")
            return
        # "crashed": the model process died mid-reply; what was shown is kept as interrupted
        status = {"complete": "complete", "cancelled": "cancelled",
                  "crashed": "partial"}.get(result.status, "cancelled")
        if result.status == "error" and not shown:
            self.journal.update_message(reply_msg.id, "", "cancelled")
        else:
            self.journal.update_message(reply_msg.id, shown, status)
        if result.folded and result.summary is not None:
            last_folded = owners[result.folded - 1]
            self.session = self.journal.update_session(
                session.id, running_summary=result.summary, folded_until=last_folded.id
            )
        yield ReplyDone(self._reload(reply_msg.id), result.status, error=result.error)

    def _reload(self, message_id: str) -> Message:
        assert self.session is not None
        return next(m for m in self.journal.messages(self.session.id) if m.id == message_id)

    def cancel(self) -> None:
        stream = self._stream
        if stream is not None:
            stream.cancel()  # type: ignore[attr-defined]

    # ---- closing ---------------------------------------------------------------------------

    def close_session(self, with_summary: bool = True) -> Session:
        """Write the closing summary and title (with a model), and move to the closing steps."""
        session = self._require_session()
        self.flow.begin_closing()
        fields: dict = {}
        if with_summary and self.engine is not None and self.engine.ready:
            turns, _ = self._model_turns(session)
            if turns:
                fields.update(self._summarise(turns, session))
        if fields:
            self.session = self.journal.update_session(session.id, **fields)
        return self.session or session

    def _summarise(self, turns: list[Turn], session: Session) -> dict:
        assert self.engine is not None
        context = list(turns)
        if session.running_summary:
            context.insert(0, Turn("user", f"(Earlier in this conversation: {session.running_summary})"))
            context = _alternate(context)
        transcript = context + [Turn("user", "Please write the summary now.")]
        transcript = _alternate(transcript)
        params = GenerationParams(temperature=0.3, max_tokens=200)
        try:
            summary = self.engine.complete(self.prompts.render("session_summary.md"), transcript,
                                           params).result().strip()
            title_turns = _alternate(context + [Turn("user", "Please give the title now.")])
            title = self.engine.complete(self.prompts.render("session_title.md"), title_turns,
                                         GenerationParams(temperature=0.3, max_tokens=16)).result()
        except Exception as exc:
            log.warning("closing summary failed: %s", type(exc).__name__)
            return {}
        title = title.strip().strip('"').splitlines()[0][:80] if title.strip() else None
        return {"summary": summary or None, "title": title}

    def draft_thought_record(self) -> ThoughtRecord:
        """A draft from this conversation for the person to edit (blocking: use a worker)."""
        session = self._require_session()
        if self.engine is None or not self.engine.ready:
            return ThoughtRecord(session_id=session.id)
        turns, _ = self._model_turns(session)
        instruction = self.prompts.render(
            "thought_record_draft.md", distortion_keys=", ".join(d.value for d in Distortion)
        )
        return draft_thought_record(self.engine, instruction, turns, session.id)

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


def _alternate(turns: list[Turn]) -> list[Turn]:
    out: list[Turn] = []
    for turn in turns:
        if out and out[-1].role == turn.role:
            out[-1] = Turn(turn.role, out[-1].content + "\n\n" + turn.content)
        else:
            out.append(turn)
    while out and out[0].role != "user":
        out.pop(0)
    return out
