"""The engine: one worker thread owns the ``Llama`` object and runs every call on it.

A ``Llama`` is not safe to use from two threads, so everything (load, tokenize,
generate) is a job on one worker. Callers get futures and reply streams and are never
blocked. Cancelling sets an event that the worker checks between tokens and that
llama.cpp's abort callback checks during a long prompt evaluation.
"""

from __future__ import annotations

import asyncio
import ctypes
import enum
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.llm import budget, native_log
from app.llm.templates import ChatTemplate, TemplateError
from app.llm.types import ChatRequest, GenerationParams, Reply, Turn
from app.logs import route_thread_output_to_log
from app.modelhub.gguf import GGUFError, inspect_gguf

log = logging.getLogger("haven.engine")

SUMMARY_TOKENS = 160  # the fold prompt asks for at most 120 words
SAFETY_MARGIN = 8


class EngineError(Exception):
    """One clear line about what went wrong with the model."""


class Cancelled(Exception):
    pass


class EngineState(enum.Enum):
    EMPTY = "no model"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class ModelSpec:
    path: Path
    name: str
    chat_format: str | None = None
    n_ctx: int = 4096
    threads: int = 2


class ReplyStream:
    """Chunks of a reply as they are generated; iterate (sync or async), or cancel."""

    _END = object()

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.Queue = queue.Queue()
        self.cancel_event = threading.Event()
        self.result: Reply | None = None
        self.done = threading.Event()
        self._ended = False

    def cancel(self) -> None:
        self.cancel_event.set()
        if self._engine._current is self:
            self._engine._active_cancel.set()

    # worker side
    def _push(self, text: str) -> None:
        self._queue.put(text)

    def _finish(self, reply: Reply) -> None:
        self.result = reply
        self.done.set()
        self._queue.put(self._END)

    # consumer side (iterating again after the end returns at once)
    def __iter__(self) -> Iterator[str]:
        while not self._ended:
            item = self._queue.get()
            if item is self._END:
                self._ended = True
                return
            yield item

    async def __aiter__(self):
        while not self._ended:
            item = await asyncio.to_thread(self._queue.get)
            if item is self._END:
                self._ended = True
                return
            yield item

    def wait(self, timeout: float | None = None) -> Reply:
        self.done.wait(timeout)
        if self.result is None:
            raise TimeoutError("the reply did not finish in time")
        return self.result


