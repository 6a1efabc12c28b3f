"""Loading a model in the model process: check the GGUF, choose the weight buffers, build
the ``Llama`` with progress reports, a second KV sequence and llama.cpp's abort callback,
and resolve the chat template. :class:`Loading` is a part of :class:`app.llm.worker.Worker`.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.llm import buffers
from app.llm.prompt_cache import model_identity
from app.llm.templates import ChatTemplate, TemplateError
from app.llm.worker_shared import (
    SEQUENCES,
    Cancelled,
    EngineError,
)
from app.modelhub.gguf import GGUFError, inspect_gguf

log = logging.getLogger("haven.model")


class Loading:
    """The worker's model: load, unload, require (a part of :class:`~app.llm.worker.Worker`)."""

    def _op_load(self, request_id: int, message: dict) -> dict:
        spec = message["spec"]
        path = Path(spec["path"])
        try:
            info = inspect_gguf(path)
        except GGUFError as exc:
            raise EngineError(str(exc)) from exc
        from llama_cpp import Llama

        cpu = buffers.detect()
        plan = buffers.choose(spec.get("repack", "auto"), cpu)
        patterns = buffers.repack_patterns(buffers.read_tensors(path), cpu) if plan.pin_repack else []
        self.emit({"id": request_id, "ev": "plan", "name": plan.name, "pin_repack": plan.pin_repack})
        log.info("weight buffers: %s (%d repack patterns)", plan.describe(), len(patterns))
        self._unload()
        n_ctx = int(spec["n_ctx"])
        if info.context_length:
            n_ctx = min(n_ctx, info.context_length)
        started = time.perf_counter()
        last = [-5]

        def progress(fraction: float) -> bool:
            percent = int(fraction * 100)
            if percent >= last[0] + 5 or percent == 100:
                last[0] = percent
                self.emit({"id": request_id, "ev": "progress", "percent": percent})
            return not (self._aborted() or self._closing)

        try:
            with _model_params(progress, plan, patterns):
                llm = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=int(spec["threads"]),
                    n_threads_batch=int(spec["threads"]),
                    n_batch=512,
                    verbose=True,  # its prints go to the log with everything else here
                )
        except (ValueError, RuntimeError, OSError) as exc:
            if self._aborted():
                raise Cancelled() from None
            log.warning("loading failed: %s", type(exc).__name__)
            raise EngineError(
                f"the model file {path.name} could not be loaded (is it damaged?)") from None
        try:
            self._template = ChatTemplate.resolve(
                llm.metadata.get("tokenizer.chat_template"),
                spec.get("chat_format"),
                eos=_token_text(llm, llm.token_eos()),
                bos=_token_text(llm, llm.token_bos()),
                eos_id=llm.token_eos(),
            )
        except TemplateError as exc:
            llm.close()
            log.warning("chat template refused: %s", type(exc).__name__)
            raise
        self._install_abort(llm)
        self._llm = llm
        self._n_ctx = n_ctx
        self._threads = int(spec["threads"])
        self._prompt_cache = Path(spec["prompt_cache"]) if spec.get("prompt_cache") else None
        self._model_identity = model_identity(path)
        self._shared = ("", [])  # another model tokenizes Haven's prompt its own way
        log.info("model loaded in %.2fs (n_ctx=%d, threads=%s, template=%s)",
                 time.perf_counter() - started, n_ctx, spec["threads"], self._template.source)
        return {"n_ctx": n_ctx, "buffers": plan.describe(), "buffer_plan": plan.name,
                "amx": list(cpu.amx), "template": self._template.source}

    def _install_abort(self, llm) -> None:
        import llama_cpp

        @llama_cpp.ggml_abort_callback
        def _abort(_data: ctypes.c_void_p) -> bool:
            return self._stop_now()

        self._abort_callback = _abort  # keep alive as long as the context
        llama_cpp.llama_set_abort_callback(llm._ctx.ctx, _abort, ctypes.c_void_p(0))

    def _unload(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
            self._template = None

    def _op_unload(self, request_id: int, message: dict) -> None:
        self._unload()

    def _require_model(self) -> Any:
        if self._llm is None:
            raise EngineError("no model is loaded yet")
        return self._llm


@contextmanager
def _model_params(report: Callable[[float], bool], plan: buffers.BufferPlan, patterns: list[str]):
    """Have llama.cpp report loading progress (0.0-1.0) to ``report``, load with ``plan``,
    give the context a second KV sequence, and keep llama-cpp-python's own template
    handling away from the file's template.

    llama-cpp-python's ``Llama`` takes neither a progress callback nor buffer choices nor a
    sequence count, but builds its model and context parameters from
    ``llama_model_default_params()`` and ``llama_context_default_params()`` while loading;
    for those calls the defaults carry ours. The second sequence shares the context's cells
    (``kv_unified``: no extra memory) and holds the conversation while a side job runs.
    """
    import llama_cpp.llama_chat_format as chat_format
    import llama_cpp.llama_cpp as lc

    original = lc.llama_model_default_params
    original_context = lc.llama_context_default_params
    original_formatter = chat_format.Jinja2ChatFormatter
    keep: list[object] = []

    @lc.llama_progress_callback
    def callback(progress: float, _data: ctypes.c_void_p) -> bool:
        try:
            return bool(report(float(progress)))
        except Exception:  # never raise into C
            return True

    def with_ours():
        params = original()
        params.progress_callback = callback
        keep.append(buffers.apply(params, plan, patterns))
        return params

    def context_with_ours():
        params = original_context()
        params.n_seq_max = SEQUENCES
        params.kv_unified = True
        return params

    lc.llama_model_default_params = with_ours
    lc.llama_context_default_params = context_with_ours
    # Llama() compiles the file's chat templates with an unbounded sandbox of its own (and
    # a syntax error escapes as a Jinja exception). Haven never uses those handlers: its
    # own bounded sandbox (app.llm.templates) checks and renders the template.
    chat_format.Jinja2ChatFormatter = _UnusedFormatter
    try:
        yield
    finally:
        lc.llama_model_default_params = original
        lc.llama_context_default_params = original_context
        chat_format.Jinja2ChatFormatter = original_formatter


class _UnusedFormatter:
    def __init__(self, *args, **kwargs) -> None:
        pass

    def to_chat_handler(self):
        return None


def _token_text(llm, token_id: int) -> str:
    if token_id < 0:
        return ""
    return llm._model.token_get_text(token_id)

