"""The context budget: what of a conversation fits, and what gets folded into the summary.

Pure logic over a token counter, so it is testable without a model. The prompt is
system prompt + running summary + as many recent turns as fit, leaving room for the
reply. When history no longer fits, the oldest turns are folded into the summary:
enough of them that the rest fills about half the budget, so several more turns can
be appended (and llama.cpp's KV cache reused) before the next fold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from app.llm.types import Turn

SUMMARY_HEADING = "What we have talked about so far in this conversation:"
CLIP_NOTE = "\n[… the middle of this long message is not shown to the model …]\n"


def compose_system(system: str, summary: str | None) -> str:
    if not summary:
        return system
    return f"{system}\n\n{SUMMARY_HEADING}\n{summary.strip()}"


def turns_to_fold(
    roles: Sequence[str], turn_tokens: Sequence[int], fixed_tokens: int, limit: int,
    summary_reserve: int,
) -> int:
    """How many of the oldest turns to fold so the rest fits in about half of ``limit``.

    ``turn_tokens[i]`` is the cost of turn i (whose role is ``roles[i]``); ``fixed_tokens``
    the system prompt and template overhead. Always keeps the newest turn, and the kept
    history starts with a user turn, which every chat template accepts.
    """
    target = max((limit - fixed_tokens - summary_reserve) // 2, 1)
    kept = 0
    start = len(turn_tokens)
    while start > 0 and kept + turn_tokens[start - 1] <= target:
        kept += turn_tokens[start - 1]
        start -= 1
    start = min(start, len(turn_tokens) - 1)
    while start < len(roles) - 1 and roles[start] != "user":
        start += 1
    return start


def clip_middle(text: str, tokens: list[int], keep: int, detokenize: Callable[[list[int]], str]) -> str:
    """Keep the first and last halves of an over-long message (what the model sees only)."""
    if len(tokens) <= keep:
        return text
    half = max(keep // 2, 1)
    return detokenize(tokens[:half]) + CLIP_NOTE + detokenize(tokens[-half:])


def fold_transcript(turns: Sequence[Turn]) -> str:
    lines = []
    for turn in turns:
        who = "Person" if turn.role == "user" else "Haven"
        lines.append(f"{who}: {turn.content.strip()}")
    return "\n\n".join(lines)