class Engine:
    def __init__(self) -> None:
        native_log.install()
        self._jobs: queue.Queue = queue.Queue()
        self._llm: Any = None
        self._template: ChatTemplate | None = None
        self._abort_callback = None
        self._active_cancel = threading.Event()
        self._current: ReplyStream | None = None
        self.state = EngineState.EMPTY
        self.error: str | None = None
        self.detail: str | None = None
        self.spec: ModelSpec | None = None
        self.n_ctx = 0
        self._closing = False
        self._load_percent = -5
        self._listeners: list[Callable[[EngineState, str | None], None]] = []
        self._thread = threading.Thread(target=self._run, name="haven-engine", daemon=True)
        self._thread.start()
        assert self._thread.ident is not None
        route_thread_output_to_log(self._thread.ident)

    # ---- the worker ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)

    def call(self, fn: Callable[[Any], Any]) -> Future:
        """Run ``fn(llm)`` on the worker (which owns the model). For tools and the benchmark."""

        def job():
            if self._llm is None:
                raise EngineError("no model is loaded")
            return fn(self._llm)

        return self._submit(job)

    def _submit(self, fn: Callable[[], Any]) -> Future:
        future: Future = Future()
        self._jobs.put((fn, future))
        return future

    def on_state(self, listener: Callable[[EngineState, str | None], None]) -> None:
        self._listeners.append(listener)

    def _set_state(self, state: EngineState, detail: str | None = None) -> None:
        self.state = state
        self.detail = detail
        self.error = detail if state is EngineState.FAILED else None
        for listener in list(self._listeners):
            try:
                listener(state, detail)
            except Exception:
                log.exception("engine state listener failed")

    # ---- loading -----------------------------------------------------------------------

    def load(self, spec: ModelSpec) -> Future:
        """Load ``spec`` in the background. The future resolves when it is ready (or fails)."""
        self._set_state(EngineState.LOADING, f"loading {spec.name}")
        return self._submit(lambda: self._load(spec))

    def _load(self, spec: ModelSpec) -> None:
        try:
            info = inspect_gguf(spec.path)
        except GGUFError as exc:
            self._set_state(EngineState.FAILED, str(exc))
            raise EngineError(str(exc)) from exc
        from llama_cpp import Llama

        self._unload()
        self._load_percent = -5
        n_ctx = spec.n_ctx
        if info.context_length:
            n_ctx = min(n_ctx, info.context_length)
        started = time.perf_counter()
        self._closing = False
        try:
            # verbose=True: llama-cpp-python's quiet mode points fds 1 and 2 at /dev/null for
            # the whole process while it loads, which would blank a screen drawn from another
            # thread. Its prints from this thread go to the log (see app.logs), and the C
            # log goes there through native_log.
            with _load_progress(lambda p: self._loading(spec.name, p)):
                llm = Llama(
                    model_path=str(spec.path),
                    n_ctx=n_ctx,
                    n_threads=spec.threads,
                    n_threads_batch=spec.threads,
                    n_batch=512,
                    verbose=True,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            message = f"the model file {spec.path.name} could not be loaded (is it damaged?)"
            self._set_state(EngineState.FAILED, message)
            raise EngineError(message) from exc
        try:
            self._template = ChatTemplate.resolve(
                llm.metadata.get("tokenizer.chat_template"),
                spec.chat_format,
                eos=_token_text(llm, llm.token_eos()),
                bos=_token_text(llm, llm.token_bos()),
                eos_id=llm.token_eos(),
            )
        except TemplateError as exc:
            llm.close()
            self._set_state(EngineState.FAILED, str(exc))
            raise EngineError(str(exc)) from exc
        self._install_abort(llm)
        self._llm = llm
        self.spec = spec
        self.n_ctx = n_ctx
        log.info(
            "model %s loaded in %.2fs (n_ctx=%d, threads=%d, template=%s)",
            spec.name, time.perf_counter() - started, n_ctx, spec.threads, self._template.source,
        )
        self._set_state(EngineState.READY, spec.name)

    def _loading(self, name: str, fraction: float) -> bool:
        """Progress from llama.cpp's loader; returning False aborts (the engine is closing)."""
        percent = int(fraction * 100)
        if percent >= self._load_percent + 5 or percent == 100:
            self._load_percent = percent
            self._set_state(EngineState.LOADING, f"loading {name} {percent}%")
        return not self._closing

    def _install_abort(self, llm) -> None:
        import llama_cpp

        @llama_cpp.ggml_abort_callback
        def _abort(_data: ctypes.c_void_p) -> bool:
            return self._active_cancel.is_set()

        self._abort_callback = _abort  # keep alive as long as the context
        llama_cpp.llama_set_abort_callback(llm._ctx.ctx, _abort, ctypes.c_void_p(0))

    def _unload(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
            self._template = None

    def unload(self) -> Future:
        def job():
            self._unload()
            self._set_state(EngineState.EMPTY)

        return self._submit(job)

    def close(self) -> None:
        self._closing = True  # also stops a load in progress
        self.cancel_current()
        self.unload()
        self._jobs.put(None)
        self._thread.join(timeout=10)

    def cancel_current(self) -> None:
        self._active_cancel.set()

    @property
    def ready(self) -> bool:
        return self.state is EngineState.READY

    # ---- tokens ------------------------------------------------------------------------

    def _tokenize(self, text: str, add_bos: bool = False) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def _detokenize(self, tokens: list[int]) -> str:
        return self._llm.detokenize(tokens).decode("utf-8", errors="ignore")

    def count_tokens(self, text: str) -> Future:
        return self._submit(lambda: len(self._tokenize(text)))

    def _prompt_tokens(self, system: str, turns: list[Turn]) -> tuple[list[int], tuple[str, ...]]:
        assert self._template is not None
        rendered = self._template.render(system, turns)
        tokens = self._tokenize(rendered.prompt, add_bos=not rendered.includes_bos)
        return tokens, rendered.stop

    # ---- chat --------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> ReplyStream:
        """Stream a reply to ``request``. Folding older turns happens first if needed."""
        stream = ReplyStream(self)
        submitted = time.perf_counter()
        self._submit(lambda: self._chat_job(request, stream, submitted))
        return stream

    def _chat_job(self, request: ChatRequest, stream: ReplyStream, submitted: float) -> None:
        reply = Reply()
        self._current = stream
        self._active_cancel.clear()
        if stream.cancel_event.is_set():
            self._active_cancel.set()
        try:
            if self._llm is None:
                raise EngineError("no model is loaded yet")
            if self._active_cancel.is_set():
                raise Cancelled()
            tokens, stop, summary, folded, fold_s = self._fit(request)
            reply.summary, reply.folded, reply.fold_seconds = summary, folded, fold_s
            reply.prompt_tokens = len(tokens)
            self._generate(tokens, stop, request.params, stream, reply, submitted)
        except Cancelled:
            reply.status = "cancelled"
        except EngineError as exc:
            reply.status, reply.error = "error", str(exc)
        except Exception as exc:  # llama.cpp errors must never kill the worker
            if self._active_cancel.is_set():
                reply.status = "cancelled"
            else:
                log.exception("generation failed")
                reply.status, reply.error = "error", f"the model stopped unexpectedly ({exc})"
        finally:
            self._current = None
            self._active_cancel.clear()
            stream._finish(reply)

    def _fit(self, request: ChatRequest):
        """Return prompt tokens that fit n_ctx with room for the reply, folding if needed."""
        limit = self.n_ctx - request.params.max_tokens - SAFETY_MARGIN
        if limit < 64:
            raise EngineError("the context window is too small for the reply length")
        turns = list(request.turns)
        summary = request.summary
        system = budget.compose_system(request.system, summary)
        tokens, stop = self._prompt_tokens(system, turns)
        if len(tokens) <= limit:
            return tokens, stop, None, 0, 0.0

        started = time.perf_counter()
        fixed = len(self._prompt_tokens(request.system, [])[0]) + 16
        costs = [len(self._tokenize(t.content)) + 8 for t in turns]
        fold = budget.turns_to_fold([t.role for t in turns], costs, fixed, limit, SUMMARY_TOKENS)
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

    def _fold(self, summary: str | None, turns: list[Turn], instruction: str) -> str:
        """Fold ``turns`` into the running summary, in chunks that fit the context."""
        room = self.n_ctx - SUMMARY_TOKENS - 256 - len(self._tokenize(instruction))
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
                summary = self._summarise_chunk(summary, chunk, instruction)
                chunk, chunk_cost = [], 0
            chunk.append(turn)
            chunk_cost += cost
        if chunk:
            summary = self._summarise_chunk(summary, chunk, instruction)
        return summary or ""

    def _summarise_chunk(self, summary: str | None, turns: list[Turn], instruction: str) -> str:
        body = ""
        if summary:
            body += f"Summary so far:\n{summary.strip()}\n\n"
        body += "Conversation to add:\n" + budget.fold_transcript(turns)
        tokens, stop = self._prompt_tokens(instruction, [Turn("user", body)])
        params = GenerationParams(temperature=0.3, top_p=0.9, repeat_penalty=1.1,
                                  max_tokens=SUMMARY_TOKENS, seed=-1)
        text = self._complete(tokens, stop, params)
        return text.strip() or (summary or "")

    def _complete(self, tokens: list[int], stop, params: GenerationParams, grammar=None) -> str:
        parts = []
        for piece in self._token_stream(tokens, stop, params, grammar):
            parts.append(piece)
        return "".join(parts)

    def _token_stream(self, tokens: list[int], stop, params: GenerationParams, grammar=None):
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
                if self._active_cancel.is_set():
                    raise Cancelled()
                text = chunk["choices"][0]["text"]
                if text:
                    yield text
        except RuntimeError:
            if self._active_cancel.is_set():  # llama_decode aborted by our callback
                raise Cancelled() from None
            raise
        finally:
            generator.close()

    def _generate(self, tokens, stop, params, stream: ReplyStream, reply: Reply, submitted):
        import llama_cpp

        ctx = self._llm._ctx.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        parts: list[str] = []
        try:
            for text in self._token_stream(tokens, stop, params):
                if reply.time_to_first_token is None:
                    reply.time_to_first_token = time.perf_counter() - submitted
                parts.append(text)
                stream._push(text)
        finally:
            reply.text = "".join(parts)
            perf = llama_cpp.llama_perf_context(ctx)
            reply.evaluated_prompt_tokens = int(perf.n_p_eval)
            reply.generated_tokens = int(perf.n_eval)

    # ---- one-shot completions (summaries, titles, structured drafts) --------------------

    def complete(
        self,
        system: str,
        turns: list[Turn],
        params: GenerationParams,
        json_schema: dict | None = None,
    ) -> Future:
        """Generate one reply without streaming; with ``json_schema``, constrained to it."""

        def job() -> str:
            if self._llm is None:
                raise EngineError("no model is loaded yet")
            self._active_cancel.clear()
            grammar = None
            if json_schema is not None:
                import json

                from llama_cpp import LlamaGrammar

                grammar = LlamaGrammar.from_json_schema(json.dumps(json_schema), verbose=False)
            limit = self.n_ctx - params.max_tokens - SAFETY_MARGIN
            request_turns = list(turns)
            tokens, stop = self._prompt_tokens(system, request_turns)
            while len(tokens) > limit and len(request_turns) > 1:
                request_turns = request_turns[1:]
                tokens, stop = self._prompt_tokens(system, request_turns)
            if len(tokens) > limit:
                content_tokens = self._tokenize(request_turns[-1].content)
                keep = max(len(content_tokens) - (len(tokens) - limit) - 64, 32)
                request_turns[-1] = Turn(
                    request_turns[-1].role,
                    budget.clip_middle(request_turns[-1].content, content_tokens, keep,
                                       self._detokenize),
                )
                tokens, stop = self._prompt_tokens(system, request_turns)
            try:
                return self._complete(tokens, stop, params, grammar)
            except Cancelled:
                raise EngineError("cancelled") from None
            finally:
                self._active_cancel.clear()

        return self._submit(job)


@contextmanager
def _load_progress(report: Callable[[float], bool]):
    """Have llama.cpp report loading progress (0.0-1.0) to ``report``.

    llama-cpp-python's ``Llama`` takes no progress callback, but builds its model
    parameters from ``llama_model_default_params()`` while loading; for that call (made on
    this worker, the only place models load) the defaults carry our callback.
    """
    import llama_cpp.llama_cpp as lc

    original = lc.llama_model_default_params

    @lc.llama_progress_callback
    def callback(progress: float, _data: ctypes.c_void_p) -> bool:
        try:
            return bool(report(float(progress)))
        except Exception:  # never raise into C
            return True

    def with_progress():
        params = original()
        params.progress_callback = callback
        return params

    lc.llama_model_default_params = with_progress
    try:
        yield
    finally:
        lc.llama_model_default_params = original


def _token_text(llm, token_id: int) -> str:
    if token_id < 0:
        return ""
    return llm._model.token_get_text(token_id)

