"""The pipe protocol between Haven and its model process.

Two one-way pipes carry length-framed JSON objects (``multiprocessing.connection`` framing,
never pickle: a model process taken over by a hostile file must not be able to run code in
Haven by what it sends back). User text crosses only here, never in argv, the environment
or a file.

Haven → model process: ``{"op": ..., "id": N, ...}``

- ``load`` (spec: path, name, chat_format, n_ctx, threads, repack): ``plan``, ``progress``…,
  then ``result`` {n_ctx, buffers, buffer_plan, amx, template}
- ``chat`` (request: a ChatRequest as JSON): ``piece``…, then ``result`` (a Reply)
- ``complete`` (system, turns, params, json_schema): ``result`` (the text)
- ``count_tokens`` (text): ``result`` (an int)
- ``info``, ``perf``: the model's metadata, llama.cpp's perf counters (for ``haven bench``)
- ``raw_decode`` (prompt, max_tokens, seed): plain llama-cpp-python decode speed, the
  benchmark's baseline, measured inside the model process
- ``unload``: ``result``
- ``cancel`` (id of a request, or null for whatever runs now): no answer; handled at once,
  outside the queue, by the model process's reader thread
- ``shutdown``: the process exits

Model process → Haven: ``{"id": N, "ev": "progress"|"token"|"piece"|"result"|"error", ...}``
(``token``: a chat's first token is sampled, before it may make any text);
``error`` carries ``kind`` ("engine": a clear one-line failure, "cancelled", "internal")
and ``message``. The first thing the model process sends is ``{"ev": "hello", "pid": N}``.

Requests run one at a time, in order, on the model process's main thread; ``cancel``
bypasses the queue and sets a flag that llama.cpp's abort callback reads during prompt
evaluation and the generation loop reads between tokens.

Room for the latency work (issue 13), on this shape: a ``prefill`` op evaluates a draft
prompt in small chunks and yields between chunks whenever another request is waiting
(``Worker.has_waiting()``); ``save_state``/``restore_state`` keep the conversation's KV
state in the model process around a side job; every result that evaluates a prompt reports
``prompt_tokens`` and ``evaluated_prompt_tokens`` (reused = the difference).
"""

from __future__ import annotations

import json
from multiprocessing.connection import Connection
from typing import Any

MAX_MESSAGE = 64 * 1024 * 1024  # a frame larger than this is a broken peer


def send(conn: Connection, message: dict[str, Any]) -> None:
    conn.send_bytes(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode())


def receive(conn: Connection) -> dict[str, Any]:
    """The next message. Raises EOFError when the other side is gone."""
    data = conn.recv_bytes(MAX_MESSAGE)
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("a protocol message must be an object")
    return message
