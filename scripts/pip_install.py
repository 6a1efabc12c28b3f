"""``pip install`` that says what it is doing: used by ``make run`` and ``make test``.

The first install compiles llama.cpp (llama-cpp-python has no wheel for every machine), which
takes about six minutes on a 2-core laptop. Run quietly, that looks like a hang. This runs pip
verbosely into a log file and shows, instead of pip's output:

- what is happening, in one line that changes (on a terminal) or a line a minute (in a log);
- when llama.cpp starts compiling, that it is happening and roughly how long it takes —
  only then, so an install from pip's cache never claims a long wait;
- the compiler's progress ("[ 42%] Building ..." from make, "[12/150] ..." from ninja);
- where the full log is, and its last lines, if the install fails.

Standard library only: it runs in a fresh virtual environment before anything is installed.

    python scripts/pip_install.py [--log FILE] PIP_INSTALL_ARGS...
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

LONG_BUILD = ("Compiling llama.cpp, the engine Haven's model runs on. This happens once and "
              "takes about 6 minutes on a 2-core laptop (longer on a slower one); pip keeps "
              "the result, so later installs skip it.")
TICK_SECONDS = 60  # how often a line is printed when the output is not a terminal

_COLLECT = re.compile(r"^\s*(?:Collecting|Obtaining|Processing)\s+(\S+)")
_BUILD_DEPS = re.compile(r"^\s*Installing build dependencies")
# "... (pyproject.toml): started", not the "finished with status ..." line that follows it.
_BUILD = re.compile(r"^\s*Building (?:wheel|editable) for (\S+) \((?!.*: finished)")
_BUILT = re.compile(r"^\s*Created (?:wheel|editable wheel) for (\S+):")
# Unindented: pip's own, not the build tools it installs for a package (indented lines).
_INSTALL = re.compile(r"^Installing collected packages")
_DONE = re.compile(r"^Successfully installed")
_MAKE_PERCENT = re.compile(r"^\s*\[\s*(\d{1,3})%\]")
_NINJA_STEP = re.compile(r"^\s*\[(\d+)/(\d+)\]")


def _is_llama(name: str) -> bool:
    return re.sub(r"[-_.]+", "-", name.lower()).startswith("llama-cpp-python")


def _short(requirement: str) -> str:
    """``textual>=1.0,<9`` -> ``textual``; a path or URL -> its last part; a wheel or
    sdist file -> its project name."""
    name = re.split(r"[<>=!~;\[ ]", requirement.rstrip("/").rsplit("/", 1)[-1], maxsplit=1)[0]
    if name.endswith((".whl", ".tar.gz", ".zip")):  # a file: its project name comes first
        name = name.split("-", 1)[0]
    return name or requirement


def elapsed_text(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass
class BuildProgress:
    """What pip's verbose output says is happening, in plain words."""

    phase: str = "starting pip"
    percent: int | None = None
    compiling: bool = False
    compiled_llama: bool = False
    announcements: list[str] = field(default_factory=list)  # to print once, then cleared

    def feed(self, line: str) -> None:
        if (self.compiling or self.phase.startswith("building")) and self._progress(line):
            return
        if m := _BUILD.match(line):
            name = m.group(1)
            self.percent = None
            if _is_llama(name) and not self.compiling:
                self.compiling = True
                self.phase = "compiling llama.cpp"
                self.announcements.append(LONG_BUILD)
            elif not _is_llama(name):
                self.phase = f"building {_short(name)}"
        elif m := _BUILT.match(line):
            if _is_llama(m.group(1)):
                self.compiling, self.compiled_llama = False, True
            self.phase, self.percent = "packing what was built", None
        elif _BUILD_DEPS.match(line):
            if not self.compiling:
                self.phase, self.percent = "getting build tools", None
        elif m := _COLLECT.match(line):
            if not self.compiling:
                self.phase, self.percent = f"getting packages ({_short(m.group(1))})", None
        elif _INSTALL.match(line):
            self.phase, self.percent, self.compiling = "installing", None, False
        elif _DONE.match(line):
            self.phase, self.percent = "done", None

    def _progress(self, line: str) -> bool:
        if m := _MAKE_PERCENT.match(line):
            value = int(m.group(1))
        elif (m := _NINJA_STEP.match(line)) and int(m.group(2)) > 1:
            value = int(m.group(1)) * 100 // int(m.group(2))
        else:
            return False
        self.percent = max(self.percent or 0, min(value, 100))  # never goes backwards
        return True

    def status(self, elapsed: float) -> str:
        percent = f" {self.percent:3d}%" if self.percent is not None else ""
        return f"  {self.phase}{percent}  ({elapsed_text(elapsed)})"


