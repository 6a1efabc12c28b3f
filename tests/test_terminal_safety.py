"""Stored text never drives the terminal (issue 17, item 3).

A crafted export plants notes, mood notes, titles, next steps and messages holding
escape sequences (OSC retitle, clear screen, a one-byte C1 CSI, a bidi override, a
carriage return). Every place Haven prints or draws them shows them inert: checked on
the bytes of the command line's output, and in a real terminal (tmux) for the command
line and the app, where a raw sequence would retitle the pane and clear the screen.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pyrage
import pytest

from app.export.document import ExportDocument, render
from app.paths import DataPaths
from app.settings import Settings, save_settings
from app.store.records import Message, MoodEntry, Note, Session, ThoughtRecord
from app.text import check_typed, one_line, safe_rich, terminal_safe
from tests.conftest import PASSPHRASE, ROOT, haven_env, require_tool, run_haven

ATTACK = "\x1b]0;pwned\x07\x1b[2J\x9b2J\u202edesrever\x1b[31m"
UNSAFE = ("\x1b", "\x07", "\x9b", "\u202e", "\r")
EXPORT_PASS = "export passphrase"


def test_terminal_safe_replaces_each_control_and_keeps_text():
    assert terminal_safe("tab\tand\nnewline") == "tab\tand\nnewline"
    assert terminal_safe("a\r\nb") == "a\nb"
    cleaned = terminal_safe(ATTACK)
    for bad in UNSAFE:
        assert bad not in cleaned
    assert "pwned" in cleaned and "desrever" in cleaned  # the words stay visible
    assert terminal_safe("\x00\x08\x7f\x85\u2066\u2069\udcff") == "\ufffd" * 7
    # character by character, so a reply streamed in pieces is safe however it is cut
    assert "".join(terminal_safe(ch) for ch in ATTACK) == cleaned
    assert one_line("\n\n  first\x1b[2J line\nsecond") == "first\ufffd[2J line"
    text = safe_rich("[bold]not markup[/bold]\x1b]0;x\x07")
    assert text.plain == "[bold]not markup[/bold]\ufffd]0;x\ufffd" and not text.spans
    with pytest.raises(ValueError, match="not valid UTF-8"):
        check_typed("bad \udcff byte")


def crafted_export(path) -> None:
    """An export whose every text field carries the attack (as anyone could craft one)."""
    now = datetime.now(UTC)
    session = Session(started=now - timedelta(hours=2), ended=now - timedelta(hours=1),
                      title=f"title {ATTACK}", summary=f"summary {ATTACK}",
                      next_step=f"step {ATTACK}")
    doc = ExportDocument(
        sessions=[session],
        messages=[Message(session_id=session.id, role="user", content=f"said {ATTACK}",
                          created=now - timedelta(hours=2)),
                  Message(session_id=session.id, role="assistant", content=f"replied {ATTACK}",
                          created=now - timedelta(hours=2))],
        mood_entries=[MoodEntry(score=4, note=f"mood {ATTACK}", created=now - timedelta(hours=3))],
        thought_records=[ThoughtRecord(situation=f"situation {ATTACK}")],
        notes=[Note(body=f"note {ATTACK}")],
    )
    path.write_bytes(pyrage.passphrase.encrypt(render(doc, "json"), EXPORT_PASS))


@pytest.fixture
def planted(tmp_path):
    home = tmp_path / "home"
    export = tmp_path / "crafted.age"
    crafted_export(export)
    result = run_haven(home, "import", str(export),
                       env=haven_env(home, HAVEN_EXPORT_PASSPHRASE=EXPORT_PASS))
    assert result.returncode == 0, result.stderr
    return home


def test_cli_listings_print_stored_text_inert(planted):
    for args in (["mood", "list"], ["journal", "list"], ["journal", "search", "desrever"]):
        result = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True,
                                env=haven_env(planted))
        assert result.returncode == 0, result.stderr
        out = result.stdout.decode("utf-8")
        assert "pwned" in out or "desrever" in out, (args, out)
        for bad in UNSAFE:
            assert bad not in out, (args, repr(out))
    # --json keeps the exact text, escaped by JSON
    listed = json.loads(run_haven(planted, "journal", "list", "--json").stdout)
    assert any(item["text"] == f"note {ATTACK}" for item in listed)


# ---- in a real terminal -------------------------------------------------------------------

SESSION = "haven-escapes"


def tmux_cmd(tmux, *args, **kwargs):
    return subprocess.run([tmux, *args], capture_output=True, text=True, **kwargs)


def pane(tmux) -> str:
    return tmux_cmd(tmux, "capture-pane", "-p", "-t", SESSION).stdout


def title(tmux) -> str:
    return tmux_cmd(tmux, "display-message", "-p", "-t", SESSION, "#{pane_title}").stdout.strip()


def wait_for(tmux, predicate, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = pane(tmux)
        if predicate(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"timed out; the screen was:\n{screen}")


def start(tmux, command: str) -> None:
    """Run command in a fresh pane titled "clean"; it starts only once the title is set."""
    tmux_cmd(tmux, "kill-session", "-t", SESSION)
    gate = f"go-{SESSION}"
    tmux_cmd(tmux, "new-session", "-d", "-s", SESSION, "-x", "110", "-y", "32",
             f"{shlex.quote(tmux)} wait-for {gate}; {command}", check=True)
    tmux_cmd(tmux, "select-pane", "-t", SESSION, "-T", "clean")
    tmux_cmd(tmux, "wait-for", "-S", gate, check=True)


def env_prefix(home, **extra) -> str:
    env = haven_env(home, **extra)
    pairs = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                     if k.startswith(("HAVEN_", "HF_")))
    return f"cd {shlex.quote(str(ROOT))} && env {pairs} TERM=xterm-256color"


def test_in_a_terminal_the_cli_neither_retitles_nor_clears(planted, tmp_path):
    tmux = require_tool("tmux", "tmux")
    raw = tmp_path / "raw.txt"
    raw.write_text(f"raw {ATTACK}\n")
    script = tmp_path / "run.sh"
    haven = f"{sys.executable} -m app"
    script.write_text(f"{env_prefix(planted)} sh -c '"
                      f"echo BEFORE-MARKER; {haven} mood list; {haven} journal list; "
                      f"{haven} journal search desrever; echo AFTER-MARKER'; sleep 60\n")
    try:
        # the control: the same bytes printed raw do retitle the pane and clear the screen
        (raw.parent / "control.sh").write_text(f"echo BEFORE-MARKER; cat {shlex.quote(str(raw))}; "
                                               "echo AFTER-MARKER; sleep 60\n")
        start(tmux, f"sh {shlex.quote(str(raw.parent / 'control.sh'))}")
        screen = wait_for(tmux, lambda s: "AFTER-MARKER" in s)
        assert title(tmux) == "pwned" and "BEFORE-MARKER" not in screen

        start(tmux, f"sh {shlex.quote(str(script))}")
        screen = wait_for(tmux, lambda s: "AFTER-MARKER" in s, timeout=120)
        assert title(tmux) == "clean", screen
        assert "BEFORE-MARKER" in screen  # nothing cleared the screen
        assert "mood" in screen and "note" in screen and "desrever" in screen
    finally:
        tmux_cmd(tmux, "kill-session", "-t", SESSION)


def test_in_a_terminal_the_app_neither_retitles_nor_blanks(planted):
    tmux = require_tool("tmux", "tmux")
    save_settings(DataPaths(planted), Settings(notice_acknowledged=True, country="GB",
                                              country_confirmed=True))
    start(tmux, f"{env_prefix(planted, HAVEN_PASSPHRASE=None)} {sys.executable} -m app")
    try:
        wait_for(tmux, lambda s: "Enter your passphrase" in s)
        for _ in range(2):  # keys typed before the field took focus would be lost: retry once
            time.sleep(0.5)
            tmux_cmd(tmux, "send-keys", "-t", SESSION, "-l", PASSPHRASE)
            tmux_cmd(tmux, "send-keys", "-t", SESSION, "Enter")
            screen = wait_for(tmux, lambda s: "Last time you planned to" in s or "tries left" in s)
            if "Last time you planned to" in screen:
                break
        # the opening line carries the planted next step, the sidebar the planted title
        screen = wait_for(tmux, lambda s: "Last time you planned to" in s and "step" in s)
        assert title(tmux) == "clean", screen
        assert "Your message" in screen  # the chat was not blanked
        tmux_cmd(tmux, "send-keys", "-t", SESSION, "F3")
        # the timeline lists the planted note, session title and thought record, inert
        screen = wait_for(tmux, lambda s: "situation" in s and "note \ufffd" in s
                          and "title \ufffd" in s)
        assert title(tmux) == "clean", screen
        assert "pwned" in screen
        tmux_cmd(tmux, "send-keys", "-t", SESSION, "Escape")
        tmux_cmd(tmux, "send-keys", "-t", SESSION, "C-q")
    finally:
        tmux_cmd(tmux, "kill-session", "-t", SESSION)


@pytest.mark.model
def test_the_line_mode_chat_prints_the_last_step_inert(planted, gemma_gguf):
    result = subprocess.run(
        [sys.executable, "-m", "app", "chat", "--model", str(gemma_gguf), "--chat-format", "gemma"],
        cwd=ROOT, capture_output=True, input=b"/quit\n", env=haven_env(planted), timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode("utf-8")
    assert "Last time you planned to: step" in out and "pwned" in out
    for bad in UNSAFE:
        assert bad not in out, repr(out)
