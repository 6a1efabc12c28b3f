"""Route llama.cpp's C-level log into Python logging (and so into Haven's log file).

llama-cpp-python installs a callback that prints to stderr; with ``verbose=False`` it
still printed e.g. a KV-cache line, which tears a Textual screen. Haven replaces it
once per process with one that only logs.
"""

from __future__ import annotations

import ctypes
import logging
import threading

_installed = False
_lock = threading.Lock()
_callback = None  # keep a reference: ctypes callbacks must outlive their use
log = logging.getLogger("haven.llama")

# ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (goes on with the last)
_LEVELS = {0: logging.INFO, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING,
           4: logging.ERROR}
_last_level = [logging.INFO]


def install() -> None:
    global _installed, _callback
    with _lock:
        if _installed:
            return
        import llama_cpp

        @llama_cpp.llama_log_callback
        def _to_logging(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            try:
                message = text.decode("utf-8", errors="replace").rstrip()
            except Exception:  # never raise into C
                return
            if level != 5:
                _last_level[0] = _LEVELS.get(level, logging.INFO)
            if message:
                log.log(_last_level[0], message)

        _callback = _to_logging
        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
        _installed = True
