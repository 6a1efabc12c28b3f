"""The KV cache in the model process: reuse the longest cached prefix, evaluate the rest
in preemptible chunks, keep the conversation aside while a side job runs, and prefill
the next prompt before Enter. :class:`KVCache` is a part of :class:`app.llm.worker.Worker`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from app.llm import budget
from app.llm.worker_shared import (
    CONVERSATION,
    PARKED,
    PREFILL_CHUNK,
    PREFILL_CHUNK_MAX,
    URGENT,
    Cancelled,
    Preempted,
    chat_request_from_json,
    common_prefix,
)

log = logging.getLogger("haven.model")


class KVCache:
    """The worker's KV cache (a part of :class:`~app.llm.worker.Worker`)."""

    def _memory(self):
        import llama_cpp

        return llama_cpp.llama_get_memory(self._llm._ctx.ctx)

    def _forget_from(self, position: int) -> int:
        """Drop the conversation's cached tokens from ``position`` on; returns what is kept
        (0 if llama.cpp cannot cut this cache there)."""
        import llama_cpp

        llm = self._llm
        memory = self._memory()
        if position > 0 and not llama_cpp.llama_memory_seq_rm(memory, CONVERSATION, position, -1):
            position = 0
        if position > 0 and llama_cpp.llama_memory_seq_pos_min(memory, CONVERSATION) > 0:
            position = 0  # a sliding-window cache that has dropped its start: start over
        if position == 0:
            llama_cpp.llama_memory_seq_rm(memory, CONVERSATION, -1, -1)
        llm.n_tokens = position
        return position

    def _evaluate(self, tokens: list[int], preempt: Callable[[bool], bool] | None = None,
                  chunk: int | None = None, for_reply: bool = True) -> tuple[int, int, float]:
        """Bring the KV cache to ``tokens``: reuse the longest cached prefix and evaluate the
        rest, in chunks of ``chunk`` (llama.cpp's batch by default). Returns (reused,
        evaluated, seconds). ``for_reply``: a reply follows, so the cache must end exactly at
        ``tokens`` and hold the last token's logits (it is evaluated again if a side job or a
        prefill left the cache there). ``preempt(worked)`` is asked before each chunk
        (``worked``: a chunk has been done); when it says so, :class:`Preempted` is raised
        and what was evaluated stays cached. A cancel aborts llama.cpp mid-chunk, and so does
        a request the job yields to (see :meth:`_yielding`): that chunk is given up whole
        (llama.cpp drops its half-made cache entries), the chunks before it stay. Only the
        last chunk of a prompt a reply follows computes logits.
        """
        llm = self._llm
        cached = llm.n_tokens
        same = common_prefix(llm.input_ids[:cached], tokens)
        stale = getattr(llm, "_requires_eval", False)
        if same == len(tokens) and (not for_reply or (same == cached and not stale)):
            return same, 0, 0.0
        if same >= len(tokens):
            same = len(tokens) - 1
        if same < cached:
            same = self._forget_from(same)
        started = time.perf_counter()
        step = max(1, min(chunk or llm.n_batch, llm.n_batch))
        position = same
        try:
            while position < len(tokens):
                self._stop_if_asked()
                if preempt is not None and preempt(position > same):
                    raise Preempted()
                part = tokens[position:position + step]
                self._eval_chunk(part, logits=for_reply and position + len(part) >= len(tokens))
                position = llm.n_tokens
                if chunk:  # preemptible (a prefill, a fold): longer chunks while nothing waits
                    step = min(step * 2, PREFILL_CHUNK_MAX, llm.n_batch)
        except RuntimeError:  # llama_decode stopped by our abort callback, or a real error
            self._stop_if_asked()
            raise
        return same, len(tokens) - same, time.perf_counter() - started

    def _eval_chunk(self, part: list[int], logits: bool) -> None:
        """Evaluate ``part`` after the cached tokens. Without ``logits`` no token's output
        row is computed: a prefill never samples, and the vocabulary projection of a
        chunk's last token (128k rows on Llama 3) costs as much as several tokens."""
        llm = self._llm
        if logits:
            llm.eval(part)
            return
        llm._ctx.kv_cache_seq_rm(CONVERSATION, llm.n_tokens, -1)  # as Llama.eval does
        llm._batch.set_batch(batch=part, n_past=llm.n_tokens, logits_all=False)
        llm._batch.batch.logits[len(part) - 1] = False
        llm._ctx.decode(llm._batch)
        llm.input_ids[llm.n_tokens:llm.n_tokens + len(part)] = part
        llm.n_tokens += len(part)
        llm._requires_eval = True  # no logits for the last token: a reply evaluates it again

    @contextmanager
    def _keeping_conversation(self, tokens: list[int], room: int) -> Iterator[str]:
        """Run a side job (a draft, a summary, a fold) without costing the conversation its
        cached prompt; yields how it was kept (see :class:`Reply`.kept)."""
        import llama_cpp

        llm = self._llm
        kept = llm.n_tokens
        ids = llm.input_ids[:kept].copy()
        shared = common_prefix(ids, tokens)
        memory = self._memory()
        ctx = llm._ctx.ctx
        saved = None
        if kept == 0:
            how = ""
        elif shared >= kept:
            how = "extended"
        elif kept + len(tokens) - shared + room <= self._n_ctx:
            how = "sequence"
            llama_cpp.llama_memory_seq_rm(memory, PARKED, -1, -1)
            llama_cpp.llama_memory_seq_cp(memory, CONVERSATION, PARKED, -1, -1)
        else:
            how = "copy"
            size = llama_cpp.llama_state_seq_get_size(ctx, CONVERSATION)
            saved = (ctypes.c_uint8 * size)()
            size = llama_cpp.llama_state_seq_get_data(ctx, saved, size, CONVERSATION)
        try:
            yield how
        finally:
            if how == "extended":
                llama_cpp.llama_memory_seq_rm(memory, CONVERSATION, kept, -1)
            elif how == "sequence":
                llama_cpp.llama_memory_seq_rm(memory, CONVERSATION, -1, -1)
                llama_cpp.llama_memory_seq_cp(memory, PARKED, CONVERSATION, -1, -1)
                llama_cpp.llama_memory_seq_rm(memory, PARKED, -1, -1)
            elif how == "copy":
                llama_cpp.llama_memory_seq_rm(memory, CONVERSATION, -1, -1)
                if not llama_cpp.llama_state_seq_set_data(ctx, saved, size, CONVERSATION):
                    log.warning("could not restore the conversation's KV state")
                    kept = 0
                del saved
            if how:
                llm.input_ids[:kept] = ids[:kept]
                llm.n_tokens = kept
                if hasattr(llm, "_requires_eval"):
                    llm._requires_eval = True  # the logits are the side job's

    def _op_prefill(self, request_id: int, message: dict) -> dict:
        """Evaluate what the next chat's prompt starts with, in preemptible chunks."""
        self._require_model()
        if self._aborted():
            raise Cancelled()
        request = chat_request_from_json(message["request"])
        if "prefill" in self.waiting_ops():  # a newer draft is already waiting
            return {"status": "superseded"}
        system = budget.compose_system(request.system, request.summary)
        draft = str(message.get("draft") or "")
        tokens = self._prefix_tokens(system, request.turns, draft)
        if not tokens:
            return {"status": "done"}
        if len(tokens) > self._limit(request.params):
            return {"status": "too long", "prompt_tokens": len(tokens)}
        shared = self._restore_shared(request, build=True)  # Haven's own prompt, from disk
        if shared == "preempted":
            return {"status": "preempted", "prompt_tokens": len(tokens)}
        with self._sparing_a_core(typing=bool(draft)) as threads:
            return {**self._prefill(tokens), "threads": threads, "prompt_cache": shared}

    @contextmanager
    def _sparing_a_core(self, typing: bool) -> Iterator[int]:
        """While the person types, a prefill that would take every core leaves one to the
        app: ggml's threads spin between graph nodes, so with all cores theirs a keystroke
        waits for the scheduler. Typing adds a few tokens a second, which one thread fewer
        keeps up with easily; Enter's chat runs on all of them again."""
        import llama_cpp

        threads = self._threads
        if not typing or threads < 2 or threads < available_cores():
            yield threads
            return
        ctx = self._llm._ctx.ctx
        llama_cpp.llama_set_n_threads(ctx, threads - 1, threads - 1)
        try:
            yield threads - 1
        finally:
            llama_cpp.llama_set_n_threads(ctx, threads, threads)

    def _prefill(self, tokens: list[int]) -> dict:
        figures = {"prompt_tokens": len(tokens)}
        started = time.perf_counter()
        before = self._llm.n_tokens
        reused = common_prefix(self._llm.input_ids[:before], tokens)
        def preempt(worked: bool) -> bool:
            # anything but a newer prefill goes first at once; a newer prefill (which
            # continues this one's work) after at least one chunk, so typing never starves it
            waiting = self.waiting_ops()
            return bool(waiting - {"prefill"}) or (worked and bool(waiting))

        try:
            with self._yielding(URGENT):
                reused, evaluated, _ = self._evaluate(tokens, preempt=preempt,
                                                      chunk=PREFILL_CHUNK, for_reply=False)
            status = "done"
        except Preempted:
            evaluated = max(self._llm.n_tokens - reused, 0)
            status = "preempted"
        figures.update(status=status, evaluated_tokens=evaluated, reused_tokens=reused,
                       seconds=time.perf_counter() - started)
        return figures


def available_cores() -> int:
    """The cores this process may run on (its affinity, where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