class Display:
    """One changing line on a terminal; on anything else, a line a minute at most."""

    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out, self.tty = out, tty
        self._shown = ""
        self._last_tick = 0.0
        self._last_phase = ""

    def say(self, text: str) -> None:
        self._clear()
        self.out.write(text + "\n")
        self.out.flush()

    def update(self, progress: BuildProgress, elapsed: float) -> None:
        line = progress.status(elapsed)
        if self.tty:
            width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
            line = line[:width]
            if line != self._shown:
                self.out.write("\r" + line.ljust(len(self._shown)))
                self.out.flush()
                self._shown = line
            return
        # Not a terminal (CI, a log): the compile's progress once a minute, nothing else.
        if progress.compiling and (progress.phase != self._last_phase
                                   or elapsed - self._last_tick >= TICK_SECONDS):
            self.out.write(line + "\n")
            self.out.flush()
            self._last_tick, self._last_phase = elapsed, progress.phase

    def _clear(self) -> None:
        if self.tty and self._shown:
            self.out.write("\r" + " " * len(self._shown) + "\r")
            self._shown = ""

    def close(self) -> None:
        self._clear()
        self.out.flush()


def _tail(log: Path, count: int = 15) -> list[str]:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if line.strip()][-count:]


def run(command: list[str], log: Path, out: TextIO, tty: bool,
        clock=time.monotonic) -> int:
    """Run ``command`` (pip), its output into ``log``, progress onto ``out``; pip's exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    display = Display(out, tty)
    progress = BuildProgress()
    display.say(f"Installing Haven and the packages it uses (full log: {log})")
    started = clock()
    lines: queue.Queue[str | None] = queue.Queue()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "w", encoding="utf-8", errors="replace") as log_file:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, text=True, errors="replace", env=env)

        def pump() -> None:
            assert child.stdout is not None
            for text in child.stdout:
                lines.put(text)
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            while True:
                try:
                    text = lines.get(timeout=1.0)
                except queue.Empty:
                    display.update(progress, clock() - started)
                    continue
                if text is None:
                    break
                log_file.write(text)
                progress.feed(text.rstrip("\n"))
                for message in progress.announcements:
                    display.say(message)
                progress.announcements.clear()
                display.update(progress, clock() - started)
            code = child.wait()
        except KeyboardInterrupt:
            child.terminate()
            child.wait()
            display.close()
            out.write(f"Stopped. Run the same command again to finish; the full log is {log}\n")
            return 130
    display.close()
    took = elapsed_text(clock() - started)
    if code == 0:
        out.write(f"Installed ({took}).\n")
    else:
        out.write(f"The install failed after {took} (pip exit code {code}). "
                  f"The full log is {log}; its last lines:\n")
        for line in _tail(log):
            out.write(f"    {line}\n")
        if progress.compiling:
            out.write("Compiling llama.cpp needs a C and C++ compiler (on Debian or Ubuntu: "
                      "sudo apt install build-essential).\n")
    out.flush()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--log", type=Path, default=Path(".venv/install.log"),
                        help="where pip's full output goes (default: .venv/install.log)")
    args, pip_args = parser.parse_known_args(argv)
    command = [sys.executable, "-m", "pip", "install", "-v", *pip_args]
    tty = sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
    return run(command, args.log, sys.stdout, tty)


if __name__ == "__main__":
    raise SystemExit(main())
