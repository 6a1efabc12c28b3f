"""Generation in the model process: a chat (fitting the prompt to the context, folding
old turns into the summary, clipping an over-long message), folding ahead of time, and
side jobs (summaries, titles, drafts) that leave the conversation's cache in place.
:class:`Generation` is a part of :class:`app.llm.worker.Worker`.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from app.llm import budget
from app.llm.templates import TemplateError
from app.llm.types import ChatRequest, GenerationParams, Reply, Turn
from app.llm.worker_shared import (
    PREFILL_CHUNK,
    SAFETY_MARGIN,
    SUMMARY_TOKENS,
    URGENT,
    Cancelled,
    EngineError,
    Preempted,
    chat_request_from_json,
)

log = logging.getLogger("haven.model")


class Generation:
    """The worker's replies and side jobs (a part of :class:`~app.llm.worker.Worker`)."""

    def _op_chat(self, request_id: int, message: dict) -> dict:
        request = chat_request_from_json(message["request"])
        reply = Reply()
        started = time.perf_counter()
        try:
            self._require_model()
            if self._aborted():
                raise Cancelled()
            tokens, stop, summary, folded, fold_s = self._fit(request)
            reply.summary, reply.folded, reply.fold_seconds = summary, folded, fold_s
            reply.prompt_tokens = len(tokens)
            self._restore_shared(request, build=False)  # Enter before any prefill: from disk
            reused, evaluated, seconds = self._evaluate(tokens)
            reply.evaluated_prompt_tokens, reply.prompt_seconds = evaluated, seconds
            self._generate(request_id, tokens, stop, request.params, reply, started)
        except Cancelled:
            reply.status = "cancelled"
        except (EngineError, TemplateError) as exc:
            reply.status, reply.error = "error", str(exc)
        except Exception as exc:  # llama.cpp errors must never end the process
            if self._aborted():
                reply.status = "cancelled"
            else:
                log.error("generation failed: %s\n%s", type(exc).__name__,
                          "".join(traceback.format_tb(exc.__traceback__)).rstrip())
                reply.status = "error"
                reply.error = f"the model stopped unexpectedly ({type(exc).__name__})"
        return asdict(reply)

    def _limit(self, params: GenerationParams) -> int:
        limit = self._n_ctx - params.max_tokens - SAFETY_MARGIN
        if limit < 64:
            raise EngineError("the context window is too small for the reply length")
        return limit

    def _fit(self, request: ChatRequest):
        """Return prompt tokens that fit n_ctx with room for the reply, folding if needed."""
        limit = self._limit(request.params)
        turns = list(request.turns)
        summary = request.summary
        system = budget.compose_system(request.system, summary)
        tokens, stop = self._prompt_tokens(system, turns)
        if len(tokens) <= limit:
            return tokens, stop, None, 0, 0.0

        started = time.perf_counter()
        fold = self._turns_to_fold(request.system, turns, limit)
        if fold > 0:
            summary = self._fold(summary, turns[:fold], request.fold_instruction)
            turns = turns[fold:]
        system = budget.compose_system(request.system, summary)
        tokens, stop = self._clip_to_fit(system, turns, limit)
        return tokens, stop, (summary if fold > 0 else None), fold, time.perf_counter() - started

    def _clip_to_fit(self, system: str, turns: list[Turn], limit: int):
        """Prompt tokens for ``system`` and ``turns`` within ``limit``: a message too long
        for the context is clipped in the middle (the model sees its start and end), the
        longest first, until the prompt fits. ``turns`` is changed in place."""
        while True:
            tokens, stop = self._prompt_tokens(system, turns)
            if len(tokens) <= limit:
                return tokens, stop
            longest = max(range(len(turns)), key=lambda i: len(turns[i].content))
            content_tokens = self._tokenize(turns[longest].content)
            keep = max(len(content_tokens) - (len(tokens) - limit) - 64, 32)
            if keep >= len(content_tokens):
                raise EngineError("the conversation cannot be made to fit the context window")
            clipped = budget.clip_middle(turns[longest].content, content_tokens, keep,
                                         self._detokenize)
            turns[longest] = Turn(turns[longest].role, clipped)

    def _turns_to_fold(self, system: str, turns: list[Turn], limit: int) -> int:
        fixed = len(self._prompt_tokens(system, [])[0]) + 16
        costs = [len(self._tokenize(t.content)) + 8 for t in turns]
        return budget.turns_to_fold([t.role for t in turns], costs, fixed, limit, SUMMARY_TOKENS)

    def _fold(self, summary: str | None, turns: list[Turn], instruction: str,
              preempt: Callable[[], bool] | None = None) -> str:
        """Fold ``turns`` into the running summary, in chunks that fit the context."""
        room = self._n_ctx - SUMMARY_TOKENS - 256 - len(self._tokenize(instruction))
        chunk: list[Turn] = []
        chunk_cost = 0
        for turn in turns:
            cost = len(self._tokenize(turn.content)) + 8
            if cost > room // 2:
                tokens = self._tokenize(turn.content)
                turn = Turn(turn.role, budget.clip_middle(turn.content, tokens, room // 2,
                                                          self._detokenize))
                cost = room // 2 + 16
            if chunk and chunk_cost + cost > room:
                summary = self._summarise_chunk(summary, chunk, instruction, preempt)
                chunk, chunk_cost = [], 0
            chunk.append(turn)
            chunk_cost += cost
        if chunk:
            summary = self._summarise_chunk(summary, chunk, instruction, preempt)
        return summary or ""

    def _summarise_chunk(self, summary: str | None, turns: list[Turn], instruction: str,
                         preempt: Callable[[], bool] | None = None) -> str:
        body = ""
        if summary:
            body += f"Summary so far:\n{summary.strip()}\n\n"
        body += "Conversation to add:\n" + budget.fold_transcript(turns)
        tokens, stop = self._prompt_tokens(instruction, [Turn("user", body)])
        params = GenerationParams(temperature=0.3, top_p=0.9, repeat_penalty=1.1,
                                  max_tokens=SUMMARY_TOKENS, seed=-1)
        text = self._side_job(tokens, stop, params, preempt=preempt).text
        return text.strip() or (summary or "")

    def _side_job(self, tokens: list[int], stop, params: GenerationParams, grammar=None,
                  on_piece: Callable[[str], None] | None = None,
                  preempt: Callable[[], bool] | None = None) -> Reply:
        """Generate from ``tokens`` with the conversation's cache kept aside (and reused as
        far as ``tokens`` starts with it)."""
        reply = Reply(prompt_tokens=len(tokens))
        started = time.perf_counter()
        parts: list[str] = []
        with self._keeping_conversation(tokens, params.max_tokens) as how:
            reply.kept = how
            _, reply.evaluated_prompt_tokens, reply.prompt_seconds = self._evaluate(
                tokens, preempt=None if preempt is None else lambda _worked: preempt(),
                chunk=None if preempt is None else PREFILL_CHUNK)
            try:
                for text in self._token_stream(tokens, stop, params, grammar, preempt):
                    if reply.time_to_first_token is None:
                        reply.time_to_first_token = time.perf_counter() - started
                    parts.append(text)
                    if on_piece is not None:
                        on_piece(text)
            finally:
                reply.text = "".join(parts)
        return reply

    def _token_stream(self, tokens: list[int], stop, params: GenerationParams, grammar=None,
                      preempt: Callable[[], bool] | None = None,
                      on_first_token: Callable[[], None] | None = None):
        """The reply's text as it is generated. ``on_first_token`` is called once, as soon as
        the model has sampled its first token, which may make no text yet (half a UTF-8
        character, the start of a possible stop string)."""
        kwargs: dict[str, Any] = dict(
            prompt=tokens,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            repeat_penalty=params.repeat_penalty,
            stop=list(stop) or None,
            stream=True,
        )
        if params.seed >= 0:
            kwargs["seed"] = params.seed
        if grammar is not None:
            kwargs["grammar"] = grammar
        if on_first_token is not None:
            from llama_cpp import StoppingCriteriaList

            fired = False

            def first_token(_ids, _logits) -> bool:  # a stopping criterion that never stops
                nonlocal fired
                if not fired:
                    fired = True
                    on_first_token()
                return False

            kwargs["stopping_criteria"] = StoppingCriteriaList([first_token])
        generator = self._llm.create_completion(**kwargs)
        try:
            for chunk in generator:
                self._stop_if_asked()
                if preempt is not None and preempt():
                    raise Preempted()
                text = chunk["choices"][0]["text"]
                if text:
                    yield text
        except RuntimeError:  # llama_decode stopped by our abort callback, or a real error
            self._stop_if_asked()
            raise
        finally:
            generator.close()

    def _generate(self, request_id: int, tokens, stop, params, reply: Reply,
                  started: float) -> None:
        import llama_cpp

        ctx = self._llm._ctx.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        parts: list[str] = []
        try:
            def first_token() -> None:
                self.emit({"id": request_id, "ev": "token"})

            for text in self._token_stream(tokens, stop, params, on_first_token=first_token):
                if reply.time_to_first_token is None:
                    reply.time_to_first_token = time.perf_counter() - started
                parts.append(text)
                self.emit({"id": request_id, "ev": "piece", "text": text})
        finally:
            reply.text = "".join(parts)
            reply.generated_tokens = int(llama_cpp.llama_perf_context(ctx).n_eval)

    def _op_fold(self, request_id: int, message: dict) -> dict:
        """Fold the oldest turns now if the next message would bring the context near its
        limit; then prefill the new prompt. Stops (changing nothing) when a chat or a side
        job is waiting: a fold never stands between Enter and the first token."""
        self._require_model()
        request = chat_request_from_json(message["request"])
        headroom = int(message.get("headroom", 0))
        limit = self._limit(request.params) - headroom
        system = budget.compose_system(request.system, request.summary)
        turns = list(request.turns)
        tokens = self._prefix_tokens(system, turns, "") or []
        if len(tokens) <= limit:  # it fits: have the next message's prefix ready instead
            prefill = self._prefill(tokens) if tokens else None
            return {"status": "not needed", "prompt_tokens": len(tokens), "prefill": prefill}
        started = time.perf_counter()
        # fold as the next chat would, with its message still to come (a user turn)
        fold = min(self._turns_to_fold(request.system, [*turns, Turn("user", "")], limit),
                   len(turns))
        if fold == 0:
            prefill = self._prefill(tokens) if tokens else None
            return {"status": "not needed", "prompt_tokens": len(tokens), "prefill": prefill}

        def urgent() -> bool:
            return bool(self.waiting_ops() & {"chat", "complete", "shutdown", "load", "unload"})

        try:
            with self._yielding(URGENT):
                summary = self._fold(request.summary, turns[:fold], request.fold_instruction,
                                     preempt=urgent)
        except Preempted:
            return {"status": "preempted", "prompt_tokens": len(tokens)}
        seconds = time.perf_counter() - started
        kept = turns[fold:]
        prefix = self._prefix_tokens(budget.compose_system(request.system, summary), kept, "")
        prefill = self._prefill(prefix) if prefix else None
        return {"status": "done", "folded": fold, "summary": summary, "seconds": seconds,
                "prompt_tokens": len(prefix or []), "prefill": prefill}

    def _op_complete(self, request_id: int, message: dict) -> dict:
        self._require_model()
        system = message["system"]
        turns = [Turn(t["role"], t["content"]) for t in message["turns"]]
        params = GenerationParams(**message["params"])
        json_schema = message.get("json_schema")
        grammar = None
        if json_schema is not None:
            from llama_cpp import LlamaGrammar

            grammar = LlamaGrammar.from_json_schema(json.dumps(json_schema), verbose=False)
        limit = self._limit(params)
        tokens, stop = self._prompt_tokens(system, turns)
        while len(tokens) > limit and len(turns) > 1:
            turns = turns[1:]
            tokens, stop = self._prompt_tokens(system, turns)
        if len(tokens) > limit:
            tokens, stop = self._clip_to_fit(system, turns, limit)
        on_piece = None
        if message.get("stream"):
            def on_piece(text: str) -> None:
                self.emit({"id": request_id, "ev": "piece", "text": text})
        reply = self._side_job(tokens, stop, params, grammar, on_piece=on_piece)
        return asdict(reply)

