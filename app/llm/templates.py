"""Resolve and apply a model's chat template.

Order: the GGUF's own ``tokenizer.chat_template``; else a named chat format (from the
catalog, the import, or the user); else a clear refusal. llama-cpp-python would silently
fall back to ``llama-2``, which garbles most other models (Gemma among them), so Haven
never lets it choose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llama_cpp import llama_chat_format as lcf

from app.llm.types import Turn


class TemplateError(Exception):
    pass


def _format_phi3(messages, **kwargs) -> lcf.ChatFormatterResponse:
    prompt = ""
    for message in messages:
        prompt += f"<|{message['role']}|>\n{message['content']}<|end|>\n"
    prompt += "<|assistant|>\n"
    return lcf.ChatFormatterResponse(prompt=prompt, stop=["<|end|>", "<|endoftext|>"])


NAMED_FORMATS: dict[str, Callable[..., lcf.ChatFormatterResponse]] = {
    "chatml": lcf.format_chatml,
    "llama-3": lcf.format_llama3,
    "llama-2": lcf.format_llama2,
    "gemma": lcf.format_gemma,
    "mistral-instruct": lcf.format_mistral_instruct,
    "zephyr": lcf.format_zephyr,
    "qwen": lcf.format_qwen,
    "phi3": _format_phi3,
    "alpaca": lcf.format_alpaca,
}


def known_formats() -> list[str]:
    return sorted(NAMED_FORMATS)


@dataclass(frozen=True)
class Rendered:
    prompt: str
    stop: tuple[str, ...]
    includes_bos: bool


class ChatTemplate:
    """Turns (system, turns) into the exact prompt text the model expects."""

    def __init__(self, formatter, source: str) -> None:
        self._formatter = formatter
        self.source = source  # "gguf" or "format:<name>"

    @classmethod
    def resolve(
        cls, gguf_template: str | None, chat_format: str | None, eos: str, bos: str,
        eos_id: int,
    ) -> ChatTemplate:
        if gguf_template:
            formatter = lcf.Jinja2ChatFormatter(
                template=gguf_template, eos_token=eos, bos_token=bos, stop_token_ids=[eos_id]
            )
            return cls(formatter, "gguf")
        if chat_format:
            if chat_format not in NAMED_FORMATS:
                raise TemplateError(
                    f"unknown chat format {chat_format!r}; Haven knows: "
                    + ", ".join(known_formats())
                )
            return cls(NAMED_FORMATS[chat_format], f"format:{chat_format}")
        raise TemplateError(
            "this model has no chat template and no chat format was given, so Haven "
            "cannot talk to it correctly; import it again with --chat-format "
            "(e.g. chatml, llama-3, gemma)"
        )

    def render(self, system: str, turns: list[Turn] | tuple[Turn, ...]) -> Rendered:
        messages = [{"role": t.role, "content": t.content} for t in turns]
        if system:
            result = self._formatter(messages=[{"role": "system", "content": system}, *messages])
            if system not in result.prompt:
                # The format has no system role (Gemma's drops it): fold it into the first
                # user turn, as those models' own templates do.
                merged = [dict(m) for m in messages]
                first_user = next((m for m in merged if m["role"] == "user"), None)
                if first_user is None:
                    merged.insert(0, {"role": "user", "content": system})
                else:
                    first_user["content"] = f"{system}\n\n{first_user['content']}"
                result = self._formatter(messages=merged)
        else:
            result = self._formatter(messages=messages)
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return Rendered(
            prompt=result.prompt,
            stop=tuple(s for s in stop if s),
            includes_bos=bool(getattr(result, "added_special", False)),
        )
