"""The model's replies, for the companion: the prompt (system prompt, turns, summary),
prefill before Enter and folding ahead (issue 13), streaming through the reply check with
the text committed as ``partial`` on the way, and how a reply ends.
:class:`Replies` is a part of :class:`app.conversation.companion.Companion`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from app.conversation.events import Event, NoModel, Recalled, ReplyDone, ReplyReplaced, ReplyStarted, Token
from app.conversation.flow import SessionFlow
from app.conversation.safety_steps import _fill
from app.insights.recall import for_reply as recall_for_reply
from app.llm import ChatRequest, GenerationParams, Job, Turn
from app.safety import assess_risk, resources_for
from app.safety.output_check import ReplyGuard
from app.safety.resources import format_resources
from app.safety.screener import CHOICES
from app.store.records import Message, Session

log = logging.getLogger("haven.companion")

SAVE_EVERY_SECONDS = 0.75


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


class Replies:
    """The companion's replies (a part of it: they use its journal, engine, settings,
    prompts, session and flow)."""

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

    def _next_request(self, session: Session) -> ChatRequest:
        turns, _ = self._model_turns(session)
        system = self.system_prompt(self.flow.after_message())
        return ChatRequest(system=system, turns=tuple(turns), summary=session.running_summary,
                           fold_instruction=self.prompts.render("fold_summary.md"),
                           params=self._params(), shared_prefix=self._shared_prefix(system))

    def _shared_prefix(self, system: str) -> int:
        """How much of ``system`` is Haven's own prompt, the same for everyone and never a
        person's words: the model may keep its evaluation on disk (app.llm.prompt_cache)."""
        own = self.prompts.render("companion.md")
        return len(own) if system.startswith(own) else 0

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
        system = self.system_prompt()
        request = ChatRequest(
            system=system,
            turns=tuple(turns),
            summary=session.running_summary,
            fold_instruction=self.prompts.render("fold_summary.md"),
            params=self._params(),
            shared_prefix=self._shared_prefix(system),
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
                    services=format_resources(found, markdown=True)))
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
