"""What the model process's parts share: its limits, the KV sequences, the cut mark in a
rendered prompt, its exceptions and the request decoding.

Kept apart from :mod:`app.llm.worker` because the model process runs that module as
``__main__``: the parts (:mod:`~app.llm.model_loading`, :mod:`~app.llm.kv_cache`,
:mod:`~app.llm.generation`) import these from here, so there is one of each class.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.llm.types import ChatRequest, GenerationParams, Turn

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


def chat_request_from_json(data: dict) -> ChatRequest:
    return ChatRequest(
        system=data["system"],
        turns=tuple(Turn(t["role"], t["content"]) for t in data["turns"]),
        summary=data.get("summary"),
        fold_instruction=data.get("fold_instruction", ""),
        params=GenerationParams(**data["params"]),
        shared_prefix=int(data.get("shared_prefix", 0)),
    )


def common_prefix(cached: Sequence[int], tokens: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    import numpy as np

    n = min(len(cached), len(tokens))
    if n == 0:
        return 0
    differ = np.flatnonzero(np.asarray(cached[:n]) != np.asarray(tokens[:n]))
    return int(differ[0]) if differ.size else n

