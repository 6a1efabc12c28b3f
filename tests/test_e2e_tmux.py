"""End to end: `haven` in a real terminal (tmux) on the real 270M model."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

import pytest

from app.paths import DataPaths
from app.settings import GenerationSettings, Settings, save_settings
from app.store import Journal
from tests.conftest import PASSPHRASE, ROOT, haven_env, run_haven

pytestmark = pytest.mark.model
SESSION = "haven-e2e"
# A tmux server of this test's own: runs of the suite side by side never send keys to
# (or kill) each other's app.
SOCKET = f"haven-e2e-{os.getpid()}"


def capture(tmux: str) -> str:
    return subprocess.run([tmux, "-L", SOCKET, "capture-pane", "-p", "-t", SESSION], capture_output=True,
                          text=True).stdout


def wait_for(tmux: str, predicate, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture(tmux)
        if predicate(screen):
            return screen
        time.sleep(0.3)
    raise AssertionError(f"timed out; the screen was:\n{screen}")


def keys(tmux: str, *args: str) -> None:
    subprocess.run([tmux, "-L", SOCKET, "send-keys", "-t", SESSION, *args], check=True)


def reply_stored(home) -> bool:
    """A finished model reply is in the journal (read alongside the running app)."""
    with Journal.open(home / "journal.db", PASSPHRASE) as journal:
        return any(m.role == "assistant" and m.status == "complete"
                   for s in journal.sessions() for m in journal.messages(s.id))


def test_haven_in_tmux_unlock_talk_quit(tmp_path, gemma_gguf):
    from tests.conftest import require_tool

    tmux = require_tool("tmux", "tmux")
    home = tmp_path / "home"
    assert run_haven(home, "models", "import", "--no-prepare", str(gemma_gguf), "--chat-format", "gemma",
                     "--name", "gemma-270m").returncode == 0
    assert run_haven(home, "journal", "note", "first note").returncode == 0  # creates the journal
    paths = DataPaths(home)
    settings = Settings(model="gemma-270m", n_ctx=2048, threads=2, notice_acknowledged=False,
                        generation=GenerationSettings(max_tokens=40, seed=1))
    save_settings(paths, settings)

    env = haven_env(home)
    env.pop("HAVEN_PASSPHRASE")  # the app asks
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith(("HAVEN_", "HF_")))
    command = f"cd {shlex.quote(str(ROOT))} && env {exports} TERM=xterm-256color {sys.executable} -m app"
    subprocess.run([tmux, "-L", SOCKET, "kill-session", "-t", SESSION], capture_output=True)
    subprocess.run([tmux, "-L", SOCKET, "new-session", "-d", "-s", SESSION, "-x", "100", "-y", "30", command],
                   check=True)
    try:
        wait_for(tmux, lambda s: "not a therapist" in s)
        for _ in range(20):  # "I understand" (Enter), once the screen takes keys
            keys(tmux, "Enter")
            try:
                wait_for(tmux, lambda s: "Where are you?" in s, timeout=3)
                break
            except AssertionError:
                continue
        screen = wait_for(tmux, lambda s: "Where are you?" in s)  # the country step
        assert "findahelpline.com" in screen and "Somewhere else" in screen, screen
        keys(tmux, "Enter")  # keep "somewhere else" (the international default)
        wait_for(tmux, lambda s: "Enter your passphrase" in s)
        keys(tmux, "C-o")  # SOS reaches the app through a real terminal, before unlock
        screen = wait_for(tmux, lambda s: "SOS" in s and "findahelpline.com" in s
                          and "Breathe" in s)
        keys(tmux, "Escape")
        wait_for(tmux, lambda s: "Enter your passphrase" in s and "Breathe" not in s)
        for _ in range(2):  # keys typed before the field took focus would be lost: retry once
            time.sleep(0.5)
            keys(tmux, "-l", PASSPHRASE)
            keys(tmux, "Enter")
            screen = wait_for(tmux, lambda s: "What's on your mind" in s or "tries left" in s)
            if "What's on your mind" in screen:
                break
        wait_for(tmux, lambda s: "What's on your mind" in s)
        wait_for(tmux, lambda s: "Model: gemma-270m" in s)
        keys(tmux, "-l", "Hello, I had a long day at work")
        keys(tmux, "Enter")
        # the reply is over when the journal says so (the screen alone can look finished
        # before the reply has even started, on a busy machine)
        deadline = time.monotonic() + 120
        while not reply_stored(home) and time.monotonic() < deadline:
            time.sleep(0.5)
        screen = wait_for(tmux, lambda s: "Hello, I had a long day at work" in s
                          and s.count("Haven") >= 3 and "thinking" not in s
                          and "replying" not in s)
        assert "llama" not in screen.lower()  # nothing from llama.cpp tore the screen
        keys(tmux, "C-q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            alive = subprocess.run([tmux, "-L", SOCKET, "has-session", "-t", SESSION], capture_output=True)
            if alive.returncode != 0:
                break
            time.sleep(0.3)
    finally:
        subprocess.run([tmux, "-L", SOCKET, "kill-server"], capture_output=True)

    with Journal.open(home / "journal.db", PASSPHRASE) as journal:
        session = journal.sessions()[0]
        messages = journal.messages(session.id)
        roles = [m.role for m in messages]
        assert roles[:2] == ["system", "user"] and "assistant" in roles
        assert messages[1].content == "Hello, I had a long day at work"
        assert all(m.status in ("complete", "cancelled") for m in messages)
        assert session.ended is not None
