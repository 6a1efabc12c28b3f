"""Haven's log file, and keeping native libraries off the terminal.

llama.cpp and SQLCipher write to file descriptor 2 from C. Under the Textual app
(and in ``haven chat``) that would tear the screen, so :func:`capture_native_stderr`
points fd 2 at the log file and gives Python's ``sys.stderr`` a private duplicate
of the terminal. The log never contains what the user writes: Haven logs events
and figures, not text.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path

from app.paths import PRIVATE_FILE

log = logging.getLogger("haven")

_state_lock = threading.Lock()
_configured_file: Path | None = None
_native_captured = False


def setup_logging(log_file: Path, level: int = logging.INFO) -> None:
    """Send Haven's log (and the libraries' Python logging) to ``log_file``, owner-only."""
    global _configured_file
    with _state_lock:
        if _configured_file == log_file:
            return
        log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_file.touch(mode=PRIVATE_FILE, exist_ok=True)
        os.chmod(log_file, PRIVATE_FILE)
        handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=1_000_000, backupCount=2, encoding="utf-8"
        )
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        root = logging.getLogger()
        for old in [h for h in root.handlers if getattr(h, "_haven", False)]:
            root.removeHandler(old)
            old.close()
        handler._haven = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(level)
        # Libraries that warn on stderr through `warnings` go to the log instead.
        logging.captureWarnings(True)
        _configured_file = log_file


def capture_native_stderr(log_file: Path) -> None:
    """Point fd 2 at the log file; keep Python's stderr on the terminal.

    After this, anything C code prints to stderr lands in the log, while Haven's own
    messages (and Textual, which draws on ``sys.__stderr__``) still reach the user.
    """
    global _native_captured
    with _state_lock:
        if _native_captured:
            return
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        terminal_fd = os.dup(2)
        os.set_inheritable(terminal_fd, False)
        log_fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        terminal = io.TextIOWrapper(
            io.FileIO(terminal_fd, "w", closefd=True),
            encoding=getattr(sys.__stderr__, "encoding", None) or "utf-8",
            errors="backslashreplace",
            line_buffering=True,
        )
        sys.stderr = terminal
        sys.__stderr__ = terminal  # Textual's driver draws on sys.__stderr__
        _native_captured = True


class LogWriter(io.TextIOBase):
    """A text stream that turns writes into log lines (for libraries that print)."""

    def __init__(self, logger: logging.Logger, level: int = logging.INFO) -> None:
        self._logger = logger
        self._level = level
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            if line.strip():
                self._logger.log(self._level, line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self._buffer.strip():
            self._logger.log(self._level, self._buffer.rstrip())
        self._buffer = ""


class ThreadRoutedStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` stand-in: writes from chosen threads go to the log.

    llama-cpp-python prints diagnostics with ``print(..., file=sys.stderr)`` from the
    engine's worker thread; those belong in the log, while the main thread's output
    (the line-mode chat, error messages) must still reach the user.
    """

    def __init__(self, original, routed: LogWriter) -> None:
        self._original = original
        self._routed = routed
        self._threads: set[int] = set()

    def route(self, thread_id: int) -> None:
        self._threads.add(thread_id)

    def _target(self):
        return self._routed if threading.get_ident() in self._threads else self._original

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def fileno(self) -> int:
        return self._original.fileno()

    def isatty(self) -> bool:
        return self._original.isatty()

    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")


_routed_lock = threading.Lock()


def route_thread_output_to_log(thread_id: int, logger_name: str = "haven.native") -> None:
    """Make prints from ``thread_id`` (on stdout or stderr) go to the log."""
    with _routed_lock:
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if not isinstance(current, ThreadRoutedStream):
                current = ThreadRoutedStream(current, LogWriter(logging.getLogger(logger_name)))
                setattr(sys, name, current)
            current.route(thread_id)
