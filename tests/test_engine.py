"""The engine on the real Gemma 3 270M GGUF (a base model: mechanics only, never quality)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from app.llm import ChatRequest, Engine, EngineError, EngineState, GenerationParams, ModelSpec, Turn
from tests.conftest import ROOT
from tests.gguf_factory import make_gguf

pytestmark = pytest.mark.model
FOLD = "Summarise the conversation so far in a few sentences."


@pytest.fixture(scope="module")
def engine(gemma_gguf):
    running = Engine()
    running.load(ModelSpec(gemma_gguf, "gemma-test", "gemma", n_ctx=2048, threads=2)).result(120)
    yield running
    running.close()


def ask(engine, turns, max_tokens=24, summary=None):
    stream = engine.chat(ChatRequest(system="You are kind and brief.", turns=tuple(turns),
                                     summary=summary, fold_instruction=FOLD,
                                     params=GenerationParams(max_tokens=max_tokens, seed=7)))
    chunks = list(stream)
    return chunks, stream.wait(60)


def test_loading_is_in_the_background_and_reports_progress(gemma_gguf):
    engine = Engine()
    seen = []
    engine.on_state(lambda state, detail: seen.append((state, detail)))
    try:
        future = engine.load(ModelSpec(gemma_gguf, "g", "gemma", n_ctx=1024, threads=2))
        # the caller is not blocked: load returns before the model process has even started
        assert not future.done()
        assert engine.state in (EngineState.LOADING, EngineState.READY)
        future.result(120)
        assert engine.ready and engine.n_ctx == 1024
        percents = [d for s, d in seen if s is EngineState.LOADING and d and d.endswith("%")]
        assert percents and percents[-1].endswith("100%")
        assert seen[-1][0] is EngineState.READY
    finally:
        engine.close()


def test_streaming_yields_text_in_pieces(engine):
    stream = engine.chat(ChatRequest(system="You are kind and brief.",
                                     turns=(Turn("user", "Hello, how are you today?"),),
                                     params=GenerationParams(max_tokens=24, seed=7)))
    chunks = list(stream)
    reply = stream.wait(60)
    assert reply.status == "complete"
    assert len(chunks) > 1 and "".join(chunks) == reply.text
    assert reply.generated_tokens > 0
    # the first sampled token is known, and never after the first text it made
    assert stream.submitted_at < stream.first_token_at <= stream.first_piece_at


def test_cancel_stops_promptly_and_keeps_the_partial_text(engine):
    stream = engine.chat(ChatRequest(system="", turns=(Turn("user", "Tell me a long story."),),
                                     params=GenerationParams(max_tokens=400, temperature=0.9)))
    pieces = iter(stream)
    first = next(pieces)
    stream.cancel()
    rest = list(pieces)
    reply = stream.wait(10)
    assert reply.status == "cancelled"
    assert reply.text == first + "".join(rest)
    assert reply.generated_tokens < 400


def test_cancel_during_a_long_prompt_evaluation(engine):
    long_turn = Turn("user", "word " * 1500)
    stream = engine.chat(ChatRequest(system="", turns=(long_turn,),
                                     params=GenerationParams(max_tokens=50)))
    time.sleep(0.05)
    stream.cancel()
    assert stream.wait(30).status == "cancelled"
    _, after = ask(engine, [Turn("user", "Are you still there?")])  # the engine recovered
    assert after.status == "complete"


def test_the_kv_cache_is_reused_across_turns(engine):
    turns = [Turn("user", "Hello there. I had a long day at work today.")]
    _, first = ask(engine, turns)
    turns += [Turn("assistant", first.text), Turn("user", "It was about a meeting.")]
    _, second = ask(engine, turns)
    assert second.prompt_tokens > first.prompt_tokens
    # only the new turn (plus template tokens) is evaluated, not the whole history
    assert second.evaluated_prompt_tokens < second.prompt_tokens - first.prompt_tokens + 16


def test_a_long_history_is_folded_and_the_prompt_fits(engine):
    turns = []
    for i in range(40):
        turns.append(Turn("user", f"Message {i}: I keep worrying about work and sleep. " * 5))
        turns.append(Turn("assistant", f"Reply {i}: that sounds hard, tell me more. " * 4))
    turns.append(Turn("user", "What should I try tonight?"))
    total = sum(engine.count_tokens(t.content).result() for t in turns)
    assert total > 4000
    _, reply = ask(engine, turns, max_tokens=32)
    assert reply.status == "complete", reply.error
    assert reply.folded > 0 and reply.folded % 2 == 0
    assert reply.summary  # written by the model, for the caller to keep
    assert reply.prompt_tokens + 32 <= engine.n_ctx


def test_a_huge_single_message_is_clipped_for_the_model(engine):
    _, reply = ask(engine, [Turn("user", "I need to say a lot. " * 2000)], max_tokens=16)
    assert reply.status == "complete"
    assert reply.prompt_tokens + 16 <= engine.n_ctx


def test_a_side_job_with_a_huge_message_is_clipped_the_same_way(engine):
    # a title or a draft over a very long message: the same clipping as a chat
    stream = engine.side_job("You are kind and brief.", [Turn("user", "I need to say a lot. " * 2000)],
                             GenerationParams(max_tokens=16, seed=7))
    list(stream)
    reply = stream.wait(60)
    assert reply.status == "complete", reply.error
    assert reply.prompt_tokens + 16 <= engine.n_ctx


def test_no_template_and_no_format_is_refused(gemma_gguf):
    engine = Engine()
    try:
        with pytest.raises(EngineError, match="no chat template"):
            engine.load(ModelSpec(gemma_gguf, "g", None, n_ctx=512, threads=2)).result(120)
        assert engine.state is EngineState.FAILED and "which chat format" in engine.error
    finally:
        engine.close()


def test_a_corrupt_file_fails_clearly_in_the_background(tmp_path):
    bad = tmp_path / "bad.gguf"
    data = bytearray(make_gguf(tensors=(("w", (64, 64)),), template="{{ x }}"))
    bad.write_bytes(bytes(data))  # a valid header, but no real model inside
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(bytes(data[:-100]))
    engine = Engine()
    try:
        with pytest.raises(EngineError, match="incomplete"):
            engine.load(ModelSpec(truncated, "cut", None)).result(60)
        with pytest.raises(EngineError, match="could not be loaded"):
            engine.load(ModelSpec(bad, "bad", None)).result(60)
        assert engine.state is EngineState.FAILED
    finally:
        engine.close()


QUIET = textwrap.dedent("""
    import sys
    from pathlib import Path
    from app.logs import setup_logging, capture_native_stderr
    from app.llm import Engine, ModelSpec, ChatRequest, Turn, GenerationParams
    log = Path(sys.argv[2])
    setup_logging(log)
    capture_native_stderr(log)
    e = Engine()
    e.load(ModelSpec(Path(sys.argv[1]), "g", "gemma", n_ctx=1024, threads=2)).result()
    s = e.chat(ChatRequest(system="", turns=(Turn("user", "SECRET-MARKER hello"),),
                           params=GenerationParams(max_tokens=8)))
    print("reply:", len("".join(s)) >= 0)
    e.close()
""")


def test_llama_cpp_never_writes_to_the_terminal_and_logs_no_user_text(gemma_gguf, tmp_path):
    log = tmp_path / "haven.log"
    result = subprocess.run([sys.executable, "-c", QUIET, str(gemma_gguf), str(log)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "reply: True"
    assert result.stderr == ""
    text = log.read_text()
    assert "llama" in text  # llama.cpp's own log went to Haven's log
    assert "SECRET-MARKER" not in text


def test_iterating_a_finished_stream_again_returns_at_once(engine):
    stream = engine.chat(ChatRequest(system="", turns=(Turn("user", "Hi"),),
                                     params=GenerationParams(max_tokens=4)))
    first = list(stream)
    assert list(stream) == [] and "".join(first) == stream.wait(5).text
