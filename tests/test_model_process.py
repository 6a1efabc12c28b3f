"""The model in its own process: crashes, restarts, hostile model files, what the child gets.

Real llama.cpp on the real Gemma 3 270M GGUF; crafted GGUFs are edits of it
(tests/gguf_factory.py). Waits have generous bounds and never assert on time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app.llm import ChatRequest, Engine, EngineError, EngineState, GenerationParams, ModelSpec, Turn
from app.llm.engine import CRASHED_LINE, MAX_RESTARTS
from tests.conftest import ROOT
from tests.gguf_factory import with_template, with_tensor_type

pytestmark = pytest.mark.model


def spec(path: Path, chat_format: str | None = "gemma") -> ModelSpec:
    return ModelSpec(path, "gemma-test", chat_format, n_ctx=1024, threads=2)


def wait_for(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting")
        time.sleep(0.05)


def story(engine: Engine, max_tokens: int = 300):
    return engine.chat(ChatRequest(system="", turns=(Turn("user", "Tell me a long story."),),
                                   params=GenerationParams(max_tokens=max_tokens, seed=3)))


@pytest.fixture
def engine(gemma_gguf):
    running = Engine()
    running.load(spec(gemma_gguf)).result(120)
    yield running
    running.close()


def test_a_segfault_mid_reply_keeps_the_shown_text_and_the_model_comes_back(engine, caplog):
    first_pid = engine.worker_pid
    stream = story(engine)
    pieces = iter(stream)
    shown = [next(pieces) for _ in range(3)]
    os.kill(first_pid, signal.SIGSEGV)
    shown += list(pieces)
    reply = stream.wait(30)
    assert reply.status == "crashed" and reply.error == CRASHED_LINE
    assert reply.text == "".join(shown) and reply.text
    assert engine.state in (EngineState.LOADING, EngineState.READY)  # never READY-but-gone
    wait_for(lambda: engine.ready)
    assert engine.worker_pid not in (None, first_pid) and engine.restarts == 1
    after = story(engine, max_tokens=8)
    assert after.wait(60).status == "complete" and after.result.text
    assert "stopped unexpectedly (signal SIGSEGV)" in caplog.text


def test_waiting_requests_fail_cleanly_and_restarts_are_limited(engine):
    for _ in range(MAX_RESTARTS + 1):
        wait_for(lambda: engine.ready)
        assert engine.count_tokens("a few words").result(30) > 0
        stream = story(engine)
        next(iter(stream))
        pending = engine.count_tokens("queued behind the reply")
        os.kill(engine.worker_pid, signal.SIGKILL)  # as the OOM killer would
        assert stream.wait(30).status == "crashed"
        with pytest.raises(EngineError, match="stopped unexpectedly"):
            pending.result(30)
    assert engine.state is EngineState.FAILED and "left it off" in engine.error
    assert engine.restarts == MAX_RESTARTS
    refused = story(engine)  # a calm refusal, not a hang
    assert refused.wait(30).status in ("error", "crashed")


def test_cancel_reaches_the_model_process_at_once(engine):
    stream = engine.chat(ChatRequest(system="", turns=(Turn("user", "word " * 900),),
                                     params=GenerationParams(max_tokens=50)))
    time.sleep(0.05)  # in the middle of evaluating the long prompt
    stream.cancel()
    assert stream.wait(30).status == "cancelled"
    assert engine.ready
    assert story(engine, max_tokens=4).wait(60).status == "complete"


def test_the_model_process_gets_no_passphrase_no_journal_and_no_user_text(
        engine, haven_home, monkeypatch, gemma_gguf):
    monkeypatch.setenv("HAVEN_NEW_PASSPHRASE", "new secret phrase")
    monkeypatch.setenv("HAVEN_EXPORT_PASSPHRASE", "export secret phrase")
    fresh = Engine()  # started with the passphrases in this process's environment
    try:
        fresh.load(spec(gemma_gguf)).result(120)
        pid = fresh.worker_pid
        stream = fresh.chat(ChatRequest(system="", turns=(Turn("user", "MARKER-7731 hi"),),
                                        params=GenerationParams(max_tokens=4)))
        stream.wait(60)
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith(b"HAVEN_") or b"secret" in v]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"MARKER" not in cmdline and b"worker" in cmdline
        targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert not [t for t in targets if str(haven_home) in t or t.endswith(".db")]
        assert os.getsid(pid) != os.getsid(0)  # Ctrl-C at the terminal never reaches it
    finally:
        fresh.close()


# ---- hostile or broken model files ---------------------------------------------------------

@pytest.fixture(scope="module")
def crafted(gemma_gguf, tmp_path_factory):
    source = gemma_gguf.read_bytes()
    folder = tmp_path_factory.mktemp("crafted")

    def make(name: str, data: bytes) -> Path:
        path = folder / f"{name}.gguf"
        path.write_bytes(data)
        return path

    return source, make


def test_a_template_syntax_error_is_a_clear_load_failure(crafted):
    source, make = crafted
    path = make("syntax", with_template(source, "{% for m in messages %}{{ m['content'] }"))
    engine = Engine()
    try:
        with pytest.raises(EngineError, match="syntax error"):
            engine.load(spec(path)).result(120)
        assert engine.state is EngineState.FAILED and "syntax error" in engine.error
    finally:
        engine.close()


BOMBS = {
    "nested loops": "{% for i in range(10000) %}{% for j in range(10000) %}{{ '' }}"
                    "{% endfor %}{% endfor %}{{ messages[0]['content'] }}",
    "huge range": "{% for i in range(100000000) %}{% endfor %}{{ messages[0]['content'] }}",
    "repetition": "{{ 'A' * 1000000000 }}{{ messages[0]['content'] }}",
    "doubling": "{% set ns = namespace(s='AAAAAAAA') %}{% for i in range(40) %}"
                "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_template_that_runs_away_is_stopped_when_the_model_loads(crafted, name):
    source, make = crafted
    path = make(name.replace(" ", "-"), with_template(source, BOMBS[name]))
    engine = Engine()
    try:
        with pytest.raises(EngineError) as failure:
            engine.load(spec(path)).result(120)
        assert "chat template" in str(failure.value)
        assert engine.state is EngineState.FAILED
    finally:
        engine.close()


def test_a_template_that_runs_away_on_some_words_fails_that_reply_only(crafted):
    source, make = crafted
    trap = ("{% for m in messages %}{% if 'spiral' in m['content'] %}"
            # 10^12 steps: past the render limit on any CPU (10^8 took under 3 s on a fast one)
            "{% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000) %}"
            "{% endfor %}{% endfor %}{% endfor %}"
            "{% endif %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
            "{% endfor %}<start_of_turn>model\n")
    engine = Engine()
    try:
        engine.load(spec(make("trap", with_template(source, trap)))).result(120)
        stream = engine.chat(ChatRequest(system="", turns=(Turn("user", "a spiral of worry"),),
                                         params=GenerationParams(max_tokens=4)))
        reply = stream.wait(60)
        assert reply.status == "error" and "took too long" in reply.error
        assert "spiral" not in reply.error  # an error never echoes the conversation
        fine = engine.chat(ChatRequest(system="", turns=(Turn("user", "hello"),),
                                       params=GenerationParams(max_tokens=4)))
        assert fine.wait(60).status == "complete"
    finally:
        engine.close()


SWAPPED = textwrap.dedent("""
    import sys
    from pathlib import Path
    from app.logs import capture_native_stderr, setup_logging
    from app.llm import ChatRequest, Engine, GenerationParams, ModelSpec, Turn
    log = Path(sys.argv[2])
    setup_logging(log)
    capture_native_stderr(log)
    engine = Engine()
    # one compute thread: with two, both can abort at once and the second ends the process
    # while the fault handler is still writing the first one's stack
    engine.load(ModelSpec(Path(sys.argv[1]), "swapped", "gemma", n_ctx=512, threads=1)).result(120)
    stream = engine.chat(ChatRequest(system="", turns=(Turn("user", "MARKER-4417 hello"),),
                                     params=GenerationParams(max_tokens=8)))
    print("reply:", stream.wait(60).status)
    engine.close()
    print("still here")
""")


def test_a_tensor_with_a_swapped_type_aborts_the_model_process_only(crafted, tmp_path):
    source, make = crafted
    # The last tensor in the file, declared F16 instead of F32: half the size, so the file
    # passes the completeness check, and llama.cpp aborts in its first computation.
    path = make("swapped", with_tensor_type(source, "blk.17.post_ffw_norm.weight", 1))
    log = tmp_path / "haven.log"
    result = subprocess.run([sys.executable, "-c", SWAPPED, str(path), str(log)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:2] == ["reply: crashed", "still here"]
    assert result.stderr == ""  # nothing reached the terminal
    text = log.read_text()
    assert "unsupported types" in text  # ggml's own line about what went wrong
    # and where: ggml aborts on the bad type (or, if it reads past the half-size tensor first,
    # segfaults); either way the stack and the signal are logged
    assert ("Fatal Python error: Aborted" in text
            or "Fatal Python error: Segmentation fault" in text), text[-3000:]
    assert "worker.py" in text
    assert ("stopped unexpectedly (signal SIGABRT)" in text
            or "stopped unexpectedly (signal SIGSEGV)" in text)
    assert "MARKER-4417" not in text
