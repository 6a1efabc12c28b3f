"""The chat formats Haven can render by name (for a GGUF without a template of its own).

Kept here, below the engine, so the model hub checks a format name without importing
the engine (``app.llm.templates`` renders them)."""

from __future__ import annotations

FORMAT_NAMES = ("alpaca", "chatml", "gemma", "llama-2", "llama-3", "mistral-instruct", "phi3",
                "qwen", "zephyr")


def known_formats() -> list[str]:
    return sorted(FORMAT_NAMES)


def unknown_format(chat_format: str | None) -> str | None:
    """One line when ``chat_format`` is given and is not a format Haven renders; None when
    it is one (or none was given). The one check for an import and a download."""
    if chat_format is None or chat_format in FORMAT_NAMES:
        return None
    return f"unknown chat format {chat_format!r}; known: {', '.join(known_formats())}"
