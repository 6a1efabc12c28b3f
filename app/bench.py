"""``haven bench``: performance figures, each compared with a baseline from the same run.

Model figures (``run_model_bench``): load time; decode speed through Haven's engine (the
model process and its pipe) against raw llama-cpp-python ``create_completion`` on the same
model and threads, inside the model process;
time to first token over a scripted multi-turn conversation (and how many prompt tokens
llama.cpp reused from its KV cache each turn, by its own counters); a summary fold;
cancel latency; prompt evaluation speed; peak memory against a budget.

Store figures (``run_store_bench``): opening (with key derivation), 10,000 committed
messages, full-text search, and an encrypted export of all of it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from app.llm import ChatRequest, Engine, GenerationParams, ModelSpec, Turn

USER_TURNS = [
    "Hi. I've had a stressful week at work and I can't switch off in the evenings.",
    "Mostly it's one project. My manager keeps changing the deadline.",
    "I lie awake going over everything I might have done wrong.",
    "I guess I think that if it fails, it will be my fault.",
    "Evidence? Well, last time a project slipped nobody blamed me.",
    "I could try writing a list before bed so it's out of my head.",
    "Maybe also a short walk after dinner.",
    "I'd like to feel less tense by Friday.",
    "It helps to say it out loud, thank you.",
    "What should I try first tonight?",
    "Okay, I'll start with the list.",
    "Thanks, that's all for today.",
]
FOLD_INSTRUCTION = "Summarise the conversation so far in at most 100 words."
SYSTEM = "You are Haven, a warm and brief self-help companion."


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _process_peak_rss_mb(pid: int | None) -> float:
    """Peak resident memory of a live process (the model process), from /proc; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 1e6 / 1.048576
    except Exception:
        return 0.0


