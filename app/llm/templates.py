"""Resolve and apply a model's chat template (in the model process).

Order: the GGUF's own ``tokenizer.chat_template``; else a named chat format (from the
catalog, the import, or the user); else a clear refusal. llama-cpp-python would silently
fall back to ``llama-2``, which garbles most other models (Gemma among them), so Haven
never lets it choose.

A GGUF's template is code from the model file, so it runs in a bounded sandbox: Jinja's
immutable sandbox (no attribute tricks), ``range()`` capped, string and list repetition
capped, and each render under a time limit and an address-space allowance
(:func:`limits`). It is checked when the model loads: a template that does not compile, or
cannot render a short sample conversation within the limits, fails the load with one clear
line. Error messages name the error's type only, never its text, which can quote a message.
"""

from __future__ import annotations

import json
import resource
import signal
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.llm.types import Turn
from app.modelhub.formats import FORMAT_NAMES, known_formats  # noqa: F401 - one list, below both

RENDER_SECONDS = 3.0
RENDER_EXTRA_BYTES = 1 << 30  # address space a render may add to what the process holds
MAX_RANGE = 10_000
MAX_REPEAT = 1_000_000  # characters or items one `*` may produce



class TemplateError(Exception):
    pass


class TemplateLimit(TemplateError):
    """A render ran past its time or memory limit."""


def _named_formats() -> dict[str, Callable[..., Any]]:
    from llama_cpp import llama_chat_format as lcf

    def format_phi3(messages, **kwargs) -> lcf.ChatFormatterResponse:
        prompt = ""
        for message in messages:
            prompt += f"<|{message['role']}|>\n{message['content']}<|end|>\n"
        prompt += "<|assistant|>\n"
        return lcf.ChatFormatterResponse(prompt=prompt, stop=["<|end|>", "<|endoftext|>"])

    return {
        "chatml": lcf.format_chatml,
        "llama-3": lcf.format_llama3,
        "llama-2": lcf.format_llama2,
        "gemma": lcf.format_gemma,
        "mistral-instruct": lcf.format_mistral_instruct,
        "zephyr": lcf.format_zephyr,
        "qwen": lcf.format_qwen,
        "phi3": format_phi3,
        "alpaca": lcf.format_alpaca,
    }


@dataclass(frozen=True)
class Rendered:
    prompt: str
    stop: tuple[str, ...]
    includes_bos: bool


@dataclass(frozen=True)
class _Response:
    prompt: str
    stop: list[str]
    added_special: bool = True


def _sandbox():
    import jinja2
    import jinja2.ext
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class IgnoreGenerationTags(jinja2.ext.Extension):
        """Pass-through for HuggingFace's ``{% generation %}`` tag (as llama-cpp-python)."""

        tags = {"generation"}

        def parse(self, parser):
            parser.stream.skip(1)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    def bounded_range(*args):
        sized = range(*args)
        if len(sized) > MAX_RANGE:
            raise SecurityError("range too big")
        return sized

    class Bounded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context, operator, left, right):
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if (isinstance(seq, (str, list, tuple)) and isinstance(n, int)
                            and len(seq) * max(n, 0) > MAX_REPEAT):
                        raise SecurityError("repetition too big")
            if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
                raise SecurityError("power too big")
            return super().call_binop(context, operator, left, right)

    env = Bounded(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True,
                  extensions=[IgnoreGenerationTags, jinja2.ext.loopcontrols])
    env.globals["range"] = bounded_range

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env.filters["tojson"] = tojson
    return env


class _GGUFFormatter:
    """A GGUF chat template, compiled once in the bounded sandbox."""

    def __init__(self, template: str, eos: str, bos: str) -> None:
        import jinja2

        try:
            self._template = _sandbox().from_string(template)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"the chat template inside this model file has a syntax error (line "
                f"{exc.lineno}), so Haven cannot use it; download the model again or choose "
                "another one") from None
        except Exception as exc:
            raise TemplateError(
                f"the chat template inside this model file cannot be read "
                f"({type(exc).__name__}); download the model again or choose another one"
            ) from None
        self._eos, self._bos = eos, bos

    def __call__(self, *, messages: list[dict]) -> _Response:
        def raise_exception(message: str):
            raise ValueError("the template refused the conversation")

        def strftime_now(fmt: str) -> str:
            return datetime.now().strftime(fmt)

        with limits():
            try:
                prompt = self._template.render(
                    messages=messages, eos_token=self._eos, bos_token=self._bos,
                    raise_exception=raise_exception, add_generation_prompt=True,
                    strftime_now=strftime_now, tools=None, functions=None,
                )
            except TemplateLimit:
                raise
            except MemoryError:
                raise TemplateLimit("the model's chat template used too much memory") from None
            except RecursionError:
                raise TemplateLimit("the model's chat template recursed too deeply") from None
            except Exception as exc:
                # the error's text can quote the conversation: name its type only
                raise TemplateError(
                    f"the model's chat template failed ({type(exc).__name__})") from None
        return _Response(prompt=prompt, stop=[self._eos] if self._eos else [])


class _Timeout(BaseException):
    pass


@contextmanager
def limits(seconds: float = RENDER_SECONDS, extra_bytes: int = RENDER_EXTRA_BYTES):
    """Bound what runs inside: a time limit (SIGALRM, main thread only) and an address-space
    allowance over what the process holds now (Linux). Raises :class:`TemplateLimit`."""
    on_main = threading.current_thread() is threading.main_thread()
    previous_handler = None
    old_limit = None
    if on_main:
        def _expired(_signum, _frame):
            raise _Timeout()

        previous_handler = signal.signal(signal.SIGALRM, _expired)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        used = _address_space()
        if used:
            old_limit = resource.getrlimit(resource.RLIMIT_AS)
            cap = used + extra_bytes
            if old_limit[1] != resource.RLIM_INFINITY:
                cap = min(cap, old_limit[1])
            resource.setrlimit(resource.RLIMIT_AS, (cap, old_limit[1]))
    except (OSError, ValueError):
        old_limit = None
    try:
        yield
    except _Timeout:
        raise TemplateLimit("the model's chat template took too long to render") from None
    finally:
        if old_limit is not None:
            try:
                resource.setrlimit(resource.RLIMIT_AS, old_limit)
            except (OSError, ValueError):
                pass
        if on_main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_handler)


def _address_space() -> int | None:
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pages * resource.getpagesize()


SAMPLE = [{"role": "user", "content": "Hello."}, {"role": "assistant", "content": "Hi."},
          {"role": "user", "content": "How are you?"}]


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
            template = cls(_GGUFFormatter(gguf_template, eos, bos), "gguf")
            try:
                template._formatter(messages=SAMPLE)
            except TemplateLimit as exc:
                raise TemplateError(f"{exc} (checked when the model loaded), so Haven cannot "
                                    "use this model") from None
            except TemplateError:
                raise TemplateError(
                    "the chat template inside this model file cannot format a simple "
                    "conversation, so Haven cannot use this model") from None
            return template
        if chat_format:
            formats = _named_formats()
            if chat_format not in formats:
                raise TemplateError(
                    f"unknown chat format {chat_format!r}; Haven knows: "
                    + ", ".join(known_formats())
                )
            return cls(formats[chat_format], f"format:{chat_format}")
        raise TemplateError(
            "this model has no chat template and no chat format was given, so Haven "
            "cannot talk to it correctly; import it again and say which chat format it "
            "uses (e.g. chatml, llama-3, gemma)"
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
