"""The model process: owns the ``Llama`` and runs every request on its main thread.

Started by :class:`app.llm.engine.Engine` as ``python -m app.llm.worker IN_FD OUT_FD`` with a
scrubbed environment (no passphrases), stdin on /dev/null and stdout/stderr on a pipe that
Haven copies into its log. It knows nothing of the journal or the settings: what it needs
arrives in the ``load`` request. The protocol is in :mod:`app.llm.protocol`.

A native crash here (a llama.cpp bug, a hostile model file, the OOM killer) ends this
process only; Haven notices the closed pipe, keeps the partial reply and restarts it.
"""

from __future__ import annotations

import ctypes
import faulthandler
import json
import logging
import os
import queue
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from app.llm import budget, buffers, native_log, protocol
from app.llm.templates import ChatTemplate, TemplateError
from app.llm.types import ChatRequest, GenerationParams, Reply, Turn
from app.modelhub.gguf import GGUFError, inspect_gguf

log = logging.getLogger("haven.model")

SUMMARY_TOKENS = 160  # the fold prompt asks for at most 120 words
SAFETY_MARGIN = 8
# A prefill evaluates this many tokens at a time and looks for waiting requests in between
# (a newer prefill continues its work after the chunk). A reply that comes in mid-chunk
# stops the chunk at once (llama.cpp's abort callback, between two graph nodes) and
# evaluates those tokens itself, so Enter never waits for a chunk, however loaded the
# machine; the chunk size only bounds the work given up (16 tokens is about 0.25 s on the
# Llama-3.2-3B shape with 2 threads). Chunks compute no logits. A long prefill (the system
# prompt at load, the history after a reply) doubles its chunks up to PREFILL_CHUNK_MAX:
# each chunk is one llama.cpp graph, and on a busy machine a graph's fixed cost (its two
# threads meeting at every node) is seconds, not milliseconds; typing adds a few tokens a
# time and never reaches the larger chunks. See README "Performance".
PREFILL_CHUNK = 16
PREFILL_CHUNK_MAX = 64
# What a prefill, or a fold ahead of time, gives way to in the middle of a chunk.
URGENT = frozenset({"chat", "complete", "load", "unload"})
# The conversation can wait in a second KV sequence while a side job runs (no copy), when
# the context has room for both; otherwise its KV state is copied out and back, in memory.
SEQUENCES = 2
CONVERSATION, PARKED = 0, 1
DRAFT_MARK = "\u27eahaven-draft\u27eb"  # cut point in a rendered prompt (never sent to the model)


class Preempted(Exception):
    """A preemptible job stopped because another request is waiting."""


class EngineError(Exception):
    """One clear line about what went wrong with the model (sent to Haven as is)."""


class Cancelled(Exception):
    pass


