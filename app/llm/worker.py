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
import sys
import threading
import time
import traceback
from collections.abc import Callable
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
                self._jobs.put(message)

    def cancel(self, request_id: int | None) -> None:
        with self._state_lock:
            if self._current is not None and request_id in (None, self._current):
                self._abort.set()
            if request_id is not None:
                self._cancelled.add(request_id)

    def has_waiting(self) -> bool:
        """Another request is queued (a preemptible job should yield; see protocol)."""
        return not self._jobs.empty()

    def _aborted(self) -> bool:
        return self._abort.is_set()

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
            if request_id in self._cancelled or self._closing:  # closing: finish nothing more
                self._cancelled.discard(request_id)
                self._abort.set()
        try:
            if handler is None:
                raise EngineError(f"unknown request {op!r}")
            value = handler(request_id, message)
            self.emit({"id": request_id, "ev": "result", "value": value})
        except Cancelled:
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
            return self._abort.is_set()

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

    # ---- chat --------------------------------------------------------------------------

    def _op_chat(self, request_id: int, message: dict) -> dict:
        request = chat_request_from_json(message["request"])
        reply = Reply()
        try:
            self._require_model()
            if self._aborted():
                raise Cancelled()
            tokens, stop, summary, folded, fold_s = self._fit(request)
            reply.summary, reply.folded, reply.fold_seconds = summary, folded, fold_s
            reply.prompt_tokens = len(tokens)
            self._generate(request_id, tokens, stop, request.params, reply)
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

    def _fit(self, request: ChatRequest):
        """Return prompt tokens that fit n_ctx with room for the reply, folding if needed."""
        limit = self._n_ctx - request.params.max_tokens - SAFETY_MARGIN
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
        return "".join(self._token_stream(tokens, stop, params, grammar))

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
                if self._aborted():
                    raise Cancelled()
                text = chunk["choices"][0]["text"]
                if text:
                    yield text
        except RuntimeError:
            if self._aborted():  # llama_decode aborted by our callback
                raise Cancelled() from None
            raise
        finally:
            generator.close()

    def _generate(self, request_id: int, tokens, stop, params, reply: Reply) -> None:
        import llama_cpp

        ctx = self._llm._ctx.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        started = time.perf_counter()
        parts: list[str] = []
        try:
            for text in self._token_stream(tokens, stop, params):
                if reply.time_to_first_token is None:
                    reply.time_to_first_token = time.perf_counter() - started
                parts.append(text)
                self.emit({"id": request_id, "ev": "piece", "text": text})
        finally:
            reply.text = "".join(parts)
            perf = llama_cpp.llama_perf_context(ctx)
            reply.evaluated_prompt_tokens = int(perf.n_p_eval)
            reply.generated_tokens = int(perf.n_eval)

    # ---- one-shot completions (summaries, titles, structured drafts) --------------------

    def _op_complete(self, request_id: int, message: dict) -> str:
        self._require_model()
        system = message["system"]
        turns = [Turn(t["role"], t["content"]) for t in message["turns"]]
        params = GenerationParams(**message["params"])
        json_schema = message.get("json_schema")
        grammar = None
        if json_schema is not None:
            from llama_cpp import LlamaGrammar

            grammar = LlamaGrammar.from_json_schema(json.dumps(json_schema), verbose=False)
        limit = self._n_ctx - params.max_tokens - SAFETY_MARGIN
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
        return self._complete(tokens, stop, params, grammar)

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
    and keep llama-cpp-python's own template handling away from the file's template.

    llama-cpp-python's ``Llama`` takes neither a progress callback nor buffer choices, but
    builds its model parameters from ``llama_model_default_params()`` while loading; for
    that call the defaults carry ours.
    """
    import llama_cpp.llama_chat_format as chat_format
    import llama_cpp.llama_cpp as lc

    original = lc.llama_model_default_params
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

    lc.llama_model_default_params = with_ours
    # Llama() compiles the file's chat templates with an unbounded sandbox of its own (and
    # a syntax error escapes as a Jinja exception). Haven never uses those handlers: its
    # own bounded sandbox (app.llm.templates) checks and renders the template.
    chat_format.Jinja2ChatFormatter = _UnusedFormatter
    try:
        yield
    finally:
        lc.llama_model_default_params = original
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
