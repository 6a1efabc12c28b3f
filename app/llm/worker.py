"""The model process: owns the ``Llama`` and runs every request on its main thread.

Started by :class:`app.llm.engine.Engine` as ``python -m app.llm.worker IN_FD OUT_FD`` with a
scrubbed environment (no passphrases), stdin on /dev/null and stdout/stderr on a pipe that
Haven copies into its log. It knows nothing of the journal or the settings: what it needs
arrives in the ``load`` request. The protocol is in :mod:`app.llm.protocol`.

A native crash here (a llama.cpp bug, a hostile model file, the OOM killer) ends this
process only; Haven notices the closed pipe, keeps the partial reply and restarts it.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import queue
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from app.llm import native_log, protocol
from app.llm.generation import Generation
from app.llm.kv_cache import KVCache
from app.llm.model_loading import Loading
from app.llm.prompt_cache import PromptCache
from app.llm.templates import ChatTemplate, TemplateError
from app.llm.types import Turn
from app.llm.worker_shared import (
    CONVERSATION,
    DRAFT_MARK,
    PARKED,
    PREFILL_CHUNK,
    SAFETY_MARGIN,
    SEQUENCES,
    SUMMARY_TOKENS,
    Cancelled,
    EngineError,
    Preempted,
    chat_request_from_json,
    common_prefix,
)

# The parts of the worker live in their own modules; these names stay importable from here.
__all__ = ["CONVERSATION", "DRAFT_MARK", "PARKED", "PREFILL_CHUNK", "SAFETY_MARGIN", "SEQUENCES",
           "SUMMARY_TOKENS", "Cancelled", "EngineError", "Preempted", "Worker",
           "chat_request_from_json", "common_prefix", "main", "stable_draft"]

log = logging.getLogger("haven.model")


class Worker(Loading, KVCache, PromptCache, Generation):
    """The model process's one object: the messages in and out, the queue, the request
    loop, tokens, and the figures for ``haven bench``; loading, the KV cache and generation
    are its parts (:mod:`~app.llm.model_loading`, :mod:`~app.llm.kv_cache`,
    :mod:`~app.llm.generation`)."""

    def __init__(self, out: Connection) -> None:
        self._out = out
        self._send_lock = threading.Lock()
        self._jobs: queue.Queue = queue.Queue()
        self._llm: Any = None
        self._template: ChatTemplate | None = None
        self._abort_callback = None
        self._n_ctx = 0
        self._threads = 1
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

    def _stop_if_asked(self) -> None:
        """Raise :class:`Cancelled` (a cancel) or :class:`Preempted` (a request this job
        yields to) if either has come: between chunks, and when llama.cpp was stopped."""
        if self._aborted():
            raise Cancelled()
        if self._preempt.is_set():
            raise Preempted()

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
        stable = stable_draft(draft)
        history = list(turns)
        if history and history[-1].role == "user":  # consecutive messages are sent as one
            history[-1] = Turn("user", f"{history[-1].content}\n\n{stable}{DRAFT_MARK}")
        else:
            history.append(Turn("user", stable + DRAFT_MARK))
        return self._tokens_before_mark(system, history)

    def _tokens_before_mark(self, system: str, turns: Sequence[Turn]) -> list[int] | None:
        """The tokens of the prompt rendered from ``system`` and ``turns`` up to the
        :data:`DRAFT_MARK` one of them holds, less one token (the last may merge with what
        follows). None if the template hides the mark."""
        assert self._template is not None
        rendered = self._template.render(system, list(turns))
        at = rendered.prompt.find(DRAFT_MARK)
        if at < 0:
            return None
        tokens = self._tokenize(rendered.prompt[:at], add_bos=not rendered.includes_bos)
        return tokens[:-1]


    # ---- figures for `haven bench` -------------------------------------------------------

    def _op_info(self, request_id: int, message: dict) -> dict:
        llm = self._require_model()
        return {k: v for k, v in llm.metadata.items() if k != "tokenizer.chat_template"}

    def _op_perf(self, request_id: int, message: dict) -> dict:
        import llama_cpp

        perf = llama_cpp.llama_perf_context(self._require_model()._ctx.ctx)
        return {"n_p_eval": int(perf.n_p_eval), "t_p_eval_ms": float(perf.t_p_eval_ms),
                "n_eval": int(perf.n_eval), "t_eval_ms": float(perf.t_eval_ms),
                "threads": int(llama_cpp.llama_n_threads(self._llm._ctx.ctx)),
                "threads_batch": int(llama_cpp.llama_n_threads_batch(self._llm._ctx.ctx))}

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
