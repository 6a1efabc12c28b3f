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
    # How many leading characters of ``system`` are the same for everyone (Haven's own
    # prompt, never a person's words): their KV cache may be kept on disk for the next start.
    shared_prefix: int = 0


@dataclass
class Reply:
    """How a reply (or a side job's text) ended.

    ``status`` is "complete", "cancelled" or "error"; ``summary`` and ``folded`` tell the
    caller that ``folded`` of the oldest turns were folded into a new running summary,
    which the caller should keep (the engine keeps nothing between requests).

    ``prompt_tokens`` is the whole prompt; ``evaluated_prompt_tokens`` what llama.cpp had to
    evaluate for it (the rest was reused from the KV cache: a previous turn, a prefill);
    ``prompt_seconds`` how long that took. ``kept`` says how a side job left the
    conversation's cache alone: "extended" (its prompt continued the conversation's),
    "sequence" (the conversation waited in a second KV sequence), "copy" (its KV state was
    copied out and back, in memory), or "" (a chat turn, or nothing was cached).
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
    prompt_seconds: float = 0.0
    kept: str = ""

    @property
    def reused_prompt_tokens(self) -> int:
        return self.prompt_tokens - self.evaluated_prompt_tokens


@dataclass(frozen=True)
class Prefill:
    """What a prefill did. ``status``: "done" (the prefix is in the KV cache), "preempted"
    (another request came; what was evaluated so far stays cached), "superseded" (a newer
    prefill was already waiting), "too long" (the prefix does not fit the context: the next
    chat folds), "cancelled". ``threads``: the CPU threads it evaluated with (one fewer
    than a reply's while the person types, when the model's threads take every core)."""

    status: str
    prompt_tokens: int = 0
    evaluated_tokens: int = 0
    reused_tokens: int = 0
    seconds: float = 0.0
    threads: int = 0
    prompt_cache: str = ""  # "loaded" or "saved": Haven's prompt came from, or went to, disk


@dataclass(frozen=True)
class Fold:
    """A fold done ahead of time (:meth:`app.llm.Engine.fold`). ``folded`` of the oldest
    turns now live in ``summary``, which the caller keeps as the running summary (as for a
    :class:`Reply` that folded); 0 when the conversation still fits. ``status``: "done",
    "not needed", "preempted" (a chat came first; nothing changed), "cancelled"."""

    status: str
    folded: int = 0
    summary: str | None = None
    seconds: float = 0.0
    prompt_tokens: int = 0
    prefill: Prefill | None = None