class Worker:
    def __init__(self, out: Connection) -> None:
        self._out = out
        self._send_lock = threading.Lock()
        self._jobs: queue.Queue = queue.Queue()
        self._llm: Any = None
        self._template: ChatTemplate | None = None
        self._abort_callback = None
        self._n_ctx = 0
        self._state_lock = threading.Lock()
        self._current: int | None = None
        self._cancelled: set[int] = set()
        self._abort = threading.Event()
        self._preempt = threading.Event()  # a request the current job yields to has come
        self._yields_to: frozenset[str] = frozenset()  # ops the current job stops mid-chunk for
        self._closing = False

    # ---- messages ------------------------------------------------------------------------

    def emit(self, message: dict[str, Any]) -> None:
        with self._send_lock:
            protocol.send(self._out, message)

    def read(self, inbound: Connection) -> None:
        """The reader thread: cancels at once, everything else into the queue."""
        while True:
            try:
                message = protocol.receive(inbound)
            except (EOFError, OSError, ValueError):
                # Haven is gone (or spoke nonsense): stop whatever runs and leave.
                self._closing = True
                self._abort.set()
                self._jobs.put(None)
                return
            op = message.get("op")
            if op == "cancel":
                self.cancel(message.get("id"))
            elif op == "shutdown":
                self._closing = True
                self._abort.set()
                self._jobs.put(None)
            else:
                self.arrive(message)

    def arrive(self, message: dict[str, Any]) -> None:
        """A request to queue; if the job running gives way to it, it stops now, in the
        middle of its chunk (the abort callback sees ``_preempt``)."""
        self._jobs.put(message)
        with self._state_lock:
            if message.get("op") in self._yields_to:
                self._preempt.set()

    def cancel(self, request_id: int | None) -> None:
        with self._state_lock:
            if self._current is not None and request_id in (None, self._current):
                self._abort.set()
            if request_id is not None:
                self._cancelled.add(request_id)

    def has_waiting(self) -> bool:
        """Another request is queued (a preemptible job should yield; see protocol)."""
        return not self._jobs.empty()

    def waiting_ops(self) -> set[str]:
        """The ops of the requests waiting in the queue ("shutdown" for the end)."""
        with self._jobs.mutex:
            return {m.get("op", "") if m is not None else "shutdown" for m in self._jobs.queue}

    def _aborted(self) -> bool:
        return self._abort.is_set()

    def _stop_now(self) -> bool:
        """What llama.cpp's abort callback asks between graph nodes."""
        return self._abort.is_set() or self._preempt.is_set()

    @contextmanager
    def _yielding(self, ops: frozenset[str]) -> Iterator[None]:
        """While this runs, a request for one of ``ops`` stops the current chunk at once
        (:class:`Preempted`); one already waiting stops it before it starts."""
        with self._state_lock:
            self._yields_to = ops
            if self.waiting_ops() & ops:
                self._preempt.set()
        try:
            yield
        finally:
            with self._state_lock:
                self._yields_to = frozenset()

    def run(self) -> None:
        self.emit({"ev": "hello", "pid": os.getpid()})
        while True:
            message = self._jobs.get()
            if message is None:
                break
            self._handle(message)
        self._unload()

    def _handle(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        op = message.get("op")
        handler = getattr(self, f"_op_{op}", None)
        with self._state_lock:
            self._current = request_id
            self._abort.clear()
            self._preempt.clear()
            self._yields_to = frozenset()
            if request_id in self._cancelled or self._closing:  # closing: finish nothing more
                self._cancelled.discard(request_id)
                self._abort.set()
        try:
            if handler is None:
                raise EngineError(f"unknown request {op!r}")
            value = handler(request_id, message)
            self.emit({"id": request_id, "ev": "result", "value": value})
        except (Cancelled, Preempted):
            self.emit({"id": request_id, "ev": "error", "kind": "cancelled", "message": "cancelled"})
        except (EngineError, TemplateError) as exc:
            self.emit({"id": request_id, "ev": "error", "kind": "engine", "message": str(exc)})
        except Exception as exc:  # never user text in the log: the type and the frames only
            log.error("request %s failed: %s\n%s", op, type(exc).__name__,
                      "".join(traceback.format_tb(exc.__traceback__)).rstrip())
            self.emit({"id": request_id, "ev": "error", "kind": "internal",
                       "message": f"the model stopped unexpectedly ({type(exc).__name__})"})
        finally:
            with self._state_lock:
                self._current = None
                self._abort.clear()
                self._preempt.clear()
                self._yields_to = frozenset()

    # ---- loading -----------------------------------------------------------------------

    def _op_load(self, request_id: int, message: dict) -> dict:
        spec = message["spec"]
        path = Path(spec["path"])
        try:
            info = inspect_gguf(path)
        except GGUFError as exc:
            raise EngineError(str(exc)) from exc
        from llama_cpp import Llama

        cpu = buffers.detect()
        plan = buffers.choose(spec.get("repack", "auto"), cpu)
        patterns = buffers.repack_patterns(buffers.read_tensors(path), cpu) if plan.pin_repack else []
        self.emit({"id": request_id, "ev": "plan", "name": plan.name, "pin_repack": plan.pin_repack})
        log.info("weight buffers: %s (%d repack patterns)", plan.describe(), len(patterns))
        self._unload()
        n_ctx = int(spec["n_ctx"])
        if info.context_length:
            n_ctx = min(n_ctx, info.context_length)
        started = time.perf_counter()
        last = [-5]

        def progress(fraction: float) -> bool:
            percent = int(fraction * 100)
            if percent >= last[0] + 5 or percent == 100:
                last[0] = percent
                self.emit({"id": request_id, "ev": "progress", "percent": percent})
            return not (self._aborted() or self._closing)

        try:
            with _model_params(progress, plan, patterns):
                llm = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=int(spec["threads"]),
                    n_threads_batch=int(spec["threads"]),
                    n_batch=512,
                    verbose=True,  # its prints go to the log with everything else here
                )
        except (ValueError, RuntimeError, OSError) as exc:
            if self._aborted():
                raise Cancelled() from None
            log.warning("loading failed: %s", type(exc).__name__)
            raise EngineError(
                f"the model file {path.name} could not be loaded (is it damaged?)") from None
        try:
            self._template = ChatTemplate.resolve(
                llm.metadata.get("tokenizer.chat_template"),
                spec.get("chat_format"),
                eos=_token_text(llm, llm.token_eos()),
                bos=_token_text(llm, llm.token_bos()),
                eos_id=llm.token_eos(),
            )
        except TemplateError as exc:
            llm.close()
            log.warning("chat template refused: %s", type(exc).__name__)
            raise
        self._install_abort(llm)
        self._llm = llm
        self._n_ctx = n_ctx
        log.info("model loaded in %.2fs (n_ctx=%d, threads=%s, template=%s)",
                 time.perf_counter() - started, n_ctx, spec["threads"], self._template.source)
        return {"n_ctx": n_ctx, "buffers": plan.describe(), "buffer_plan": plan.name,
                "amx": list(cpu.amx), "template": self._template.source}

    def _install_abort(self, llm) -> None:
        import llama_cpp

        @llama_cpp.ggml_abort_callback
        def _abort(_data: ctypes.c_void_p) -> bool:
            return self._stop_now()

        self._abort_callback = _abort  # keep alive as long as the context
        llama_cpp.llama_set_abort_callback(llm._ctx.ctx, _abort, ctypes.c_void_p(0))

    def _unload(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
            self._template = None

    def _op_unload(self, request_id: int, message: dict) -> None:
        self._unload()

    def _require_model(self) -> Any:
        if self._llm is None:
            raise EngineError("no model is loaded yet")
        return self._llm

    # ---- tokens ------------------------------------------------------------------------

    def _tokenize(self, text: str, add_bos: bool = False) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def _detokenize(self, tokens: list[int]) -> str:
        return self._llm.detokenize(tokens).decode("utf-8", errors="ignore")

    def _op_count_tokens(self, request_id: int, message: dict) -> int:
        self._require_model()
        return len(self._tokenize(message["text"]))

    def _prompt_tokens(self, system: str, turns: list[Turn]) -> tuple[list[int], tuple[str, ...]]:
        assert self._template is not None
        rendered = self._template.render(system, turns)
        tokens = self._tokenize(rendered.prompt, add_bos=not rendered.includes_bos)
        return tokens, rendered.stop

    def _prefix_tokens(self, system: str, turns: Sequence[Turn], draft: str) -> list[int] | None:
        """The tokens every later prompt for (``system``, ``turns`` + a user message starting
        with ``draft``) begins with: the rendered prompt up to the draft's last whole word,
        less one token. None if the template hides where the newest message starts."""
        assert self._template is not None
        stable = stable_draft(draft)
        history = list(turns)
        if history and history[-1].role == "user":  # consecutive messages are sent as one
            history[-1] = Turn("user", f"{history[-1].content}\n\n{stable}{DRAFT_MARK}")
        else:
            history.append(Turn("user", stable + DRAFT_MARK))
        rendered = self._template.render(system, history)
        at = rendered.prompt.find(DRAFT_MARK)
        if at < 0:
            return None
        tokens = self._tokenize(rendered.prompt[:at], add_bos=not rendered.includes_bos)
        return tokens[:-1]  # the last token may merge with what follows

    # ---- the KV cache ------------------------------------------------------------------

    def _memory(self):
        import llama_cpp

        return llama_cpp.llama_get_memory(self._llm._ctx.ctx)

    def _forget_from(self, position: int) -> int:
        """Drop the conversation's cached tokens from ``position`` on; returns what is kept
        (0 if llama.cpp cannot cut this cache there)."""
        import llama_cpp

        llm = self._llm
        memory = self._memory()
        if position > 0 and not llama_cpp.llama_memory_seq_rm(memory, CONVERSATION, position, -1):
            position = 0
        if position > 0 and llama_cpp.llama_memory_seq_pos_min(memory, CONVERSATION) > 0:
            position = 0  # a sliding-window cache that has dropped its start: start over
        if position == 0:
            llama_cpp.llama_memory_seq_rm(memory, CONVERSATION, -1, -1)
        llm.n_tokens = position
        return position

    def _evaluate(self, tokens: list[int], preempt: Callable[[bool], bool] | None = None,
                  chunk: int | None = None, for_reply: bool = True) -> tuple[int, int, float]:
        """Bring the KV cache to ``tokens``: reuse the longest cached prefix and evaluate the
        rest, in chunks of ``chunk`` (llama.cpp's batch by default). Returns (reused,
        evaluated, seconds). ``for_reply``: a reply follows, so the cache must end exactly at
        ``tokens`` and hold the last token's logits (it is evaluated again if a side job or a
        prefill left the cache there). ``preempt(worked)`` is asked before each chunk
        (``worked``: a chunk has been done); when it says so, :class:`Preempted` is raised
        and what was evaluated stays cached. A cancel aborts llama.cpp mid-chunk, and so does
        a request the job yields to (see :meth:`_yielding`): that chunk is given up whole
        (llama.cpp drops its half-made cache entries), the chunks before it stay. Only the
        last chunk of a prompt a reply follows computes logits.
        """
        llm = self._llm
        cached = llm.n_tokens
        same = _common_prefix(llm.input_ids[:cached], tokens)
        stale = getattr(llm, "_requires_eval", False)
        if same == len(tokens) and (not for_reply or (same == cached and not stale)):
            return same, 0, 0.0
        if same >= len(tokens):
            same = len(tokens) - 1
        if same < cached:
            same = self._forget_from(same)
        started = time.perf_counter()
        step = max(1, min(chunk or llm.n_batch, llm.n_batch))
        position = same
        try:
            while position < len(tokens):
                if self._aborted():
                    raise Cancelled()
                if self._preempt.is_set() or (preempt is not None and preempt(position > same)):
                    raise Preempted()
                part = tokens[position:position + step]
                self._eval_chunk(part, logits=for_reply and position + len(part) >= len(tokens))
                position = llm.n_tokens
                if chunk:  # preemptible (a prefill, a fold): longer chunks while nothing waits
                    step = min(step * 2, PREFILL_CHUNK_MAX, llm.n_batch)
        except RuntimeError:
            if self._aborted():  # llama_decode aborted by our callback
                raise Cancelled() from None
            if self._preempt.is_set():
                raise Preempted() from None
            raise
        return same, len(tokens) - same, time.perf_counter() - started

    def _eval_chunk(self, part: list[int], logits: bool) -> None:
        """Evaluate ``part`` after the cached tokens. Without ``logits`` no token's output
        row is computed: a prefill never samples, and the vocabulary projection of a
        chunk's last token (128k rows on Llama 3) costs as much as several tokens."""
        llm = self._llm
        if logits:
            llm.eval(part)
            return
        llm._ctx.kv_cache_seq_rm(CONVERSATION, llm.n_tokens, -1)  # as Llama.eval does
        llm._batch.set_batch(batch=part, n_past=llm.n_tokens, logits_all=False)
        llm._batch.batch.logits[len(part) - 1] = False
        llm._ctx.decode(llm._batch)
        llm.input_ids[llm.n_tokens:llm.n_tokens + len(part)] = part
        llm.n_tokens += len(part)
        llm._requires_eval = True  # no logits for the last token: a reply evaluates it again

    @contextmanager
    def _keeping_conversation(self, tokens: list[int], room: int) -> Iterator[str]:
        """Run a side job (a draft, a summary, a fold) without costing the conversation its
        cached prompt; yields how it was kept (see :class:`Reply`.kept)."""
        import llama_cpp

        llm = self._llm
        kept = llm.n_tokens
        ids = llm.input_ids[:kept].copy()
        shared = _common_prefix(ids, tokens)
        memory = self._memory()
        ctx = llm._ctx.ctx
        saved = None
        if kept == 0:
            how = ""
        elif shared >= kept:
            how = "extended"
        elif kept + len(tokens) - shared + room <= self._n_ctx:
            how = "sequence"
            llama_cpp.llama_memory_seq_rm(memory, PARKED, -1, -1)
            llama_cpp.llama_memory_seq_cp(memory, CONVERSATION, PARKED, -1, -1)
        else:
            how = "copy"
            size = llama_cpp.llama_state_seq_get_size(ctx, CONVERSATION)
            saved = (ctypes.c_uint8 * size)()
            size = llama_cpp.llama_state_seq_get_data(ctx, saved, size, CONVERSATION)
        try:
            yield how
        finally:
            if how == "extended":
                llama_cpp.llama_memory_seq_rm(memory, CONVERSATION, kept, -1)
            elif how == "sequence":
                llama_cpp.llama_memory_seq_rm(memory, CONVERSATION, -1, -1)
                llama_cpp.llama_memory_seq_cp(memory, PARKED, CONVERSATION, -1, -1)
                llama_cpp.llama_memory_seq_rm(memory, PARKED, -1, -1)
            elif how == "copy":
                llama_cpp.llama_memory_seq_rm(memory, CONVERSATION, -1, -1)
                if not llama_cpp.llama_state_seq_set_data(ctx, saved, size, CONVERSATION):
                    log.warning("could not restore the conversation's KV state")
                    kept = 0
                del saved
            if how:
                llm.input_ids[:kept] = ids[:kept]
                llm.n_tokens = kept
                if hasattr(llm, "_requires_eval"):
                    llm._requires_eval = True  # the logits are the side job's

    # ---- chat --------------------------------------------------------------------------

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
        # A single message too long for the context: the model sees its start and end.
        while True:
            system = budget.compose_system(request.system, summary)
            tokens, stop = self._prompt_tokens(system, turns)
            if len(tokens) <= limit:
                break
            longest = max(range(len(turns)), key=lambda i: len(turns[i].content))
            content_tokens = self._tokenize(turns[longest].content)
            keep = max(len(content_tokens) - (len(tokens) - limit) - 64, 32)
            if keep >= len(content_tokens):
                raise EngineError("the conversation cannot be made to fit the context window")
            clipped = budget.clip_middle(turns[longest].content, content_tokens, keep,
                                         self._detokenize)
            turns[longest] = Turn(turns[longest].role, clipped)
        return tokens, stop, (summary if fold > 0 else None), fold, time.perf_counter() - started

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
                      preempt: Callable[[], bool] | None = None):
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
        generator = self._llm.create_completion(**kwargs)
        try:
            for chunk in generator:
                if self._aborted():
                    raise Cancelled()
                if self._preempt.is_set() or (preempt is not None and preempt()):
                    raise Preempted()
                text = chunk["choices"][0]["text"]
                if text:
                    yield text
        except RuntimeError:
            if self._aborted():  # llama_decode aborted by our callback
                raise Cancelled() from None
            if self._preempt.is_set():
                raise Preempted() from None
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
            for text in self._token_stream(tokens, stop, params):
                if reply.time_to_first_token is None:
                    reply.time_to_first_token = time.perf_counter() - started
                parts.append(text)
                self.emit({"id": request_id, "ev": "piece", "text": text})
        finally:
            reply.text = "".join(parts)
            reply.generated_tokens = int(llama_cpp.llama_perf_context(ctx).n_eval)

    # ---- prefill: the prompt before Enter ------------------------------------------------

    def _op_prefill(self, request_id: int, message: dict) -> dict:
        """Evaluate what the next chat's prompt starts with, in preemptible chunks."""
        self._require_model()
        if self._aborted():
            raise Cancelled()
        request = chat_request_from_json(message["request"])
        if "prefill" in self.waiting_ops():  # a newer draft is already waiting
            return {"status": "superseded"}
        system = budget.compose_system(request.system, request.summary)
        tokens = self._prefix_tokens(system, request.turns, str(message.get("draft") or ""))
        if not tokens:
            return {"status": "done"}
        if len(tokens) > self._limit(request.params):
            return {"status": "too long", "prompt_tokens": len(tokens)}
        return self._prefill(tokens)

    def _prefill(self, tokens: list[int]) -> dict:
        figures = {"prompt_tokens": len(tokens)}
        started = time.perf_counter()
        before = self._llm.n_tokens
        reused = _common_prefix(self._llm.input_ids[:before], tokens)
        def preempt(worked: bool) -> bool:
            # anything but a newer prefill goes first at once; a newer prefill (which
            # continues this one's work) after at least one chunk, so typing never starves it
            waiting = self.waiting_ops()
            return bool(waiting - {"prefill"}) or (worked and bool(waiting))

        try:
            with self._yielding(URGENT):
                reused, evaluated, _ = self._evaluate(tokens, preempt=preempt,
                                                      chunk=PREFILL_CHUNK, for_reply=False)
            status = "done"
        except Preempted:
            evaluated = max(self._llm.n_tokens - reused, 0)
            status = "preempted"
        figures.update(status=status, evaluated_tokens=evaluated, reused_tokens=reused,
                       seconds=time.perf_counter() - started)
        return figures

    # ---- folding ahead of time -----------------------------------------------------------

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

    # ---- one-shot completions (summaries, titles, structured drafts) --------------------

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
            content_tokens = self._tokenize(turns[-1].content)
            keep = max(len(content_tokens) - (len(tokens) - limit) - 64, 32)
            turns[-1] = Turn(turns[-1].role, budget.clip_middle(turns[-1].content, content_tokens,
                                                                keep, self._detokenize))
            tokens, stop = self._prompt_tokens(system, turns)
        on_piece = None
        if message.get("stream"):
            def on_piece(text: str) -> None:
                self.emit({"id": request_id, "ev": "piece", "text": text})
        reply = self._side_job(tokens, stop, params, grammar, on_piece=on_piece)
        return asdict(reply)

    # ---- figures for `haven bench` -------------------------------------------------------

    def _op_info(self, request_id: int, message: dict) -> dict:
        llm = self._require_model()
        return {k: v for k, v in llm.metadata.items() if k != "tokenizer.chat_template"}

    def _op_perf(self, request_id: int, message: dict) -> dict:
        import llama_cpp

        perf = llama_cpp.llama_perf_context(self._require_model()._ctx.ctx)
        return {"n_p_eval": int(perf.n_p_eval), "t_p_eval_ms": float(perf.t_p_eval_ms),
                "n_eval": int(perf.n_eval), "t_eval_ms": float(perf.t_eval_ms)}

    def _op_raw_decode(self, request_id: int, message: dict) -> dict:
        """Plain llama-cpp-python streaming in this process: the baseline for decode speed."""
        llm = self._require_model()
        first = None
        count = 0
        for _ in llm.create_completion(message["prompt"], max_tokens=int(message["max_tokens"]),
                                       temperature=0.7, top_p=0.9, repeat_penalty=1.1,
                                       stream=True, seed=int(message.get("seed", 11))):
            count += 1
            if first is None:
                first = time.perf_counter()
        elapsed = time.perf_counter() - (first or time.perf_counter())
        return {"tokens": count, "seconds": elapsed}

    def _op_raw_prefill(self, request_id: int, message: dict) -> dict:
        """Plain llama-cpp-python prompt evaluation (``reset``, then ``eval`` in its own
        batches), as its ``create_completion`` does for a new prompt: the baseline for
        prefill speed. Leaves that prompt in the cache."""
        llm = self._require_model()
        turns = [Turn(t["role"], t["content"]) for t in message["turns"]]
        tokens, _ = self._prompt_tokens(message["system"], turns)
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        return {"tokens": len(tokens), "seconds": time.perf_counter() - started}


