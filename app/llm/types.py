"""Plain data passed to and from the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.7
    top_p: float = 0.9
    repeat_penalty: float = 1.1
    max_tokens: int = 384
    seed: int = -1


@dataclass(frozen=True)
class ChatRequest:
    """What to send the model: the system prompt, the running summary, the unfolded turns.

    ``turns`` ends with the user's newest message. ``fold_instruction`` is the prompt
    used to fold older turns into the summary when they no longer fit the context.
    """

    system: str
    turns: tuple[Turn, ...]
    summary: str | None = None
    fold_instruction: str = ""
    params: GenerationParams = field(default_factory=GenerationParams)


@dataclass(frozen=True)
class ReplyChunk:
    text: str


@dataclass
class Reply:
    """How a reply ended.

    ``status`` is "complete", "cancelled" or "error"; ``summary`` and ``folded`` tell the
    caller that ``folded`` of the oldest turns were folded into a new running summary,
    which the caller should keep (the engine keeps nothing between requests).
    """

    text: str = ""
    status: str = "complete"
    error: str | None = None
    summary: str | None = None
    folded: int = 0
    prompt_tokens: int = 0
    evaluated_prompt_tokens: int = 0
    generated_tokens: int = 0
    time_to_first_token: float | None = None
    fold_seconds: float = 0.0
