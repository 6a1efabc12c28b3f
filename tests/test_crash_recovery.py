"""A crash of the model process mid-reply, as a person meets it: in the app and in `haven chat`.

The real model runs in its real child process, which the test kills with SIGSEGV while a
reply streams. Nothing may be lost: the message, the partial reply (kept as interrupted),
what was being typed; one calm line is shown; the next message gets an answer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from app.llm import ModelSpec
from app.llm.engine import CRASHED_LINE
from app.paths import DataPaths
from app.runtime import start_engine
from app.settings import GenerationSettings, Settings, save_settings
from app.store import Journal
from app.tui.app import HavenApp
from app.tui.screens.chat import ChatScreen
from app.tui.widgets.chat_message import ChatMessage
from tests.conftest import PASSPHRASE, ROOT, haven_env

pytestmark = pytest.mark.model
STORY = "Tell me a long story about a lighthouse keeper"


async def until(pilot, condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            views = [(v.role, v.content[:40], v.note) for v in pilot.app.screen.query(ChatMessage)]
            raise AssertionError(f"gave up waiting: {pilot.app.engine.state} {views}")
        await pilot.pause(0.05)


async def type_text(pilot, text):
    for ch in text:
        await pilot.press("space" if ch == " " else ch)


async def test_the_app_survives_a_segfault_mid_reply(tmp_path, gemma_gguf):
    paths = DataPaths(tmp_path / "home").ensure()
    settings = Settings(notice_acknowledged=True, country="GB",
                        generation=GenerationSettings(max_tokens=300, seed=5))
    save_settings(paths, settings)
    Journal.create(paths.journal, PASSPHRASE).close()
    spec = ModelSpec(gemma_gguf, "gemma-test", "gemma", n_ctx=2048, threads=2)
    app = HavenApp(paths, settings, engine_factory=lambda _: start_engine(spec))
    async with app.run_test(size=(100, 32)) as pilot:
        await type_text(pilot, PASSPHRASE)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen))
        screen = app.screen
        await until(pilot, lambda: app.engine.ready)
        first_pid = app.engine.worker_pid

        await type_text(pilot, STORY)
        await pilot.press("enter")
        replies = lambda: [v for v in screen.query(ChatMessage) if v.role == "assistant"]  # noqa: E731
        await until(pilot, lambda: replies() and replies()[-1].content.strip())
        await type_text(pilot, "half a thought")  # typing while it replies
        os.kill(first_pid, signal.SIGSEGV)
        await until(pilot, lambda: not screen.replying)

        view = replies()[-1]
        assert view.content.strip() and view.note == "(interrupted)"
        notices = [v.content for v in screen.query(ChatMessage) if v.role == "system"]
        assert notices.count(CRASHED_LINE) == 1
        assert screen.query_one("#box").text == "half a thought"  # untouched
        stored = app.journal.messages(app.companion.session.id)
        assert [m.role for m in stored] == ["system", "user", "assistant"]
        assert stored[1].content == STORY
        assert stored[2].status == "partial" and stored[2].content == view.content

        await until(pilot, lambda: app.engine.ready)  # restarted and reloaded
        assert app.engine.worker_pid != first_pid
        app.settings.generation.max_tokens = 16  # a short answer is enough to see
        await pilot.press("enter")  # sends what was typed during the crash
        await until(pilot, lambda: len(replies()) == 2 and not screen.replying)
        stored = app.journal.messages(app.companion.session.id)
        assert stored[-2].content == "half a thought"
        assert stored[-1].role == "assistant" and stored[-1].status == "complete"
        assert stored[-1].content.strip()


@pytest.fixture
def home_with_model(model_home):
    return model_home(max_tokens=64, seed=5)


def test_haven_chat_survives_a_segfault_mid_reply(home_with_model):
    chat = subprocess.Popen([sys.executable, "-m", "app", "chat"], cwd=ROOT,
                            env=haven_env(home_with_model), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = bytearray()
    reader = threading.Thread(target=lambda: [out.extend(c) for c in iter(
        lambda: chat.stdout.read1(4096), b"")], daemon=True)
    reader.start()

    def wait_for(condition, seconds=180.0):
        deadline = time.monotonic() + seconds
        while not condition():
            assert chat.poll() is None, bytes(out).decode() + chat.stderr.read().decode()
            if time.monotonic() > deadline:
                raise AssertionError("gave up waiting: " + bytes(out).decode())
            time.sleep(0.05)

    try:
        chat.stdin.write(f"{STORY}\n".encode())
        chat.stdin.flush()
        wait_for(lambda: b"haven> " in out and len(out.split(b"haven> ")[-1].strip()) > 3)
        (model,) = psutil.Process(chat.pid).children()
        os.kill(model.pid, signal.SIGSEGV)
        wait_for(lambda: CRASHED_LINE.encode() in out)
        chat.stdin.write(b"Are you still there?\n/quit\n")
        chat.stdin.close()
        assert chat.wait(timeout=240) == 0
    finally:
        if chat.poll() is None:
            chat.kill()
    reader.join(timeout=10)
    text = bytes(out).decode()
    assert text.count(CRASHED_LINE) == 1
    second = text.split(CRASHED_LINE, 1)[1].split("haven> ", 1)[1]
    assert second.strip()  # the restarted model answered the next message
    assert chat.stderr.read().decode().strip() == "Created a new encrypted journal."
    with Journal.open(home_with_model / "journal.db", PASSPHRASE) as journal:
        (session,) = journal.sessions()
        messages = [m for m in journal.messages(session.id) if m.role != "system"]
        assert [(m.role, m.status) for m in messages] == [
            ("user", "complete"), ("assistant", "partial"),
            ("user", "complete"), ("assistant", "complete")]
        assert messages[0].content == STORY and messages[1].content.strip()
        assert messages[2].content == "Are you still there?"
