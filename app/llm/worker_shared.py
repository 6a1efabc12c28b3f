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
# A prefill evaluates this many tokens at a time and looks for waiting requests in between,
# so a chat (or anything else) waits at most one chunk: 16 tokens is about 0.25 s on the
# Llama-3.2-3B shape with 2 threads (64 was up to a second). See README "Performance".
PREFILL_CHUNK = 16
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
    )


def common_prefix(cached: Sequence[int], tokens: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    import numpy as np

    n = min(len(cached), len(tokens))
    if n == 0:
        return 0
    differ = np.flatnonzero(np.asarray(cached[:n]) != np.asarray(tokens[:n]))
    return int(differ[0]) if differ.size else n

