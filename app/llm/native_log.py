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

_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR,
           4: logging.DEBUG, 5: logging.DEBUG}


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
            if message:
                log.log(_LEVELS.get(level, logging.DEBUG), message)

        _callback = _to_logging
        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
        _installed = True
