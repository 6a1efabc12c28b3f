"""The chat formats Haven can render by name (for a GGUF without a template of its own).

Kept here, below the engine, so the model hub checks a format name without importing
the engine (``app.llm.templates`` renders them)."""

from __future__ import annotations

FORMAT_NAMES = ("alpaca", "chatml", "gemma", "llama-2", "llama-3", "mistral-instruct", "phi3",
                "qwen", "zephyr")


def known_formats() -> list[str]:
    return sorted(FORMAT_NAMES)
