"""The engine: Haven's side of the model process, which it starts and supervises.

``Llama`` lives in a child process (:mod:`app.llm.worker`), started fresh (exec, never a
bare fork: this process has threads and an open journal) with no passphrase in its
environment, no journal and no settings beyond what a load needs. Requests and replies
cross two pipes (:mod:`app.llm.protocol`); callers get futures and reply streams and are
never blocked. Cancelling goes to the child at once, where llama.cpp's abort callback
reads it even in the middle of a long prompt evaluation.

If the child dies (a segfault in llama.cpp, an abort on a broken model file, the OOM
killer), the reply in progress ends with status ``"crashed"`` and the text shown so far,
every other waiting request fails with :class:`EngineError`, and the engine starts a new
child and reloads the model — at most :data:`MAX_RESTARTS` times in
:data:`RESTART_WINDOW` seconds, after which it stays down and says so. The child's
stdout and stderr (llama.cpp's log, ggml's messages, Python's fault handler) go to
Haven's log, never to the terminal.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from app.llm import protocol
from app.llm.types import ChatRequest, Fold, GenerationParams, Prefill, Reply, Turn

log = logging.getLogger("haven.engine")
child_log = logging.getLogger("haven.model")
child_log.addHandler(logging.NullHandler())  # never the terminal, even with no log set up

CRASHED_LINE = "The model stopped unexpectedly and is restarting."
MAX_RESTARTS = 3
RESTART_WINDOW = 600.0
CANCEL_GRACE = 5.0  # a child that ignores a cancel this long is stopped and restarted
FOLD_HEADROOM = 256  # tokens a fold ahead of time leaves for the next message
SCRUBBED_ENV = ("HAVEN_", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


class EngineError(Exception):
    """One clear line about what went wrong with the model."""


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
    repack: str = "auto"  # weight buffers: auto | on | off (see app.llm.buffers)
    prompt_cache: Path | None = None  # a folder for Haven's evaluated prompt (app.llm.prompt_cache)

    def to_json(self) -> dict:
        return {"path": str(self.path), "name": self.name, "chat_format": self.chat_format,
                "n_ctx": self.n_ctx, "threads": self.threads, "repack": self.repack,
                "prompt_cache": str(self.prompt_cache) if self.prompt_cache else None}


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
        self._parts: list[str] = []
        self._submitted = time.perf_counter()
        self._first_piece: float | None = None
        self._first_token: float | None = None
        self._callbacks: list[Callable[[Reply], None]] = []
        self._callback_lock = threading.Lock()
        self.request_id: int | None = None

    @property
    def submitted_at(self) -> float:
        """When the request was made (``time.perf_counter()``)."""
        return self._submitted

    @property
    def first_piece_at(self) -> float | None:
        """When its first piece of text arrived (``time.perf_counter()``), if one has."""
        return self._first_piece

    @property
    def first_token_at(self) -> float | None:
        """When the model had sampled its first token (``time.perf_counter()``, as the news
        arrived here), which can be before that token makes any text."""
        return self._first_token

    def add_done_callback(self, callback: Callable[[Reply], None]) -> None:
        """Call ``callback(reply)`` when it ends (at once if it has), on the engine's thread."""
        with self._callback_lock:
            if self.result is None:
                self._callbacks.append(callback)
                return
        callback(self.result)

    def cancel(self) -> None:
        if self.cancel_event.is_set():
            return
        self.cancel_event.set()
        self._engine._cancel(self)

    # engine side
    def _sampled(self) -> None:
        if self._first_token is None:
            self._first_token = time.perf_counter()

    def _push(self, text: str) -> None:
        self._sampled()
        if self._first_piece is None:
            self._first_piece = time.perf_counter()
        self._parts.append(text)
        self._queue.put(text)

    def _finish(self, reply: Reply) -> None:
        if self.done.is_set():
            return
        if self._first_piece is not None:  # as the caller felt it, pipe included
            reply.time_to_first_token = self._first_piece - self._submitted
        with self._callback_lock:
            self.result = reply
            callbacks, self._callbacks = self._callbacks, []
        self.done.set()
        self._queue.put(self._END)
        for callback in callbacks:
            try:
                callback(reply)
            except Exception:
                log.exception("a reply callback failed")

    def _shown(self) -> str:
        return "".join(self._parts)

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


