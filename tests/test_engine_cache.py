"""The KV cache on the real Gemma 3 270M GGUF: prefill before Enter, side jobs that keep the
conversation's cache, folds ahead of time. Every assertion counts tokens, never time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.llm import ChatRequest, Engine, GenerationParams, ModelSpec, Turn

pytestmark = pytest.mark.model
SYSTEM = "You are a warm, brief companion. Listen, reflect, and ask one gentle question. " * 6
FOLD = "Summarise the conversation so far in a few sentences."


@pytest.fixture(scope="module")
def engine(gemma_gguf):
    running = Engine()
    running.load(ModelSpec(gemma_gguf, "gemma-test", "gemma", n_ctx=2048, threads=2)).result(120)
    yield running
    running.close()


def request(turns, max_tokens=16, summary=None):
    return ChatRequest(system=SYSTEM, turns=tuple(turns), summary=summary,
                       fold_instruction=FOLD, params=GenerationParams(max_tokens=max_tokens, seed=7))


def chat(engine, turns, **kwargs):
    reply = engine.chat(request(turns, **kwargs)).wait(120)
    assert reply.status == "complete", reply.error
    return reply


def test_prefill_evaluates_the_system_prompt_and_the_draft_so_enter_evaluates_little(engine):
    engine.complete("Reply with one word.", [Turn("user", "Hello")],  # something else cached
                    GenerationParams(max_tokens=4)).result(120)
    opening = engine.prefill(request([])).result(120)
    assert opening.status == "done"
    assert opening.evaluated_tokens > 80  # the whole system prompt, before anything is typed
    typed = "I had a long day at work and my manager said"
    early = engine.prefill(request([]), draft=typed[:20]).result(120)
    later = engine.prefill(request([]), draft=typed).result(120)
    assert early.status == later.status == "done"
    assert early.reused_tokens >= opening.prompt_tokens  # each step only adds the new words
    assert 0 < later.evaluated_tokens < 16 and later.reused_tokens >= early.prompt_tokens
    reply = chat(engine, [Turn("user", typed + " nothing at all.")])
    assert reply.prompt_tokens > later.prompt_tokens
    # Enter evaluates the last words and the template's closing tokens, nothing more
    assert reply.evaluated_prompt_tokens <= reply.prompt_tokens - later.prompt_tokens + 1
    assert reply.reused_prompt_tokens >= later.prompt_tokens - 1


def test_the_next_turn_prefilled_after_a_reply(engine):
    turns = [Turn("user", "I keep thinking about the meeting on Monday.")]
    first = chat(engine, turns)
    turns.append(Turn("assistant", first.text))
    ready = engine.prefill(request(turns), draft="Yes, I think everyone saw me ").result(120)
    assert ready.status == "done" and ready.reused_tokens > first.prompt_tokens // 2
    reply = chat(engine, [*turns, Turn("user", "Yes, I think everyone saw me stumble.")])
    assert reply.evaluated_prompt_tokens <= reply.prompt_tokens - ready.prompt_tokens + 1


def test_a_prefill_gives_way_to_a_chat_after_at_most_one_chunk(engine):
    from app.llm.worker import PREFILL_CHUNK

    history = [Turn("user", "Hello."), Turn("assistant", "Hello, how are you?")]
    job = engine.prefill(request(history), draft="word " * 1700)
    stream = engine.chat(request([Turn("user", "Something else entirely.")]))
    result = job.result(120)
    assert result.status == "preempted"
    assert result.evaluated_tokens <= PREFILL_CHUNK
    assert stream.wait(120).status == "complete"


def test_enter_during_a_prefill_chunk_stops_the_chunk_at_once(gemma_gguf):
    """Enter while llama.cpp is inside a prefill's chunk: the reply does not wait for the
    chunk. The model process's worker runs here, in this process, so the reply can be made
    to arrive at a known moment: from llama.cpp's abort callback, inside the chunk's graph.
    The chunk is given up whole, what was cached before it stays, and the reply that
    follows reuses that and evaluates the rest on a sound cache."""
    import json

    from app.llm import worker
    from app.llm.engine import _request_json

    class Sink:
        def __init__(self) -> None:
            self.results: list[dict] = []

        def send_bytes(self, data: bytes) -> None:
            message = json.loads(data)
            if message.get("ev") == "result":
                self.results.append(message["value"])

    sink = Sink()
    model = worker.Worker(sink)
    spec = ModelSpec(gemma_gguf, "gemma-test", "gemma", n_ctx=2048, threads=2)
    model._op_load(1, {"spec": spec.to_json()})
    try:
        opening = model._op_prefill(2, {"request": _request_json(request([])), "draft": ""})
        assert opening["status"] == "done"
        typed = "word " * 300
        enter = {"op": "chat", "id": 4,
                 "request": _request_json(request([Turn("user", typed + "and that is all.")]))}
        asked, arrived_at = model._stop_now, []

        def stop_now() -> bool:  # llama.cpp asks this between the nodes of a graph
            if not arrived_at:
                arrived_at.append(model._llm.n_tokens)
                model.arrive(enter)  # the reader thread queues Enter's request: now
            return asked()

        model._stop_now = stop_now
        draft = model._op_prefill(3, {"request": _request_json(request([])), "draft": typed})
        model._stop_now = asked
        assert arrived_at == [opening["prompt_tokens"]]  # inside the draft's first chunk
        assert draft["status"] == "preempted"
        assert draft["evaluated_tokens"] == 0  # that chunk stopped, not finished
        assert model._llm.n_tokens == opening["prompt_tokens"]  # nothing half-made is kept
        assert model.waiting_ops() == {"chat"}
        model._handle(model._jobs.get())  # as the model process runs it
        reply = sink.results[-1]
        assert reply["status"] == "complete"
        assert reply["prompt_tokens"] - reply["evaluated_prompt_tokens"] >= opening["prompt_tokens"]
    finally:
        model._unload()


def test_a_prefill_can_be_stopped(engine):
    job = engine.prefill(request([]), draft="word " * 1700)
    job.stop()
    assert job.result(120).status in ("cancelled", "done")
    assert chat(engine, [Turn("user", "Are you still there?")]).status == "complete"


def test_a_side_job_does_not_cost_the_conversation_its_cache(engine):
    turns = [Turn("user", "Work has been a lot this week and I cannot switch off at night.")]
    first = chat(engine, turns)
    turns.append(Turn("assistant", first.text))
    # a title: a different prompt altogether; the conversation waits in a second sequence
    title = engine.side_job("Write a three-word title.", [Turn("user", "Work stress, sleep")],
                            GenerationParams(max_tokens=8)).wait(120)
    assert title.status == "complete" and title.kept == "sequence"
    assert title.reused_prompt_tokens < 8  # only the template's opening tokens are shared
    turns.append(Turn("user", "Mostly I lie awake going over emails."))
    after = chat(engine, turns)
    assert after.evaluated_prompt_tokens < 32  # the new message, not the whole history
    assert after.reused_prompt_tokens > first.prompt_tokens


def test_a_side_job_that_continues_the_conversation_reuses_it(engine):
    turns = [Turn("user", "My friend did not answer my message and I think she is angry.")]
    first = chat(engine, turns)
    turns.append(Turn("assistant", first.text))
    ask = Turn("user", "Draft a thought record from this conversation as JSON.")
    draft = engine.side_job(SYSTEM, [*turns, ask], GenerationParams(max_tokens=24)).wait(120)
    assert draft.status == "complete" and draft.kept == "extended"
    assert draft.evaluated_prompt_tokens < 40  # the instruction, not the conversation
    turns.append(Turn("user", "She usually answers within an hour."))
    after = chat(engine, turns)
    assert after.evaluated_prompt_tokens < 32


def test_a_side_job_streams_and_can_be_cancelled(engine):
    stream = engine.side_job("Tell a long story.", [Turn("user", "Once upon a time")],
                             GenerationParams(max_tokens=300, temperature=0.9))
    pieces = iter(stream)
    first = next(pieces)
    stream.cancel()
    rest = list(pieces)
    reply = stream.wait(60)
    assert reply.status == "cancelled" and reply.text == first + "".join(rest)


def test_a_fold_ahead_of_time_leaves_the_next_message_nothing_to_fold(engine):
    turns = []
    for i in range(18):
        turns.append(Turn("user", f"Message {i}: I keep worrying about work and sleep. " * 4))
        turns.append(Turn("assistant", f"Reply {i}: that sounds hard, tell me more. " * 3))
    fold = engine.fold(request(turns, max_tokens=64), headroom=256).result(300)
    assert fold.status == "done", fold
    assert fold.folded > 0 and fold.folded % 2 == 0 and fold.summary
    assert fold.prefill is not None and fold.prefill.status == "done"
    kept = [*turns[fold.folded:], Turn("user", "What could I try tonight?")]
    reply = chat(engine, kept, max_tokens=64, summary=fold.summary)
    assert reply.folded == 0  # nothing folded between Enter and the first token
    assert reply.evaluated_prompt_tokens < 40
    assert engine.fold(request(kept[:2])).result(60).status == "not needed"


def test_when_two_sequences_do_not_fit_the_conversation_is_copied_aside(gemma_gguf):
    engine = Engine()
    try:
        engine.load(ModelSpec(gemma_gguf, "g", "gemma", n_ctx=512, threads=2)).result(120)
        turns = [Turn("user", "I had a hard conversation with my sister today. " * 12)]
        first = chat(engine, turns)
        turns.append(Turn("assistant", first.text))
        side = engine.side_job("Summarise this in one line.",
                               [Turn("user", "notes " * 240)],
                               GenerationParams(max_tokens=120)).wait(120)
        assert side.status == "complete" and side.kept == "copy"
        turns.append(Turn("user", "She said I never listen."))
        after = chat(engine, turns)
        assert after.evaluated_prompt_tokens < 32
    finally:
        engine.close()


def test_while_the_person_types_a_prefill_leaves_a_core_to_the_app(gemma_gguf):
    from app.llm.kv_cache import available_cores

    threads = max(2, available_cores())  # the model's threads take every core
    engine = Engine()
    try:
        engine.load(ModelSpec(gemma_gguf, "g", "gemma", n_ctx=1024, threads=threads)).result(120)
        opening = engine.prefill(request([])).result(120)
        assert opening.status == "done" and opening.threads == threads  # nobody is typing yet
        typing = engine.prefill(request([]), draft="I had a long day at work and ").result(120)
        assert typing.status == "done" and typing.threads == threads - 1
        reply = engine.chat(request([Turn("user", "I had a long day at work and I am tired.")],
                                    max_tokens=4)).wait(120)
        assert reply.status == "complete"
        perf = engine.perf_counters().result(30)
        assert perf["threads"] == perf["threads_batch"] == threads  # Enter's reply has them all
    finally:
        engine.close()


def test_havens_own_prompt_is_evaluated_once_and_loaded_at_the_next_start(gemma_gguf, tmp_path):
    folder = tmp_path / "prompt-cache"
    spec = ModelSpec(gemma_gguf, "g", "gemma", n_ctx=1024, threads=2, prompt_cache=folder)
    person = "\n\nLast time they talked about the allotment and planned to phone Marek."
    ahead = ChatRequest(system=SYSTEM + person, turns=(), fold_instruction=FOLD,
                        params=GenerationParams(max_tokens=8, seed=7), shared_prefix=len(SYSTEM))
    message = (Turn("user", "I slept badly again."),)

    def start() -> Engine:
        engine = Engine()
        engine.load(spec).result(120)
        return engine

    first = start()
    try:
        built = first.prefill(ahead).result(120)
    finally:
        first.close()
    assert built.status == "done" and built.prompt_cache == "saved"
    saved = list(folder.glob("*.kv"))
    assert len(saved) == 1 and saved[0].stat().st_mode & 0o777 == 0o600
    assert b"Marek" not in saved[0].read_bytes()  # Haven's words only

    again = start()  # the next start: Haven's prompt comes from disk
    try:
        loaded = again.prefill(ahead).result(120)
        assert loaded.prompt_cache == "loaded" and loaded.reused_tokens >= 80
        assert loaded.evaluated_tokens == built.evaluated_tokens  # the person's part, as before
        assert again.chat(replace(ahead, turns=message)).wait(120).status == "complete"
    finally:
        again.close()

    quick = start()  # Enter before any prefill: still from disk
    try:
        reply = quick.chat(replace(ahead, turns=message)).wait(120)
        assert reply.status == "complete" and reply.reused_prompt_tokens >= 80
    finally:
        quick.close()

    saved[0].write_bytes(b"not a prompt cache" * 100)  # damaged: evaluated again, and replaced
    (folder / "left-by-a-crash.loading").write_bytes(b"half")  # a crash while loading
    damaged = start()
    try:
        rebuilt = damaged.prefill(ahead).result(120)
        assert rebuilt.status == "done" and rebuilt.prompt_cache == "saved"
        assert damaged.chat(replace(ahead, turns=message)).wait(120).status == "complete"
    finally:
        damaged.close()
    assert [p.name for p in folder.iterdir()] == [saved[0].name]  # no .loading left behind


def test_havens_prompt_is_saved_after_a_reply_that_came_before_any_prefill(gemma_gguf, tmp_path):
    folder = tmp_path / "prompt-cache"
    spec = ModelSpec(gemma_gguf, "g", "gemma", n_ctx=1024, threads=2, prompt_cache=folder)
    turns = (Turn("user", "I slept badly again."),)
    first = ChatRequest(system=SYSTEM, turns=turns, params=GenerationParams(max_tokens=8, seed=7),
                        shared_prefix=len(SYSTEM))
    engine = Engine()
    try:
        engine.load(spec).result(120)
        reply = engine.chat(first).wait(120)  # Enter came before the model could read ahead
        assert reply.status == "complete" and not list(folder.glob("*.kv"))
        after = replace(first, turns=(*turns, Turn("assistant", reply.text or "I hear you.")))
        ready = engine.prefill(after).result(120)  # the next prompt, after the reply
        assert ready.prompt_cache == "saved" and len(list(folder.glob("*.kv"))) == 1
        # the conversation's own cache is untouched: the next message evaluates its own words
        nxt = engine.chat(replace(after, turns=(*after.turns, Turn("user", "Yes.")))).wait(120)
        assert nxt.status == "complete" and nxt.reused_prompt_tokens >= ready.prompt_tokens - 1
    finally:
        engine.close()
    again = Engine()
    try:
        again.load(spec).result(120)
        assert again.prefill(first).result(120).prompt_cache == "loaded"
    finally:
        again.close()


def test_a_prompt_cache_that_cannot_be_written_costs_only_the_head_start(gemma_gguf, tmp_path):
    blocked = tmp_path / "prompt-cache"
    blocked.write_text("a file where the folder should be")  # as a full or read-only disk would
    spec = ModelSpec(gemma_gguf, "g", "gemma", n_ctx=1024, threads=2, prompt_cache=blocked)
    ahead = ChatRequest(system=SYSTEM, turns=(), params=GenerationParams(max_tokens=8, seed=7),
                        shared_prefix=len(SYSTEM))
    engine = Engine()
    try:
        engine.load(spec).result(120)
        ready = engine.prefill(ahead).result(120)
        assert ready.status == "done" and ready.prompt_cache == ""
        reply = engine.chat(replace(ahead, turns=(Turn("user", "I slept badly again."),)))
        assert reply.wait(120).status == "complete"
    finally:
        engine.close()


def test_a_model_installed_from_the_command_line_answers_its_first_message_from_the_cache(
        model_home):
    """`haven models import` has the model read Haven's own prompt once, so the very first
    start loads it from disk instead of evaluating it while the person types."""
    from app.conversation.prompts import PromptLibrary
    from app.paths import DataPaths
    from app.runtime import selected_model_spec
    from app.settings import load_settings

    home = model_home(max_tokens=48, seed=7)
    saved = list((home / "models" / "prompt-cache").glob("*.kv"))
    assert len(saved) == 1 and saved[0].stat().st_mode & 0o777 == 0o600

    paths = DataPaths(home)
    system = PromptLibrary().render("companion.md")
    first = ChatRequest(system=system + "\n\nAt the start of this session the person rated "
                        "their mood 4 out of 10.", turns=(), fold_instruction=FOLD,
                        params=GenerationParams(max_tokens=8, seed=7), shared_prefix=len(system))
    engine = Engine()
    try:
        engine.load(selected_model_spec(paths, load_settings(paths))).result(120)
        opened = engine.prefill(first).result(120)
        assert opened.status == "done" and opened.prompt_cache == "loaded"
    finally:
        engine.close()