def _kv_cache_mb(metadata: dict, n_ctx: int) -> float:
    arch = metadata.get("general.architecture", "")

    def num(key: str, default: int = 0) -> int:
        try:
            return int(metadata.get(f"{arch}.{key}", default))
        except (TypeError, ValueError):
            return default

    layers = num("block_count")
    heads = num("attention.head_count", 1) or 1
    heads_kv = num("attention.head_count_kv", heads) or heads
    embd = num("embedding_length")
    key_len = num("attention.key_length", embd // heads)
    value_len = num("attention.value_length", embd // heads)
    per_token = layers * heads_kv * (key_len + value_len) * 2  # f16 K and V
    return per_token * n_ctx / 1e6


STORY = "Tell me a long story about a lighthouse keeper."


def _pieces_per_second(pieces) -> float:
    """Pieces per second from the first piece to the last (prompt time left out)."""
    first = None
    count = 0
    for _ in pieces:
        count += 1
        if first is None:
            first = time.perf_counter()
    elapsed = time.perf_counter() - (first or time.perf_counter())
    return (count - 1) / elapsed if count > 1 and elapsed > 0 else 0.0


def _raw_decode(engine: Engine, max_tokens: int) -> float:
    """Decode speed of plain llama-cpp-python streaming (in the model process, no pipe),
    timed like Haven's: from the first piece to the last."""
    figures = engine.baseline_decode(STORY, max_tokens, seed=11).result()
    tokens, seconds = figures["tokens"], figures["seconds"]
    return (tokens - 1) / seconds if tokens > 1 and seconds > 0 else 0.0


def _haven_decode(engine: Engine, max_tokens: int) -> float:
    return _pieces_per_second(engine.chat(ChatRequest(
        system="", turns=(Turn("user", STORY),),
        params=GenerationParams(max_tokens=max_tokens, seed=11))))


def run_model_bench(spec: ModelSpec, turns: int = 10, decode_tokens: int = 128) -> dict:
    started = time.perf_counter()
    engine = Engine()
    try:
        engine.load(spec).result()
        load_s = time.perf_counter() - started

        # decode: raw llama-cpp-python vs Haven, interleaved twice to even out noise
        raw_rates, haven_rates = [], []
        for _ in range(2):
            raw_rates.append(_raw_decode(engine, decode_tokens))
            haven_rates.append(_haven_decode(engine, decode_tokens))
        baseline = statistics.median(raw_rates)
        haven = statistics.median(haven_rates)

        # a scripted conversation: time to first token and KV-cache reuse per turn
        history: list[Turn] = []
        ttft, reused, prompt_rates = [], [], []
        for index in range(turns):
            history.append(Turn("user", USER_TURNS[index % len(USER_TURNS)]))
            stream = engine.chat(ChatRequest(system=SYSTEM, turns=tuple(history),
                                             fold_instruction=FOLD_INSTRUCTION,
                                             params=GenerationParams(max_tokens=48, seed=3)))
            for _ in stream:
                pass
            reply = stream.wait()
            ttft.append(round(reply.time_to_first_token or 0.0, 4))
            reused.append(reply.prompt_tokens - reply.evaluated_prompt_tokens)
            history.append(Turn("assistant", reply.text))
            if index == 0:
                perf = engine.perf_counters().result()
                if perf["t_p_eval_ms"] > 0:
                    prompt_rates.append(perf["n_p_eval"] / (perf["t_p_eval_ms"] / 1000))

        # a fold: a history longer than the context
        long_history = []
        for i in range(24):  # about 1.5 contexts of history at n_ctx 2048
            long_history.append(Turn("user", f"{USER_TURNS[i % len(USER_TURNS)]} " * 4))
            long_history.append(Turn("assistant", "That sounds hard. Tell me more about it. " * 4))
        long_history.append(Turn("user", "What should I try tonight?"))
        stream = engine.chat(ChatRequest(system=SYSTEM, turns=tuple(long_history),
                                         fold_instruction=FOLD_INSTRUCTION,
                                         params=GenerationParams(max_tokens=16, seed=3)))
        for _ in stream:
            pass
        fold_reply = stream.wait()

        # cancel latency: from cancel() to the stream's end, mid-generation
        stream = engine.chat(ChatRequest(system="", turns=(Turn("user", "Write a long essay."),),
                                         params=GenerationParams(max_tokens=400, seed=5)))
        pieces = iter(stream)
        next(pieces, None)
        cancelled_at = time.perf_counter()
        stream.cancel()
        for _ in pieces:
            pass
        stream.wait()
        cancel_latency = time.perf_counter() - cancelled_at

        metadata = engine.model_info().result()
        kv_mb = _kv_cache_mb(metadata, engine.n_ctx)
        file_mb = spec.path.stat().st_size / 1e6
        model_peak = _process_peak_rss_mb(engine.worker_pid)
        peak = _peak_rss_mb() + model_peak  # Haven and its model process together
        return {
            "model": spec.name,
            "threads": spec.threads,
            "weight_buffers": engine.buffers,
            "n_ctx": engine.n_ctx,
            "load_s": round(load_s, 3),
            "baseline_decode_tok_s": round(baseline, 2),
            "haven_decode_tok_s": round(haven, 2),
            "decode_ratio": round(haven / baseline, 3) if baseline else None,
            "ttft_s": ttft,
            "ttft_growth": round(ttft[-1] / ttft[1], 3) if len(ttft) > 1 and ttft[1] else None,
            "reused_prompt_tokens": reused,
            "fold_s": round(fold_reply.fold_seconds, 3),
            "folded_turns": fold_reply.folded,
            "cancel_latency_s": round(cancel_latency, 4),
            "prompt_tok_s": round(statistics.median(prompt_rates), 1) if prompt_rates else None,
            "peak_rss_mb": round(peak, 1),
            "model_process_peak_rss_mb": round(model_peak, 1),
            "restarts": engine.restarts,
            "model_file_mb": round(file_mb, 1),
            "kv_cache_mb": round(kv_mb, 1),
            "rss_budget_mb": round(file_mb + kv_mb + 300, 1),
        }
    finally:
        engine.close()


def run_store_bench(messages: int = 10_000) -> dict:
    """The journal and export at scale, in a throwaway folder."""
    from app.export.service import export_journal
    from app.safety import assess_risk
    from app.store import Journal

    with tempfile.TemporaryDirectory(prefix="haven-bench-") as folder:
        path = Path(folder) / "journal.db"
        Journal.create(path, "bench passphrase").close()
        started = time.perf_counter()
        journal = Journal.open(path, "bench passphrase")
        open_s = time.perf_counter() - started

        words = ["work", "sleep", "worry", "walk", "friend", "meeting", "family", "tired",
                 "calm", "deadline", "evening", "river", "garden", "coffee", "music"]
        started = time.perf_counter()
        session = journal.start_session()
        for i in range(messages):
            if i % 200 == 0 and i:
                session = journal.start_session()
            text = " ".join(words[(i * 7 + k) % len(words)] for k in range(12)) + f" entry{i}"
            journal.add_message(session.id, "user" if i % 2 == 0 else "assistant", text)
        insert_s = time.perf_counter() - started

        started = time.perf_counter()
        searches = 20
        for i in range(searches):
            journal.search(words[i % len(words)] + " " + words[(i + 3) % len(words)])
        search_ms = (time.perf_counter() - started) / searches * 1000

        started = time.perf_counter()
        export_journal(journal, Path(folder) / "export.age", passphrase="bench export pass")
        export_s = time.perf_counter() - started
        from app.insights.bench import recall_figures  # issue 15: recall at 10,000 messages
        recall = recall_figures(journal)
        journal.close()

    sample = "I have been feeling low and tired for weeks, and work is hard. " * 32
    started = time.perf_counter()
    for _ in range(100):
        assess_risk(sample[:2000])
    risk_ms = (time.perf_counter() - started) / 100 * 1000
    return {
        "store_open_s": round(open_s, 3),
        "store_messages": messages,
        "store_insert_s": round(insert_s, 2),
        "store_insert_per_s": round(messages / insert_s, 1),
        "store_search_ms": round(search_ms, 2),
        "export_s": round(export_s, 2),
        "risk_check_ms_per_2000_chars": round(risk_ms, 2),
        **recall,
    }


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


async def _ui_latency(engine: Engine, stream_tokens: int = 96) -> dict:
    """Keystroke latency in the app: idle, while a prefill runs (typing at 6 characters a
    second), then while a reply streams (same run). A keystroke's latency is from the key
    event to the first screen refresh after its character is in the message box."""
    from textual import events

    from app.paths import DataPaths
    from app.settings import GenerationSettings, Settings
    from app.store import Journal
    from app.tui.app import HavenApp
    from app.tui.screens.chat import ChatScreen
    from app.tui.widgets.message_box import MessageBox

    with tempfile.TemporaryDirectory(prefix="haven-bench-ui-") as folder:
        paths = DataPaths(Path(folder)).ensure()
        settings = Settings(notice_acknowledged=True,
                            generation=GenerationSettings(max_tokens=stream_tokens))
        Journal.create(paths.journal, "bench passphrase").close()
        app = HavenApp(paths, settings, engine_factory=lambda spec: engine)
        async with app.run_test(size=(100, 30)) as pilot:
            app.unlocked(Journal.open(paths.journal, "bench passphrase"))
            for _ in range(100):
                await pilot.pause(0.02)
                if isinstance(app.screen, ChatScreen):
                    break
            box = app.screen.query_one(MessageBox)

            async def keystrokes(count: int) -> list[float]:
                """Post a key to the message box; time until the character is in it."""
                out = []
                for _ in range(count):
                    before = len(box.text)
                    started = time.perf_counter()
                    box.post_message(events.Key("x", "x"))
                    while len(box.text) == before:
                        await asyncio.sleep(0.0005)
                    out.append((time.perf_counter() - started) * 1000)
                    await asyncio.sleep(0.02)
                return out

            idle = await keystrokes(20)
            box.clear()

            # Typing while the model reads ahead: a long draft is pasted (its prefill runs
            # for a while), then typed on at a fast typist's pace; the chat screen's own
            # prefills (a finished word, a pause) keep the model busy until it catches up.
            def prefilling() -> bool:
                return any(p.op == "prefill" for p in list(engine._pending.values()))

            async def typed(text: str) -> tuple[list[float], int]:
                during, typed_count = [], 0
                began = time.perf_counter()
                for i, char in enumerate(text):
                    wait = began + i / TYPING_CHARS_PER_S - time.perf_counter()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    busy = prefilling()
                    before = len(box.text)
                    started = time.perf_counter()
                    key = "space" if char == " " else char
                    box.post_message(events.Key(key, char))
                    while len(box.text) == before:
                        await asyncio.sleep(0.0005)
                    shown = asyncio.Event()
                    app.call_after_refresh(shown.set)
                    await shown.wait()
                    typed_count += 1
                    if busy and prefilling():
                        during.append((time.perf_counter() - started) * 1000)
                return during, typed_count

            box.text = " ".join(SESSION_MESSAGES * 8) + " "  # about 1,100 tokens
            box.move_cursor(box.document.end)
            while not prefilling():
                await pilot.pause(0.01)
            while_prefill, typed_keys = await typed(
                " ".join(m.lower() for m in SESSION_MESSAGES[:4]))
            app.service.stop_prefill()
            box.clear()
            await pilot.press(*"Tell me a long story")
            await pilot.press("enter")
            while not app.screen.replying:
                await pilot.pause(0.01)
            streaming = []
            while app.screen.replying and len(streaming) < 60:
                streaming += await keystrokes(1)
            app.service.cancel()
            while app.screen.replying:
                await pilot.pause(0.05)
    return {
        "input_latency_idle_ms": round(statistics.median(idle), 2),
        "input_latency_while_prefill_median_ms": (round(statistics.median(while_prefill), 2)
                                                  if while_prefill else None),
        "input_latency_while_prefill_p95_ms": (round(_percentile(while_prefill, 0.95), 2)
                                               if while_prefill else None),
        "input_latency_while_prefill_max_ms": (round(max(while_prefill), 2)
                                               if while_prefill else None),
        "keystrokes_while_prefill": f"{len(while_prefill)} of {typed_keys} typed at "
                                    f"{TYPING_CHARS_PER_S:g}/s",
        "input_latency_streaming_ms": round(statistics.median(streaming), 2) if streaming else None,
        "input_latency_streaming_max_ms": round(max(streaming), 2) if streaming else None,
        "keystrokes_while_streaming": len(streaming),
    }


def run_ui_bench(spec: ModelSpec) -> dict:
    engine = Engine()
    try:
        engine.load(spec).result()
        return asyncio.run(_ui_latency(engine))
    finally:
        engine.close()


# ---- a scripted session through the real Companion (issue 13) -----------------------------

SESSION_MESSAGES = [
    "Hi. I've had a stressful week at work and I can't switch off in the evenings.",
    "Mostly it's one project. My manager keeps changing the deadline on us.",
    "I lie awake going over everything I might have done wrong that day.",
    "I suppose I worry the team will think the delay is my doing.",
    "Evidence? Well, last time a project slipped nobody blamed me at all.",
    "I could try writing a list before bed so it's out of my head.",
    "Maybe also a short walk after dinner, round the park.",
    "I'd like to feel less tense by Friday, that would be good.",
    "It helps to say it out loud, thank you.",
    "Which of those two ideas would you start with this evening?",
    "Okay, I'll start with the list and see how it goes.",
    "Thanks, that's all for today.",
]
TYPING_CHARS_PER_S = 6.0
RATE_ROUNDS = 5  # alternating rounds of Haven and raw llama-cpp-python for each rate
RATE_TURNS = 8  # the session's first turns: a prompt of about 700 tokens for the rates
PREFILL_DEBOUNCE_S = 0.5  # at most one draft prefill this often, at word boundaries


class _RecordingEngine(Engine):
    """The real engine, remembering each reply's figures for the report (the Companion
    keeps only the text). Side jobs run as :meth:`side_job` so their figures are seen."""

    def __init__(self, side_tokens: int | None = None) -> None:
        super().__init__()
        self.chats: list = []
        self.side: list = []
        self.side_tokens = side_tokens  # a cap on side jobs' length, for slow machines

    def side_job(self, system, turns, params, json_schema=None):
        if self.side_tokens is not None and params.max_tokens > self.side_tokens:
            from dataclasses import replace

            params = replace(params, max_tokens=self.side_tokens)
        return super().side_job(system, turns, params, json_schema)

    def chat(self, request):
        stream = super().chat(request)
        self.chats.append(stream)
        return stream

    def complete(self, system, turns, params, json_schema=None):
        from concurrent.futures import Future

        from app.llm import EngineError

        future: Future = Future()
        stream = self.side_job(system, turns, params, json_schema)

        def done(reply) -> None:
            self.side.append(reply)
            if reply.status == "complete":
                future.set_result(reply.text)
            else:
                future.set_exception(EngineError(reply.error or reply.status))

        stream.add_done_callback(done)
        return future


def _load_averages() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (as `uptime` shows them)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run_session_bench(spec: ModelSpec, prefill: bool = True, max_tokens: int = 64,
                      messages: int = len(SESSION_MESSAGES), draft_after: int | None = None,
                      side_tokens: int | None = None, catalog_name: str | None = None) -> dict:
    """A person's session, as they feel it: Haven's real prompts through the path the app
    takes (HavenService → Companion → Engine), the first message typed (6 characters a
    second) while the model loads, each message's send → first token, the thought-record
    draft and the closing summary and title (the closing screen waits for them).
    ``prefill``: Haven evaluates the system prompt once loaded, the draft while it is
    typed and the next prompt after each reply (off: the behaviour before issue 13).
    ``catalog_name``: the catalog model whose RAM figure the peak is held against."""
    from app.conversation.events import NoModel, Token
    from app.conversation.service import HavenService
    from app.paths import DataPaths
    from app.settings import GenerationSettings, Settings
    from app.store import Journal

    draft_after = draft_after or max(1, messages // 2)
    figures: dict = {"load_average_at_start": _load_averages(),
                     "prefill_before_enter": prefill, "reply_max_tokens": max_tokens,
                     "side_job_max_tokens": side_tokens, "messages_sent": messages}
    with tempfile.TemporaryDirectory(prefix="haven-bench-session-") as folder:
        paths = DataPaths(Path(folder) / "home").ensure()
        Journal.create(paths.journal, "bench passphrase").close()
        journal = Journal.open(paths.journal, "bench passphrase")
        engine = _RecordingEngine(side_tokens)
        settings = Settings(notice_acknowledged=True, country="GB", generation=GenerationSettings(
            max_tokens=max_tokens, seed=3))
        service = HavenService(paths, settings, journal, engine_factory=lambda _spec: engine,
                               start=False)
        service.companion.engine = engine
        companion = service.companion  # for the prompt the rates are measured on, at the end
        try:
            started = time.perf_counter()
            loading = engine.load(spec)
            service.new_session()
            service.record_mood(5)  # the check-in, while the model loads
            rows = []
            system_prefilled = False
            opening_prefill = None
            load_s = None
            for index, text in enumerate(SESSION_MESSAGES[:messages]):
                # typing, at a fast typist's pace; prefill at word boundaries, debounced
                typing_from = time.perf_counter()
                last_prefill = 0.0
                for i in range(1, len(text) + 1):
                    wait = typing_from + i / TYPING_CHARS_PER_S - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    if load_s is None and loading.done():
                        load_s = time.perf_counter() - started
                    if not prefill or not engine.ready:
                        continue
                    if not system_prefilled:
                        # the system prompt (and the history), once loaded; Haven's own part
                        # comes from the prompt cache when an earlier run saved it
                        opening_prefill = service.prefill()
                        system_prefilled = True
                    now = time.perf_counter()
                    if text[i - 1] == " " and now - last_prefill >= PREFILL_DEBOUNCE_S:
                        service.prefill(text[:i])  # as the chat screen does while typing
                        last_prefill = now
                waited_for_model = 0.0
                if not engine.ready:  # Enter before the model is up: it waits, and so do we
                    before = time.perf_counter()
                    loading.result()
                    waited_for_model = time.perf_counter() - before
                    load_s = load_s or time.perf_counter() - started
                sent = time.perf_counter()
                first = None
                count = len(engine.chats)
                replied = False
                for event in service.send(text):
                    if isinstance(event, Token) and first is None:
                        first = time.perf_counter()
                    if isinstance(event, NoModel):
                        break
                reply = engine.chats[-1].wait() if len(engine.chats) > count else None
                replied = reply is not None
                rows.append({
                    "message": index + 1,
                    "chars": len(text),
                    # shown: the first text the reply check released to the screen (it holds
                    # text until a sentence ends; a random-weight model writes no sentences)
                    "send_to_first_token_s": round(first - sent, 3) if first else None,
                    # the model's first sampled token, and its first piece of text (a
                    # random-weight model can sample many tokens that make no text yet)
                    "send_to_first_model_token_s": (
                        round(engine.chats[-1].first_token_at - sent, 3)
                        if replied and engine.chats[-1].first_token_at else None),
                    "send_to_first_model_text_s": (
                        round(engine.chats[-1].first_piece_at - sent, 3)
                        if replied and engine.chats[-1].first_piece_at else None),
                    "waited_for_model_s": round(waited_for_model, 3),
                    "prompt_tokens": reply.prompt_tokens if replied else 0,
                    "evaluated_tokens": reply.evaluated_prompt_tokens if replied else 0,
                    "reused_tokens": reply.reused_prompt_tokens if replied else 0,
                    "folded_turns": reply.folded if replied else 0,
                    "status": reply.status if replied else "no reply",
                })
                if prefill:
                    service.prepare_next()
                if index + 1 == draft_after:
                    at = time.perf_counter()
                    service.draft_thought_record()
                    draft = engine.side[-1] if engine.side else None
                    figures["draft_s"] = round(time.perf_counter() - at, 3)
                    if draft is not None:
                        figures["draft_prompt_tokens"] = draft.prompt_tokens
                        figures["draft_evaluated_tokens"] = draft.evaluated_prompt_tokens
                        figures["draft_kept_conversation"] = draft.kept
                    if prefill:
                        service.prepare_next()
            side_before = len(engine.side)
            at = time.perf_counter()
            closing = service.close_session_soon()
            # the chat screen shows the closing screen as soon as this returns; the summary
            # and title fill in when the model has written them
            figures["closing_screen_after_ctrl_g_s"] = round(time.perf_counter() - at, 3)
            closing.result()
            figures["closing_summary_and_title_s"] = round(time.perf_counter() - at, 3)
            figures["closing_jobs"] = [
                {"prompt_tokens": r.prompt_tokens, "evaluated_tokens": r.evaluated_prompt_tokens,
                 "kept": r.kept} for r in engine.side[side_before:]]
            figures["load_s"] = round(load_s or 0.0, 3)
            if opening_prefill is not None:
                opened = opening_prefill.result()
                figures["prompt_cache"] = opened.prompt_cache or "not used"
            figures["messages"] = rows
            waits = [r["send_to_first_token_s"] for r in rows if r["send_to_first_token_s"]]
            figures["send_to_first_token_max_s"] = max(waits) if waits else None
            figures["send_to_first_token_median_s"] = (round(statistics.median(waits), 3)
                                                       if waits else None)
            model_waits = [r["send_to_first_model_token_s"] for r in rows
                           if r["send_to_first_model_token_s"]]
            figures["first_model_token_max_s"] = max(model_waits) if model_waits else None
            figures["first_model_token_median_s"] = (round(statistics.median(model_waits), 3)
                                                     if model_waits else None)
            text_waits = [r["send_to_first_model_text_s"] for r in rows
                          if r["send_to_first_model_text_s"]]
            figures["first_model_text_max_s"] = max(text_waits) if text_waits else None
            figures["prompt_tokens_evaluated"] = sum(r["evaluated_tokens"] for r in rows)
            figures["prompt_tokens_reused"] = sum(r["reused_tokens"] for r in rows)

            # rates against raw llama-cpp-python on the same model, in the same run: rounds
            # that alternate the two, so a neighbour's burst of work falls on both alike
            system = companion.system_prompt()
            turns, _ = companion._model_turns(companion.session)
            turns = turns[:RATE_TURNS]
            raw_rates, chat_rates = [], []
            for round_ in range(RATE_ROUNDS):
                raw = engine.baseline_prefill(system, turns).result()
                raw_rates.append(raw["tokens"] / raw["seconds"] if raw["seconds"] else 0.0)
                # the same prompt, nothing reused, as a chat evaluates it on Enter
                cold = engine.chat(ChatRequest(system=f"Hi {round_}. " + system, turns=tuple(turns),
                                               params=GenerationParams(max_tokens=1))).wait()
                chat_rates.append(cold.evaluated_prompt_tokens / cold.prompt_seconds
                                  if cold.prompt_seconds else 0.0)
            ours = engine.prefill(ChatRequest(system="Hello. " + system, turns=tuple(turns),
                                              params=GenerationParams(max_tokens=max_tokens))
                                  ).result()
            raw_rate, chat_rate = statistics.median(raw_rates), statistics.median(chat_rates)
            our_rate = ours.evaluated_tokens / ours.seconds if ours.seconds else 0.0
            figures["rate_prompt_tokens"] = raw["tokens"]
            figures["baseline_prefill_tok_s"] = round(raw_rate, 1)
            figures["haven_prefill_tok_s"] = round(chat_rate, 1)
            figures["prefill_ratio"] = round(chat_rate / raw_rate, 3) if raw_rate else None
            paired = [c / r for c, r in zip(chat_rates, raw_rates, strict=True) if r]
            figures["prefill_ratio_per_round"] = [round(x, 3) for x in paired]
            # each round's two runs are seconds apart: the median of their ratios is the
            # figure least moved by a neighbour's burst of work on a shared machine
            figures["prefill_ratio_paired"] = round(statistics.median(paired), 3) if paired else None
            figures["background_prefill_tok_s"] = round(our_rate, 1)  # in preemptible chunks
            figures["background_prefill_ratio"] = (round(our_rate / raw_rate, 3)
                                                   if raw_rate else None)
            raw_decodes, our_decodes = [], []
            for _ in range(RATE_ROUNDS):
                raw_decodes.append(_raw_decode(engine, max_tokens))
                our_decodes.append(_haven_decode(engine, max_tokens))
            raw_decode, our_decode = statistics.median(raw_decodes), statistics.median(our_decodes)
            figures["baseline_decode_tok_s"] = round(raw_decode, 2)
            figures["haven_decode_tok_s"] = round(our_decode, 2)
            figures["decode_ratio"] = round(our_decode / raw_decode, 3) if raw_decode else None
            paired = [o / r for o, r in zip(our_decodes, raw_decodes, strict=True) if r]
            figures["decode_ratio_per_round"] = [round(x, 3) for x in paired]
            figures["decode_ratio_paired"] = round(statistics.median(paired), 3) if paired else None
            model_peak = _process_peak_rss_mb(engine.worker_pid)
            figures["model_process_peak_rss_mb"] = round(model_peak, 1)
            figures["peak_rss_mb"] = round(_peak_rss_mb() + model_peak, 1)
            figures["threads"] = spec.threads
            figures["n_ctx"] = engine.n_ctx
            if catalog_name:
                from app.modelhub.catalog import catalog

                entry = catalog().get(catalog_name)
                if entry is not None:
                    figures["catalog_ram_mb"] = int(entry.min_ram_gb * 1024)
            figures["load_average_at_end"] = _load_averages()
        finally:
            service.companion.engine = None
            service.shutdown()
            engine.close()
    return figures