class Job(Future):
    """A request's future that can also be stopped: :meth:`stop` cancels it in the model
    process (a prefill or a fold then resolves with status "cancelled")."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._engine = engine
        self.request_id: int | None = None

    def stop(self) -> None:
        child = self._engine._child
        if child is not None and self.request_id is not None and not self.done():
            child.send({"op": "cancel", "id": self.request_id})


@dataclass
class _Pending:
    op: str
    future: Future | None = None
    stream: ReplyStream | None = None
    spec: ModelSpec | None = None
    internal: bool = False  # a reload after a crash: nobody waits on it
    transform: Callable[[Any], Any] | None = None  # the result as the caller gets it


class _Child:
    """One model process and the two threads that read from it."""

    def __init__(self, engine: Engine) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        log_r, log_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.llm.worker", str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
                stdout=log_w, stderr=log_w, env=child_environment(), cwd=_APP_ROOT,
                start_new_session=True,  # Ctrl-C at the terminal is Haven's, not the child's
            )
        finally:
            for fd in (to_child_r, from_child_w, log_w):
                os.close(fd)
        self.pid = self.process.pid
        self.to_child = Connection(to_child_w, readable=False)
        self.from_child = Connection(from_child_r, writable=False)
        self._send_lock = threading.Lock()
        self.dead = False
        self.plan_pins_repack = False
        self.reader = threading.Thread(target=engine._read, args=(self,), daemon=True,
                                       name=f"haven-model-{self.pid}")
        self.logger = threading.Thread(target=_copy_log, args=(log_r,), daemon=True,
                                       name=f"haven-model-log-{self.pid}")
        self.reader.start()
        self.logger.start()

    def send(self, message: dict) -> bool:
        with self._send_lock:
            if self.dead:
                return False
            try:
                protocol.send(self.to_child, message)
                return True
            except (OSError, ValueError):
                return False

    def kill(self) -> None:
        try:
            self.process.kill()
        except OSError:
            pass


_APP_ROOT = str(Path(__file__).resolve().parents[2])


def child_environment() -> dict[str, str]:
    """This process's environment without passphrases or tokens; ``app`` importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_APP_ROOT, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    # ggml's abort handler attaches gdb, whose backtrace prints argument values (which can
    # be user text); Python's fault handler writes the stack without values instead.
    env["GGML_NO_BACKTRACE"] = "1"
    return env


_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
           "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}


def _copy_log(fd: int) -> None:
    """Copy the child's stdout/stderr into Haven's log, a line at a time."""
    with open(fd, "rb", buffering=0, closefd=True) as pipe:
        buffer = b""
        while True:
            try:
                data = pipe.read(65536)
            except OSError:
                data = b""
            if not data:
                break
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                _log_child_line(raw)
        if buffer:
            _log_child_line(buffer)


def _log_child_line(raw: bytes) -> None:
    line = raw.decode("utf-8", errors="replace").rstrip()
    if not line.strip():
        return
    level_name, _, rest = line.partition(" ")
    level = _LEVELS.get(level_name)
    if level is None:  # a plain print: llama-cpp-python, ggml's abort message, the fault handler
        child_log.info("%s", line)
    else:
        child_log.log(level, "%s", rest.removeprefix("haven.model: "))


class Engine:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._child: _Child | None = None
        self._listeners: list[Callable[[EngineState, str | None], None]] = []
        self._closing = False
        self._crashes: list[float] = []
        self._wanted: ModelSpec | None = None  # the model to reload after a crash
        self._fallback_used = False
        self.state = EngineState.EMPTY
        self.error: str | None = None
        self.detail: str | None = None
        self.spec: ModelSpec | None = None
        self.n_ctx = 0
        self.buffers: str | None = None  # what the weight buffers are and why (doctor)
        self.restarts = 0

    # ---- state ---------------------------------------------------------------------------

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

    @property
    def ready(self) -> bool:
        return self.state is EngineState.READY

    @property
    def worker_pid(self) -> int | None:
        """The model process's id (None before it starts)."""
        child = self._child
        return child.pid if child is not None and not child.dead else None

    # ---- requests ------------------------------------------------------------------------

    def _ensure_child(self) -> _Child:
        if self._child is None or self._child.dead:
            self._child = _Child(self)
            log.info("model process %d started", self._child.pid)
        return self._child

    def _request(self, op: str, pending: _Pending, **fields: Any) -> int:
        with self._lock:
            if self._closing:
                raise EngineError("the engine is closed")
            child = self._ensure_child()
            request_id = next(self._ids)
            self._pending[request_id] = pending
            sent = child.send({"op": op, "id": request_id, **fields})
        if not sent:  # the child died just now; its reader fails what is pending
            child.kill()
        return request_id

    def _future(self, op: str, transform: Callable[[Any], Any] | None = None,
                **fields: Any) -> Job:
        future = Job(self)
        try:
            future.request_id = self._request(
                op, _Pending(op, future=future, transform=transform), **fields)
        except EngineError as exc:
            future.set_exception(exc)
        return future

    def load(self, spec: ModelSpec) -> Future:
        """Load ``spec`` in the background. The future resolves when it is ready (or fails)."""
        with self._lock:
            self._wanted = spec
            self._fallback_used = False
        self._set_state(EngineState.LOADING, f"loading {spec.name}")
        return self._load(spec, internal=False)

    def _load(self, spec: ModelSpec, internal: bool) -> Future:
        future: Future = Future()
        try:
            self._request("load", _Pending("load", future=future, spec=spec, internal=internal),
                          spec=spec.to_json())
        except EngineError as exc:
            future.set_exception(exc)
        return future

    def unload(self) -> Future:
        with self._lock:
            self._wanted = None
            if self._child is None:
                future: Future = Future()
                future.set_result(None)
                self._set_state(EngineState.EMPTY)
                return future
        return self._future("unload")

    def count_tokens(self, text: str) -> Future:
        return self._future("count_tokens", text=text)

    def chat(self, request: ChatRequest) -> ReplyStream:
        """Stream a reply to ``request``. Folding older turns happens first if needed."""
        stream = ReplyStream(self)
        try:
            stream.request_id = self._request("chat", _Pending("chat", stream=stream),
                                              request=_request_json(request))
        except EngineError as exc:
            stream._finish(Reply(status="error", error=str(exc)))
            return stream
        if stream.cancel_event.is_set():  # cancelled before it had an id to cancel by
            self._cancel(stream)
        return stream

    def complete(
        self,
        system: str,
        turns: list[Turn],
        params: GenerationParams,
        json_schema: dict | None = None,
    ) -> Future:
        """Generate one reply without streaming (a future of its text); with
        ``json_schema``, constrained to it. A side job: see :meth:`side_job`."""
        return self._future("complete", transform=lambda value: Reply(**value).text,
                            system=system, turns=_turns_json(turns), params=asdict(params),
                            json_schema=json_schema)

    def side_job(
        self,
        system: str,
        turns: list[Turn] | tuple[Turn, ...],
        params: GenerationParams,
        json_schema: dict | None = None,
    ) -> ReplyStream:
        """A side job (a draft, a summary, a title) as a stream: iterate for progress,
        ``cancel()`` to stop it; ``wait()`` gives a :class:`Reply` with its text and figures.

        It never costs the conversation its KV cache: whatever the last chat or prefill
        left cached is kept aside while it runs and is there again for the next turn
        (``Reply.kept`` says how). A side job whose prompt starts with the conversation's
        (the same system prompt and turns, then a user turn with the instruction) reuses
        it and evaluates only the instruction.
        """
        stream = ReplyStream(self)
        try:
            stream.request_id = self._request(
                "complete", _Pending("complete", stream=stream), system=system,
                turns=_turns_json(turns), params=asdict(params), json_schema=json_schema,
                stream=True)
        except EngineError as exc:
            stream._finish(Reply(status="error", error=str(exc)))
            return stream
        if stream.cancel_event.is_set():
            self._cancel(stream)
        return stream

    def prefill(self, request: ChatRequest, draft: str = "") -> Job:
        """Evaluate what the next chat will start with, before it is asked: ``request``'s
        system prompt, summary and turns (the history, without the new message), then a
        user turn beginning with ``draft`` (the message being typed; its last, unfinished
        word is left for the chat). A later :meth:`chat` whose prompt starts the same way
        evaluates only the rest. Runs in small chunks; any other request that comes in goes
        first after the current chunk (a newer prefill continues this one's work).
        Resolves to a :class:`Prefill`. If ``request.turns`` ends with a user turn, the
        draft continues it (as consecutive messages are sent as one)."""
        return self._future("prefill", transform=lambda value: Prefill(**value),
                            request=_request_json(request), draft=draft)

    def fold(self, request: ChatRequest, headroom: int = FOLD_HEADROOM) -> Job:
        """Fold ahead of time, after a reply: if ``request`` (the history so far, ending
        with the reply) leaves less than ``headroom`` tokens for the next message, fold its
        oldest turns into the running summary now and prefill the shorter prompt, so the
        next chat neither folds nor waits; when it still fits, prefill it for the next
        message (``Fold.prefill``). Resolves to a :class:`Fold`; the caller keeps
        its summary and drops its ``folded`` oldest turns, as for a reply that folded. A
        chat or side job that comes in stops it (status "preempted", nothing changed)."""
        return self._future("fold", transform=_fold_result, request=_request_json(request),
                            headroom=headroom)

    # explicit requests for `haven bench` (the model cannot be reached across the pipe)
    def model_info(self) -> Future:
        return self._future("info")

    def perf_counters(self) -> Future:
        return self._future("perf")

    def baseline_decode(self, prompt: str, max_tokens: int, seed: int = 11) -> Future:
        """Decode speed of plain llama-cpp-python inside the model process (no pipe)."""
        return self._future("raw_decode", prompt=prompt, max_tokens=max_tokens, seed=seed)

    def baseline_prefill(self, system: str, turns: list[Turn]) -> Future:
        """Prompt evaluation of plain llama-cpp-python (``reset``, ``eval``) in the model
        process: {"tokens", "seconds"}. It replaces whatever was cached."""
        return self._future("raw_prefill", system=system, turns=_turns_json(turns))

    # ---- cancelling --------------------------------------------------------------------

    def cancel_current(self) -> None:
        child = self._child
        if child is not None:
            child.send({"op": "cancel", "id": None})

    def _cancel(self, stream: ReplyStream) -> None:
        child = self._child
        if child is None or stream.request_id is None:
            return
        child.send({"op": "cancel", "id": stream.request_id})
        timer = threading.Timer(CANCEL_GRACE, self._cancel_overdue, args=(child, stream))
        timer.daemon = True
        timer.start()

    def _cancel_overdue(self, child: _Child, stream: ReplyStream) -> None:
        if not stream.done.is_set() and not child.dead:
            log.warning("the model process ignored a cancel for %.0fs; restarting it", CANCEL_GRACE)
            child.kill()

    # ---- what the child says ---------------------------------------------------------------

    def _read(self, child: _Child) -> None:
        while True:
            try:
                message = protocol.receive(child.from_child)
            except (EOFError, OSError, ValueError):
                break
            try:
                self._dispatch(child, message)
            except Exception:
                log.exception("could not handle a message from the model process")
        self._child_ended(child)

    def _dispatch(self, child: _Child, message: dict) -> None:
        event = message.get("ev")
        if event == "hello":
            return
        request_id = message.get("id")
        with self._lock:
            pending = self._pending.get(request_id)  # type: ignore[arg-type]
        if pending is None:
            return
        if event == "piece" and pending.stream is not None:
            pending.stream._push(str(message.get("text", "")))
        elif event == "token" and pending.stream is not None:
            pending.stream._sampled()
        elif event == "progress" and pending.spec is not None:
            self._set_state(EngineState.LOADING,
                            f"loading {pending.spec.name} {int(message.get('percent', 0))}%")
        elif event == "plan":
            child.plan_pins_repack = bool(message.get("pin_repack"))
        elif event in ("result", "error"):
            with self._lock:
                self._pending.pop(request_id, None)  # type: ignore[arg-type]
            if event == "result":
                self._resolved(pending, message.get("value"))
            else:
                self._failed(pending, message.get("kind", "internal"),
                             str(message.get("message", "")))

    def _resolved(self, pending: _Pending, value: Any) -> None:
        if pending.op == "load":
            assert pending.spec is not None
            self.spec = pending.spec
            self.n_ctx = int(value["n_ctx"])
            self.buffers = str(value.get("buffers"))
            log.info("model %s ready (n_ctx=%d; buffers: %s)", pending.spec.name, self.n_ctx,
                     value.get("buffer_plan"))
            self._set_state(EngineState.READY, pending.spec.name)
        elif pending.op == "unload":
            self.spec = None
            self._set_state(EngineState.EMPTY)
        if pending.stream is not None:
            pending.stream._finish(Reply(**value))
        elif pending.future is not None and not pending.future.done():
            try:
                result = pending.transform(value) if pending.transform else value
            except Exception as exc:  # a malformed answer: a clear failure, not a hang
                pending.future.set_exception(EngineError(f"the model process answered "
                                                         f"oddly ({type(exc).__name__})"))
                return
            pending.future.set_result(result)

    def _failed(self, pending: _Pending, kind: str, message: str) -> None:
        if pending.op == "load":
            if kind == "cancelled":
                message = "loading was stopped"
            self._set_state(EngineState.FAILED, message)
        if pending.stream is not None:
            status = "cancelled" if kind == "cancelled" else "error"
            pending.stream._finish(Reply(text=pending.stream._shown(), status=status,
                                         error=None if kind == "cancelled" else message))
        elif pending.future is not None and not pending.future.done():
            if kind == "cancelled" and pending.op in ("prefill", "fold"):
                pending.future.set_result(Prefill("cancelled") if pending.op == "prefill"
                                          else Fold("cancelled"))
            else:
                pending.future.set_exception(EngineError(message))

    # ---- when the child dies -------------------------------------------------------------

    def _child_ended(self, child: _Child) -> None:
        with child._send_lock:
            child.dead = True
            for connection in (child.to_child, child.from_child):
                try:
                    connection.close()
                except OSError:
                    pass
        try:
            code = child.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.process.wait()
        child.logger.join(timeout=10)  # its last words (ggml's abort, the stack) come first
        with self._lock:
            if self._child is not child:
                return
            self._child = None
            orphans = list(self._pending.items())
            self._pending.clear()
            closing = self._closing
            wanted = self._wanted
        cause = _describe_exit(code)
        if closing:
            for _, pending in orphans:
                self._orphaned(pending, "the engine is closed", crashed=False)
            return
        log.warning("the model process %d stopped unexpectedly (%s)", child.pid, cause)
        loading = next((p for _, p in orphans if p.op == "load"), None)
        if loading is not None:
            self._load_crashed(child, loading, [p for _, p in orphans if p is not loading])
            return
        # Say what happens next before anyone waiting hears of the crash, so a caller that
        # checks `ready` right after sees the restart, not a model that is gone.
        restart = wanted is not None and self._may_restart()
        if wanted is not None and not restart:
            self._set_state(EngineState.FAILED,
                            "the model kept stopping unexpectedly, so Haven has left it off; "
                            "your journal still works, and restarting Haven tries again")
        elif restart:
            assert wanted is not None
            self.restarts += 1
            self._set_state(EngineState.LOADING, f"restarting {wanted.name}")
        for _, pending in orphans:
            self._orphaned(pending, "the model stopped unexpectedly", crashed=True)
        if restart:
            assert wanted is not None
            self._load(wanted, internal=True)

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self._crashes = [t for t in self._crashes if now - t < RESTART_WINDOW] + [now]
        return len(self._crashes) <= MAX_RESTARTS

    def _load_crashed(self, child: _Child, loading: _Pending, others: list[_Pending]) -> None:
        spec = loading.spec
        assert spec is not None
        for pending in others:
            self._orphaned(pending, "the model stopped unexpectedly", crashed=True)
        if child.plan_pins_repack and not self._fallback_used:
            # Haven's own choice of buffers is the likeliest cause: load without repack.
            self._fallback_used = True
            fallback = replace(spec, repack="off")
            log.warning("the model process stopped while loading with pinned repack buffers; "
                        "loading without them")
            with self._lock:
                if self._wanted == spec:
                    self._wanted = fallback
            follow = self._load(fallback, internal=loading.internal)
            if loading.future is not None:
                follow.add_done_callback(lambda f: _chain(f, loading.future))
            return
        message = (f"the model file {spec.path.name} made the model stop while loading "
                   "(it may be damaged or not suit this computer)")
        with self._lock:
            self._wanted = None
        self._set_state(EngineState.FAILED, message)
        if loading.future is not None and not loading.future.done():
            loading.future.set_exception(EngineError(message))

    def _orphaned(self, pending: _Pending, message: str, crashed: bool) -> None:
        if pending.stream is not None:
            stream = pending.stream
            if stream.cancel_event.is_set():
                stream._finish(Reply(text=stream._shown(), status="cancelled"))
            else:
                stream._finish(Reply(text=stream._shown(),
                                     status="crashed" if crashed else "error",
                                     error=CRASHED_LINE if crashed else message))
        elif pending.future is not None and not pending.future.done():
            pending.future.set_exception(EngineError(message))

    # ---- closing -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._closing = True
            child = self._child
        if child is None:
            return
        child.send({"op": "shutdown"})
        try:
            child.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
        child.reader.join(timeout=5)
        child.logger.join(timeout=5)


def _chain(source: Future, target: Future) -> None:
    if target.done():
        return
    if source.exception() is not None:
        target.set_exception(source.exception())
    else:
        target.set_result(source.result())


def _describe_exit(code: int) -> str:
    if code < 0:
        import signal

        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _turns_json(turns) -> list[dict]:
    return [{"role": t.role, "content": t.content} for t in turns]


def _fold_result(value: dict) -> Fold:
    prefill = value.pop("prefill", None)
    return Fold(**value, prefill=Prefill(**prefill) if prefill else None)


def _request_json(request: ChatRequest) -> dict:
    return {
        "system": request.system,
        "turns": _turns_json(request.turns),
        "summary": request.summary,
        "fold_instruction": request.fold_instruction,
        "params": asdict(request.params),
        "shared_prefix": request.shared_prefix,
    }
