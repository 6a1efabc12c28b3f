"""A scripted stand-in for the engine, for fast flow and UI tests.

It follows the real engine's interface (``chat`` returns a stream; ``complete`` returns a
future) and replies from a script. The real engine is covered in test_engine.py.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path

from app.llm import EngineState, ModelSpec, Reply


class ScriptedStream:
    def __init__(self, text: str, delay: float, reply_extra: dict) -> None:
        self.text = text
        self.delay = delay
        self.cancel_event = threading.Event()
        self.result: Reply | None = None
        self._extra = reply_extra

    def cancel(self) -> None:
        self.cancel_event.set()

    def __iter__(self):
        if self.result is not None:  # like the real stream: a finished stream yields nothing
            return
        sent = []
        status = "complete"
        for word in self.text.split(" "):
            if self.cancel_event.is_set():
                status = "cancelled"
                break
            piece = word if not sent else " " + word
            sent.append(piece)
            yield piece
            if self.delay:
                time.sleep(self.delay)
        self.result = Reply(text="".join(sent), status=status, **self._extra)

    async def __aiter__(self):
        for piece in self:
            yield piece

    def wait(self, timeout=None) -> Reply:
        if self.result is None:
            for _ in self:
                pass
        assert self.result is not None
        return self.result


class ScriptedEngine:
    def __init__(self, replies: list[str] | None = None, delay: float = 0.0,
                 completions: list[str] | None = None) -> None:
        self.replies = list(replies or [])
        self.completions = list(completions or [])
        self.delay = delay
        self.requests: list = []
        self.completion_requests: list = []
        self.state = EngineState.READY
        self.error = None
        self.spec = ModelSpec(Path("scripted.gguf"), "scripted")
        self.n_ctx = 4096
        self.next_reply_extra: dict = {}

    @property
    def ready(self) -> bool:
        return self.state is EngineState.READY

    def chat(self, request):
        self.requests.append(request)
        text = self.replies.pop(0) if self.replies else "That sounds hard. What went through your mind?"
        extra, self.next_reply_extra = self.next_reply_extra, {}
        return ScriptedStream(text, self.delay, extra)

    def complete(self, system, turns, params, json_schema=None) -> Future:
        self.completion_requests.append((system, turns, json_schema))
        future: Future = Future()
        future.set_result(self.completions.pop(0) if self.completions else "A gentle talk")
        return future

    def on_state(self, listener) -> None:
        pass

    def cancel_current(self) -> None:
        pass

    def close(self) -> None:
        pass
