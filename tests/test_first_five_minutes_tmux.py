"""A new person's first five minutes, in a real terminal (tmux, 80x24) on the real 270M
model: the notice, the country, a new passphrase, importing a model file with the picker,
the first message, a mood check-in, and the end of the session. Every screen on the way is
captured, and none may show command-line syntax (issue 16: no command line in the app)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time

import pytest

from app.paths import DataPaths
from app.settings import GenerationSettings, Settings, save_settings
from app.store import Journal
from tests.conftest import PASSPHRASE, ROOT, haven_env, require_tool
from tests.test_walkthrough import CLI_SYNTAX

pytestmark = pytest.mark.model
SESSION = "haven-first-five"
# A tmux server of this test's own (never another run's, never the person's).
SOCKET = f"haven-firstrun-{os.getpid()}"
FIRST_MESSAGE = "Hello, I had a long day at work"


class Terminal:
    def __init__(self, tmux: str) -> None:
        self.tmux = tmux
        self.seen: list[tuple[str, str]] = []  # (what the step was, the screen)

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([self.tmux, "-L", SOCKET, *args], capture_output=True, text=True,
                              check=check)

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", SESSION).stdout

    def wait_for(self, step: str, predicate, limit: float = 120) -> str:
        """The screen once ``predicate`` holds (kept, for the check at the end); a limit on
        waiting, not on speed: the machine may be busy."""
        deadline = time.monotonic() + limit
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if predicate(screen):
                self.seen.append((step, screen))
                return screen
            time.sleep(0.3)
        raise AssertionError(f"{step}: never came; the screen was:\n{screen}")

    def keys(self, *args: str) -> None:
        """One key at a time, at a person's pace: tmux delivers keys faster than anyone
        types, before the focus a key moves has arrived where the next key goes."""
        for key in args:
            self.run("send-keys", "-t", SESSION, key, check=True)
            time.sleep(0.4)

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", SESSION, "-l", text, check=True)
        time.sleep(0.4)


def journal_has(home, predicate) -> bool:
    """Read the journal beside the running app (what it has saved so far)."""
    try:
        with Journal.open(home / "journal.db", PASSPHRASE) as journal:
            return predicate(journal)
    except Exception:  # not created yet, or busy for a moment
        return False


def model_words(home) -> list[str]:
    """What the model wrote (its replies, the summary), which the app does not choose."""
    with Journal.open(home / "journal.db", PASSPHRASE) as journal:
        words = [" ".join(m.content.split()) for s in journal.sessions()
                 for m in journal.messages(s.id) if m.role == "assistant"]
        words += [" ".join((s.summary or "").split()) for s in journal.sessions()]
    return [w for w in words if w]


def cli_syntax_on(screen: str, written_by_model: list[str]) -> list[str]:
    found = []
    for line in screen.splitlines():
        text = " ".join(re.sub(r"[│┃▏▕╭╮╰╯─━▔▁█▌▐]", " ", line).split())
        if not text or any(text in words for words in written_by_model):
            continue
        if CLI_SYNTAX.search(text):
            found.append(text)
    return found


def test_the_check_sees_command_line_syntax_and_leaves_the_models_words():
    screen = ("│ or import a GGUF file you already have: haven models import PATH │\n"
              "│ Try --chat-format gemma │\n│ Models → Import… │\n│ model says --x │")
    assert cli_syntax_on(screen, ["model says --x"]) == [
        "or import a GGUF file you already have: haven models import PATH",
        "Try --chat-format gemma"]


def test_the_first_five_minutes_show_no_command_line(tmp_path, gemma_gguf):
    tmux = Terminal(require_tool("tmux", "tmux"))
    home = tmp_path / "home"
    paths = DataPaths(home).ensure()
    save_settings(paths, Settings(n_ctx=2048, threads=2, notice_acknowledged=False,
                                  generation=GenerationSettings(max_tokens=40, seed=1)))
    env = haven_env(home)
    env.pop("HAVEN_PASSPHRASE")  # the app asks, as it asks a person
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k.startswith(("HAVEN_", "HF_")))
    command = (f"cd {shlex.quote(str(ROOT))} && env {exports} TERM=xterm-256color "
               f"{sys.executable} -m app")
    tmux.run("new-session", "-d", "-s", SESSION, "-x", "80", "-y", "24", command, check=True)
    try:
        # the notice, then "I understand" (Enter) once the screen takes keys
        tmux.wait_for("welcome", lambda s: "not a therapist" in s)
        for _ in range(20):
            tmux.keys("Enter")
            time.sleep(1)
            if "Where are you?" in tmux.capture():
                break
        tmux.wait_for("country", lambda s: "Where are you?" in s)
        tmux.keys("Enter")  # keep "somewhere else"

        tmux.wait_for("passphrase", lambda s: "Create a passphrase" in s)
        time.sleep(0.5)
        tmux.type(PASSPHRASE)
        tmux.keys("Enter")
        tmux.type(PASSPHRASE)
        tmux.wait_for("passphrase typed twice", lambda s: "Create a passphrase" in s)
        tmux.keys("Enter")

        # no model yet: the models screen opens; Import… is the fourth stop (Tab x3)
        tmux.wait_for("models, first run", lambda s: "download once" in s)
        tmux.keys("Tab", "Tab", "Tab", "Enter")
        tmux.wait_for("the file picker", lambda s: "paste its location" in s)
        time.sleep(1)
        tmux.keys("Tab")  # from the folder tree to the box for a pasted location
        time.sleep(1)
        tmux.type(str(gemma_gguf))
        tmux.wait_for("the location pasted", lambda s: gemma_gguf.name[:20] in s)
        tmux.keys("Enter")
        tmux.wait_for("the family list", lambda s: "Which family" in s)
        tmux.keys("Enter")  # the family Haven guessed from the name is highlighted
        tmux.wait_for("the model installed", lambda s: "installed and verified" in s)
        tmux.keys("Escape")  # Continue

        tmux.wait_for("the chat", lambda s: "What's on your mind" in s)
        tmux.wait_for("the model ready", lambda s: "Model: " in s and "loading" not in s.lower())
        tmux.type(FIRST_MESSAGE)
        tmux.keys("Enter")
        deadline = time.monotonic() + 180
        while not journal_has(home, lambda j: any(
                m.role == "assistant" and m.status == "complete"
                for s in j.sessions() for m in j.messages(s.id))):
            assert time.monotonic() < deadline, tmux.capture()
            time.sleep(0.5)
        tmux.wait_for("the first reply", lambda s: "thinking" not in s and "replying" not in s)

        tmux.keys("F2")  # a mood check-in: 6 of 10, a feeling, a note
        tmux.wait_for("the mood dialog", lambda s: "How are you feeling right now?" in s)
        tmux.keys("Right", "Tab")
        tmux.type("tired 40")
        tmux.keys("Tab")
        tmux.type("A long day but I managed")
        tmux.wait_for("the mood typed", lambda s: "managed" in s)
        tmux.keys("C-s")
        tmux.wait_for("back in the chat", lambda s: "How are you feeling right now?" not in s)

        tmux.keys("C-g")  # the end of the session: summary, a step, the closing mood
        tmux.wait_for("closing", lambda s: "one small thing" in s, limit=180)
        tmux.type("a short walk after lunch")
        tmux.keys("Enter")
        tmux.wait_for("the closing mood", lambda s: "how are you feeling now?" in s)
        tmux.keys("Right", "C-s")
        tmux.wait_for("a new session", lambda s: "on your mind" in s  # "Welcome back. …"
                      and "how are you feeling now?" not in s)
        tmux.keys("C-q")
        deadline = time.monotonic() + 30
        while tmux.run("has-session", "-t", SESSION).returncode == 0 \
                and time.monotonic() < deadline:
            time.sleep(0.3)
    finally:
        tmux.run("kill-server")

    written_by_model = model_words(home)
    for step, screen in tmux.seen:
        assert not cli_syntax_on(screen, written_by_model), (step, screen)
    steps = [step for step, _ in tmux.seen]
    for needed in ("welcome", "passphrase", "the file picker", "the family list",
                   "the first reply", "the mood dialog", "closing", "the closing mood"):
        assert needed in steps
    with Journal.open(home / "journal.db", PASSPHRASE) as journal:
        ended = [s for s in journal.sessions() if s.ended is not None]
        assert ended and ended[-1].next_step == "a short walk after lunch"
        assert [m.note for m in journal.moods()][:1] == ["A long day but I managed"]
