"""Haven's own prompt, evaluated once and kept on disk: the next start loads it instead.

The first message of a session waits for the model to read the system prompt, and on a
laptop the companion prompt alone is several seconds of it. That part is the same for
everyone (Haven's words from ``prompts/companion.md``, never a person's), so its KV cache is
saved after it is first evaluated and loaded at the next start, when the cache is empty.
A request says how much of its system prompt is shared this way (``ChatRequest.
shared_prefix``); only those tokens are ever saved. The file is keyed by the model file,
llama-cpp-python's version and the tokens themselves, so a different model, build or prompt
never loads it. A file that fails to load is deleted; one that is being loaded is renamed
first, so a crash while loading leaves nothing to crash on at the next start.
:class:`PromptCache` is a part of :class:`app.llm.worker.Worker`.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
from pathlib import Path

from app.llm.types import ChatRequest, Turn
from app.llm.worker_shared import CONVERSATION, DRAFT_MARK, PARKED, common_prefix

log = logging.getLogger("haven.model")

MIN_TOKENS = 32  # a shorter shared prefix is not worth a file
KEEP_FILES = 4  # the newest few (one per model and prompt); older ones are removed
SUFFIX = ".kv"


class PromptCache:
    """Load or save the KV cache of a request's shared prefix (a part of the worker)."""

    _prompt_cache: Path | None = None
    _model_identity: str = ""
    _shared: tuple[str, list[int]] = ("", [])  # the last shared text and its tokens

    def _shared_tokens(self, request: ChatRequest) -> list[int]:
        """The tokens of the rendered prompt that come from the shared part of the system
        prompt only (less one token, which may merge with what follows). The same text
        comes with every request, so its tokens are kept (until the next model load)."""
        if not request.shared_prefix or self._template is None:
            return []
        shared = request.system[: request.shared_prefix]
        if shared != self._shared[0]:
            tokens = self._tokens_before_mark(shared + DRAFT_MARK, [Turn("user", "…")]) or []
            self._shared = (shared, tokens if len(tokens) >= MIN_TOKENS else [])
        return self._shared[1]

    def _cache_file(self, tokens: list[int]) -> Path | None:
        if self._prompt_cache is None or not self._model_identity:
            return None
        key = hashlib.sha256(json.dumps([self._model_identity, tokens]).encode()).hexdigest()
        return self._prompt_cache / f"{key[:40]}{SUFFIX}"

    def _restore_shared(self, request: ChatRequest, build: bool) -> str:
        """With an empty cache, load the shared prefix from disk ("loaded"); with ``build``,
        evaluate it (preemptible) and save it when that is done ("saved"). Returns what
        happened ("" for nothing, "preempted" if a build gave way to another request)."""
        llm = self._llm
        if llm is None or self._prompt_cache is None or (llm.n_tokens and not build):
            return ""  # a reply only ever loads into an empty cache
        tokens = self._shared_tokens(request)
        path = self._cache_file(tokens) if tokens else None
        if path is None:
            return ""
        cached = llm.n_tokens
        same = common_prefix(llm.input_ids[:cached], tokens)
        if cached >= len(tokens):
            # already there (a reply evaluated it, say, before a prefill could finish it)
            if same == len(tokens) and build and not path.exists():
                return "saved" if self._save_state(path, tokens) else ""
            return ""
        if same < cached:
            return ""  # the cache holds something else
        if cached == 0 and path.exists() and self._load_state(path, tokens):
            return "loaded"
        if not build:
            return ""
        # an earlier build that gave way to another request is continued here
        done = self._prefill(tokens)
        if done["status"] != "done":
            return done["status"]
        if llm.n_tokens == len(tokens) and self._save_state(path, tokens):
            return "saved"
        return ""

    def _load_state(self, path: Path, tokens: list[int]) -> bool:
        import llama_cpp

        llm = self._llm
        loading = path.with_suffix(".loading")
        try:
            os.replace(path, loading)
        except OSError:
            return False
        capacity = len(tokens) + 1
        found = (llama_cpp.llama_token * capacity)()
        count = ctypes.c_size_t(0)
        read = llama_cpp.llama_state_seq_load_file(
            llm._ctx.ctx, str(loading).encode(), CONVERSATION, found, capacity, ctypes.byref(count))
        if read == 0 or list(found[: count.value]) != tokens:
            log.warning("a saved prompt cache did not load; it is evaluated again")
            self._forget_from(0)
            loading.unlink(missing_ok=True)
            return False
        try:
            os.replace(loading, path)
        except OSError:  # another Haven tidied it away meanwhile: it saves its own
            pass
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        llm._requires_eval = True  # no logits were saved: a reply evaluates its last token
        log.info("loaded Haven's prompt from the prompt cache (%d tokens)", len(tokens))
        return True

    def _save_state(self, path: Path, tokens: list[int]) -> bool:
        import llama_cpp

        folder = path.parent
        memory = llama_cpp.llama_get_memory(self._llm._ctx.ctx)
        seq = CONVERSATION
        if llama_cpp.llama_memory_seq_pos_min(memory, CONVERSATION) > 0:
            return False  # a sliding-window cache that has dropped the prompt's start
        if self._llm.n_tokens > len(tokens):  # the conversation goes on: save its start only
            seq = PARKED
            llama_cpp.llama_memory_seq_rm(memory, PARKED, -1, -1)
            llama_cpp.llama_memory_seq_cp(memory, CONVERSATION, PARKED, 0, len(tokens))
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial = path.with_suffix(f".{os.getpid()}.partial")  # two Havens never share one
            ids = (llama_cpp.llama_token * len(tokens))(*tokens)
            written = llama_cpp.llama_state_seq_save_file(
                self._llm._ctx.ctx, str(partial).encode(), seq, ids, len(tokens))
            if not written:
                partial.unlink(missing_ok=True)
                return False
            os.chmod(partial, 0o600)
            os.replace(partial, path)
            for old in sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime)[:-KEEP_FILES]:
                old.unlink(missing_ok=True)
            for stray in [*folder.glob("*.loading"), *folder.glob("*.partial")]:
                if stray != partial:  # left by a crash while loading or saving
                    stray.unlink(missing_ok=True)
            return True
        except OSError as exc:  # a full disk, a read-only folder: only a head start lost
            log.info("prompt cache not saved (%s); not tried again until the next load",
                     type(exc).__name__)
            self._prompt_cache = None
            return False
        finally:
            if seq == PARKED:
                llama_cpp.llama_memory_seq_rm(memory, PARKED, -1, -1)


def model_identity(path: Path) -> str:
    """What a saved prompt cache must match: the model file (name, size, modification time)
    and the llama-cpp-python build that computed it."""
    import llama_cpp

    stat = path.stat()
    return json.dumps([path.name, stat.st_size, stat.st_mtime_ns, llama_cpp.__version__])