def stable_draft(text: str) -> str:
    """The part of a message being typed whose tokens will not change as the person types
    on: everything before its last run of whitespace (the last word may still grow)."""
    match = re.search(r"\s+\S*$", text)
    return text[: match.start()] if match else ""


def _common_prefix(cached: Sequence[int], tokens: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    import numpy as np

    n = min(len(cached), len(tokens))
    if n == 0:
        return 0
    differ = np.flatnonzero(np.asarray(cached[:n]) != np.asarray(tokens[:n]))
    return int(differ[0]) if differ.size else n


def chat_request_from_json(data: dict) -> ChatRequest:
    return ChatRequest(
        system=data["system"],
        turns=tuple(Turn(t["role"], t["content"]) for t in data["turns"]),
        summary=data.get("summary"),
        fold_instruction=data.get("fold_instruction", ""),
        params=GenerationParams(**data["params"]),
    )


@contextmanager
def _model_params(report: Callable[[float], bool], plan: buffers.BufferPlan, patterns: list[str]):
    """Have llama.cpp report loading progress (0.0-1.0) to ``report``, load with ``plan``,
    give the context a second KV sequence, and keep llama-cpp-python's own template
    handling away from the file's template.

    llama-cpp-python's ``Llama`` takes neither a progress callback nor buffer choices nor a
    sequence count, but builds its model and context parameters from
    ``llama_model_default_params()`` and ``llama_context_default_params()`` while loading;
    for those calls the defaults carry ours. The second sequence shares the context's cells
    (``kv_unified``: no extra memory) and holds the conversation while a side job runs.
    """
    import llama_cpp.llama_chat_format as chat_format
    import llama_cpp.llama_cpp as lc

    original = lc.llama_model_default_params
    original_context = lc.llama_context_default_params
    original_formatter = chat_format.Jinja2ChatFormatter
    keep: list[object] = []

    @lc.llama_progress_callback
    def callback(progress: float, _data: ctypes.c_void_p) -> bool:
        try:
            return bool(report(float(progress)))
        except Exception:  # never raise into C
            return True

    def with_ours():
        params = original()
        params.progress_callback = callback
        keep.append(buffers.apply(params, plan, patterns))
        return params

    def context_with_ours():
        params = original_context()
        params.n_seq_max = SEQUENCES
        params.kv_unified = True
        return params

    lc.llama_model_default_params = with_ours
    lc.llama_context_default_params = context_with_ours
    # Llama() compiles the file's chat templates with an unbounded sandbox of its own (and
    # a syntax error escapes as a Jinja exception). Haven never uses those handlers: its
    # own bounded sandbox (app.llm.templates) checks and renders the template.
    chat_format.Jinja2ChatFormatter = _UnusedFormatter
    try:
        yield
    finally:
        lc.llama_model_default_params = original
        lc.llama_context_default_params = original_context
        chat_format.Jinja2ChatFormatter = original_formatter


class _UnusedFormatter:
    def __init__(self, *args, **kwargs) -> None:
        pass

    def to_chat_handler(self):
        return None


def _token_text(llm, token_id: int) -> str:
    if token_id < 0:
        return ""
    return llm._model.token_get_text(token_id)


def main(argv: list[str]) -> int:
    inbound_fd, outbound_fd = int(argv[0]), int(argv[1])
    faulthandler.enable(all_threads=True)  # a native crash leaves the Python stack in the log
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    native_log.install()
    inbound = Connection(inbound_fd, writable=False)
    outbound = Connection(outbound_fd, readable=False)
    worker = Worker(outbound)
    threading.Thread(target=worker.read, args=(inbound,), name="haven-model-reader",
                     daemon=True).start()
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
