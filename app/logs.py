"""Haven's log file, and keeping native libraries off the terminal.

llama.cpp and SQLCipher write to file descriptor 2 from C. Under the Textual app
(and in ``haven chat``) that would tear the screen, so :func:`capture_native_stderr`
points fd 2 at the log file and gives Python's ``sys.stderr`` a private duplicate
of the terminal. The log never contains what the user writes: Haven logs events
and figures, not text.
"""

from __future__ import annotations

import errno
import io
import logging
import logging.handlers
import os
import stat
import sys
import threading
import traceback
from pathlib import Path

from app.paths import PRIVATE_FILE

log = logging.getLogger("haven")

_state_lock = threading.Lock()
_configured_file: Path | None = None
_native_captured = False


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_log(log_file: Path) -> int:
    """Open ``log_file`` for appending, owner-only, never through a symbolic link.

    A link planted in place of the log (pointing at a file of the person's, say) is
    removed, never followed: its target is neither appended to nor chmod'ed.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(log_file, flags, PRIVATE_FILE)
    except OSError as exc:
        if not (log_file.is_symlink() or exc.errno == errno.ELOOP):
            raise
        log_file.unlink()
        fd = os.open(log_file, flags | os.O_EXCL, PRIVATE_FILE)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{log_file} is not a regular file")
    os.fchmod(fd, PRIVATE_FILE)
    return fd


class SafeFormatter(logging.Formatter):
    """Tracebacks in the log keep where an error happened and its type, never its text.

    An exception's message can hold what a person wrote (a template that raises with a
    message's content, a validation error quoting its input), so it is left out, for
    Haven's own errors and every library's alike.
    """

    def format(self, record: logging.LogRecord) -> str:
        cached = record.exc_text  # another handler may have cached the full text: never use it
        record.exc_text = None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        _, value, tb = ei
        lines: list[str] = []
        seen: set[int] = set()
        chain: list[BaseException] = []
        while value is not None and id(value) not in seen:
            seen.add(id(value))
            chain.append(value)
            value = value.__cause__ or (None if value.__suppress_context__ else value.__context__)
        for index, error in enumerate(reversed(chain)):
            if index:
                lines.append("During handling of the above exception, another was raised:")
            lines.append("Traceback (most recent call last):")
            lines.extend(line.rstrip("\n") for line in traceback.format_tb(error.__traceback__))
            lines.append(f"{type(error).__module__}.{type(error).__qualname__} (message not logged)")
        return "\n".join(lines)


class _HavenLogHandler(logging.handlers.RotatingFileHandler):
    """The log file, opened without following links; a write that fails (a full disk)
    is dropped quietly rather than printing a traceback on the person's terminal."""

    def _open(self):
        return os.fdopen(open_log(Path(self.baseFilename)), "a", encoding=self.encoding or "utf-8",
                         errors="backslashreplace")

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802
        pass


def setup_logging(log_file: Path, level: int = logging.INFO) -> None:
    """Send Haven's log (and the libraries' Python logging) to ``log_file``, owner-only."""
    global _configured_file
    with _state_lock:
        if _configured_file == log_file:
            return
        log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.close(open_log(log_file))
        except OSError:
            pass  # a full disk or a read-only folder: Haven works on without a log
        handler = _HavenLogHandler(
            log_file, maxBytes=1_000_000, backupCount=2, encoding="utf-8", delay=True
        )
        handler.setFormatter(
            SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
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
        try:
            log_fd = open_log(log_file)
        except OSError:
            log_fd = os.open(os.devnull, os.O_WRONLY)  # never the terminal: it would tear the screen
        terminal_fd = os.dup(2)
        os.set_inheritable(terminal_fd, False)
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
