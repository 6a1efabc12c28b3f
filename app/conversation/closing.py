"""The end of a session, for the companion: the closing summary and title (written by the
model off the service's queue), the between-session step, the closing mood, leaving, and
the thought-record draft. :class:`Closing` is a part of
:class:`app.conversation.companion.Companion`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.cbt import Distortion
from app.conversation.replies import alternate
from app.conversation.thought_records import draft_thought_record
from app.conversation.titles import SUMMARY_REQUEST, TITLE_REQUEST, model_summary, session_title
from app.llm import GenerationParams, Turn
from app.store.records import Session, ThoughtRecord, now_utc

log = logging.getLogger("haven.companion")


@dataclass(frozen=True)
class ClosingWork:
    """What a closing summary is written from (a copy: the model works on it off-thread)."""

    session: Session
    turns: list[Turn]


class Closing:
    """The companion's closing steps (a part of it: they use its journal, engine, prompts,
    session and flow)."""

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
            transcript, _ = alternate(context + [Turn("user", SUMMARY_REQUEST)])
            summary = engine.complete(self.prompts.render("session_summary.md"), transcript,
                                      params).result().strip()
            title_turns, _ = alternate(context + [Turn("user", TITLE_REQUEST)])
            title = engine.complete(self.prompts.render("session_title.md"), title_turns,
                                    GenerationParams(temperature=0.3, max_tokens=16)).result()
        except Exception as exc:
            log.warning("closing summary failed: %s", type(exc).__name__)
            return {}
        prompts = [*self.prompts.texts(), TITLE_REQUEST, SUMMARY_REQUEST]
        return {"summary": model_summary(summary, prompts),
                "title": session_title(title, work.session.started, prompts)}

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
