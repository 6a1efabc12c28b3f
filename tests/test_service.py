"""HavenService from many threads at once (issue 14): a real SQLCipher journal, the
scripted engine. Replies, moods, modes, Skip, drafts, closing, rename and delete race;
the session in memory and the journal must agree at the end, nothing stays half-written,
and shutdown waits for the reply before it closes the journal."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import Future

import pytest

from app.conversation.events import ReplyDone, Token, UserSaved
from app.conversation.flow import FlowError, Mode
from app.conversation.prompts import prompt_library
from app.conversation.service import Busy, HavenService, ServiceClosed
from app.conversation.titles import date_title
from app.paths import DataPaths
from app.settings import Settings
from app.store import Journal
from tests.conftest import PASSPHRASE
from tests.scripted_engine import ScriptedEngine

ORDINARY = ["I had a long day at the office", "My sister called me this evening",
            "I keep putting off the washing up", "The bus was late again this morning"]


class FoldingEngine(ScriptedEngine):
    """Every reply folds the two oldest turns into a running summary, as a full context does."""

    def chat(self, request):
        self.next_reply_extra = {"folded": 1, "summary": f"summary {len(self.requests)}"}
        return super().chat(request)


@pytest.fixture
def service(tmp_path):
    paths = DataPaths(tmp_path / "home")
    paths.ensure()
    journal = Journal.create(paths.journal, PASSPHRASE)
    engine = FoldingEngine(replies=[], delay=0.0005)
    svc = HavenService(paths, Settings(country="GB"), journal,
                       engine_factory=lambda spec: engine, start=False)
    svc.companion.engine = engine
    yield svc
    svc.shutdown()


def test_many_threads_leave_the_session_and_the_journal_consistent(service, tmp_path):
    journal = service._journal
    service.new_session()
    errors: list[BaseException] = []
    sent: list[str] = []
    refused: list[str] = []
    done: list[str] = []
    stop = threading.Event()

    def guarded(fn):
        def run():
            rng = random.Random(hash(fn.__name__))
            try:
                while not stop.is_set():
                    try:
                        fn(rng)
                        done.append(fn.__name__)
                    except (FlowError, Busy):  # a clean refusal (the session had ended): nothing kept
                        refused.append(fn.__name__)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                stop.set()
        return threading.Thread(target=run, name=fn.__name__)

    def talker(rng):
        text = rng.choice(ORDINARY)
        events = list(service.send(text))
        if any(isinstance(e, UserSaved) for e in events):
            sent.append(text)
            assert isinstance(events[-1], ReplyDone) or not any(isinstance(e, Token) for e in events)

    def mood(rng):
        time.sleep(0.005)
        service.record_mood(rng.randint(0, 10))
        service.choose_mode(rng.choice(list(Mode)))
        service.skip_check_in()

    def drafter(rng):
        time.sleep(0.01)
        service.draft_thought_record()

    def namer(rng):
        time.sleep(0.005)
        session = service.session
        if session is not None:
            service.rename_session(session.id, f"title {rng.randint(0, 999)}")

    def closer(rng):
        time.sleep(0.05)
        try:
            service.close_session()
            service.set_next_step("a walk")
            service.record_mood(rng.randint(0, 10))
            service.end_session()
        finally:
            service.new_session(wait=True)

    def deleter(rng):
        time.sleep(0.02)
        old = [s for s in service.sessions() if service.session is None or s.id != service.session.id]
        if old:
            service.delete_session(rng.choice(old).id)

    threads = [guarded(f) for f in (talker, talker, mood, drafter, namer, closer, deleter)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60  # a bound on a stuck run, not a timing check
    while len(sent) < 150 and not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert len(sent) >= 50 and len(done) >= 300  # a few hundred operations all told

    current = service.session
    if current is not None:  # the copy in memory is the journal's, to the field
        assert journal.session(current.id) == current
    for session in journal.sessions():
        messages = journal.messages(session.id)
        assert not [m for m in messages if m.status == "partial"]
        if session.folded_until is not None:  # a fold points into its own session
            assert session.folded_until in {m.id for m in messages}
            assert session.running_summary


def reply_in_the_background(service) -> threading.Thread:
    """A new session and an ordinary message, its long reply streaming on a thread of its
    own; returns once the reply has begun."""
    engine = service.companion.engine
    engine.delay = 0.02
    engine.replies = ["That sounds hard. " * 40]
    service.new_session()
    started = threading.Event()

    def reply():
        for event in service.send("I had a long day at the office"):
            if isinstance(event, Token):
                started.set()

    worker = threading.Thread(target=reply)
    worker.start()
    assert started.wait(10)
    return worker


def test_a_mood_saved_while_haven_replies_survives_the_reply(service):
    """The reply's end (a fold) and the mood both land; neither undoes the other."""
    worker = reply_in_the_background(service)
    service.record_mood(6)
    worker.join(30)
    session = service.session
    assert session.mood_before == 6
    assert session.running_summary and session.folded_until
    assert service._journal.session(session.id) == session


def test_new_session_is_refused_while_haven_replies(service):
    worker = reply_in_the_background(service)
    with pytest.raises(Busy):
        service.new_session()
    service.cancel()
    worker.join(30)
    service.new_session()  # and allowed again once the reply has stopped


def test_shutdown_waits_for_the_reply_before_closing_the_journal(tmp_path):
    paths = DataPaths(tmp_path / "home")
    paths.ensure()
    journal = Journal.create(paths.journal, PASSPHRASE)
    engine = ScriptedEngine(replies=["That sounds hard. " * 400], delay=0.01)
    service = HavenService(paths, Settings(country="GB"), journal, start=False)
    service.companion.engine = engine
    service.new_session()
    started = threading.Event()
    failures: list[BaseException] = []
    events: list = []

    def reply():
        try:
            for event in service.send("I had a long day at the office"):
                events.append(event)
                if isinstance(event, Token):
                    started.set()
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    worker = threading.Thread(target=reply)
    worker.start()
    assert started.wait(10)
    service.shutdown()
    worker.join(30)
    assert not failures, failures
    assert isinstance(events[-1], ReplyDone) and events[-1].status == "cancelled"
    with pytest.raises(ServiceClosed):
        service.record_mood(5)
    reopened = Journal.open(paths.journal, PASSPHRASE)
    try:
        (session,) = reopened.sessions()
        statuses = [m.status for m in reopened.messages(session.id) if m.role == "assistant"]
        assert statuses == ["cancelled"]
        assert session.ended is not None
    finally:
        reopened.close()


class LoadingEngine(ScriptedEngine):
    """A scripted engine that is still loading until told it is ready."""

    def __init__(self, name: str) -> None:
        super().__init__()
        from app.llm import EngineState

        self.state = EngineState.LOADING
        self.name = name
        self.closed = threading.Event()
        self.listeners: list = []

    def on_state(self, listener) -> None:
        self.listeners.append(listener)

    def become_ready(self) -> None:
        from app.llm import EngineState

        self.state = EngineState.READY
        for listener in self.listeners:
            listener(self.state, None)

    def close(self) -> None:
        self.closed.set()


def test_switching_models_keeps_the_old_one_until_the_new_one_is_ready(tmp_path):
    paths = DataPaths(tmp_path / "home")
    paths.ensure()
    journal = Journal.create(paths.journal, PASSPHRASE)
    engines = iter([LoadingEngine("old"), LoadingEngine("new")])
    service = HavenService(paths, Settings(country="GB"), journal,
                           engine_factory=lambda spec: next(engines))
    old = service.engine
    old.become_ready()
    service.start_engine()  # the person picks another model
    new = service._loading
    assert service.engine is old and not old.closed.is_set()  # still answering
    assert "Loading" in service.engine_status() or "loading" in service.engine_status()
    new.become_ready()
    assert service.engine is new
    assert old.closed.wait(5)  # closed as soon as the new one could answer
    service.shutdown()
    assert new.closed.is_set()


@pytest.mark.model
def test_prefill_goes_through_the_service_and_never_while_haven_replies(tmp_path, gemma_gguf):
    """Issue 13 through issue 14's service: the draft is evaluated before Enter, never
    while a reply is in progress, and after a reply the history is made ready."""
    from app.llm import Engine, ModelSpec
    from app.settings import GenerationSettings

    paths = DataPaths(tmp_path / "home")
    paths.ensure()
    journal = Journal.create(paths.journal, PASSPHRASE)
    engine = Engine()
    engine.load(ModelSpec(gemma_gguf, "gemma", "gemma", n_ctx=2048, threads=2)).result(120)
    svc = HavenService(paths, Settings(country="GB", generation=GenerationSettings(
        max_tokens=16, seed=3)), journal, engine_factory=lambda spec: engine, start=False)
    svc.companion.engine = engine
    try:
        svc.new_session()
        assert svc.prefill().result(120).status == "done"
        text = "Work has been a lot this week and I keep replaying one meeting."
        assert svc.prefill(text[:40]).result(60).status == "done"
        seen: list = []
        replying = threading.Event()
        over = threading.Event()

        def talk():
            for event in svc.send(text):
                seen.append(event)
                if isinstance(event, Token):
                    replying.set()
                    over.wait(60)  # hold the reply open while the UI tries to prefill

        thread = threading.Thread(target=talk)
        thread.start()
        assert replying.wait(120)
        assert svc.prefill("the next words") is None  # a reply is in progress
        assert svc.prepare_next() is None
        over.set()
        thread.join(120)
        done = [e for e in seen if isinstance(e, ReplyDone)]
        assert done and done[-1].status == "complete"
        ready = svc.prepare_next().result(120)
        assert ready.status == "not needed" and ready.prefill.status == "done"
        assert svc.prefill("Mostly the part where").result(60).status == "done"
        svc.stop_prefill()  # nothing running: harmless
        assert svc.prefill("I want to kill myself tonight") is None  # never reaches the model
    finally:
        svc.shutdown()
        engine.close()


def test_a_work_mode_chosen_while_the_session_closes_is_ignored(service):
    """Choosing how to work (the palette) during the closing steps never pulls the flow back
    to the conversation: the step and the closing mood still land in the session."""
    engine = service.companion.engine = ScriptedEngine()  # no folds: the summary has turns
    service.new_session()
    list(service.send("I had a long day at the office"))
    writing, go_on = threading.Event(), threading.Event()
    scripted_complete = engine.complete

    def held_complete(*args, **kwargs):  # the summary waits until the choice has been made
        writing.set()
        assert go_on.wait(30)
        return scripted_complete(*args, **kwargs)

    engine.complete = held_complete
    closer = threading.Thread(target=service.close_session)
    closer.start()
    assert writing.wait(30) and service.flow().closing
    answers = [service.choose_mode(Mode.THOUGHT_RECORD)]  # during the summary
    go_on.set()
    closer.join(30)
    assert service.flow().closing
    answers.append(service.choose_mode(Mode.ACTIVATION))  # after it, before the step
    assert service.flow().closing
    service.set_next_step("a walk after lunch")
    answers.append(service.choose_mode(Mode.SOCRATIC))  # before the closing mood
    service.record_mood(7)
    assert service.flow().ended
    session = service._journal.session(service.session.id)
    assert session.next_step == "a walk after lunch" and session.mood_after == 7
    assert answers == [False, False, False]  # the screen says so, kindly
    assert service.companion.flow.mode is Mode.FREE_TALK


def test_a_work_mode_chosen_while_talking_applies(service):
    service.new_session()
    assert service.choose_mode(Mode.THOUGHT_RECORD) is True
    assert not service.flow().checking_in and not service.flow().closing


class EchoingEngine(ScriptedEngine):
    """Answers the title request with a prompt instead of a title, as a small model can:
    the system prompt it was given, or Haven's own companion prompt."""

    def __init__(self, echo: str) -> None:
        super().__init__()
        self.echo = echo

    def complete(self, system, turns, params, json_schema=None):
        future = super().complete(system, turns, params, json_schema)
        if "title" not in system:
            return future
        echoed: Future = Future()
        echoed.set_result({"own": system, "companion": prompt_library().render("companion.md"),
                           "empty": "  ", "markup": "<b>Office</b> [day]",
                           "long": "A day at the office " * 6}[self.echo])
        return echoed


@pytest.mark.parametrize("echo", ["own", "companion", "empty", "markup", "long"])
def test_a_title_that_is_not_a_title_becomes_the_day(service, echo):
    service.companion.engine = EchoingEngine(echo)
    service.new_session()
    list(service.send("I had a long day at the office"))
    closed = service.close_session()
    assert closed.title == date_title(closed.started)
    assert closed.title.startswith("Conversation on ") and "You are" not in closed.title
    assert service._journal.session(closed.id).title == closed.title


def test_a_real_title_is_kept_tidied(service):
    service.companion.engine = ScriptedEngine(completions=["We talked about work.",
                                                           '**Title: "A long day at work."**'])
    service.new_session()
    list(service.send("I had a long day at the office"))
    assert service.close_session().title == "A long day at work"


@pytest.mark.parametrize("answer", ["own", "request"])
def test_a_summary_that_repeats_its_instructions_is_not_kept(service, answer):
    """A small model asked for the closing summary can answer with the request itself
    ("Write a short closing summary of this self-help conversation…"); that is not shown
    or saved as the person's summary, while the title still comes through."""
    summary_prompt = prompt_library().render("session_summary.md")
    echoed = {"own": summary_prompt, "request": "Please write the summary now. " + summary_prompt}
    service.companion.engine = ScriptedEngine(completions=[echoed[answer], "A long day at work"])
    service.new_session()
    list(service.send("I had a long day at the office"))
    closed = service.close_session()
    assert closed.summary is None
    assert service._journal.session(closed.id).summary is None
    assert closed.title == "A long day at work"


def test_a_real_summary_is_kept(service):
    summary = "You talked about a long day at the office and chose to take a short walk."
    service.companion.engine = ScriptedEngine(completions=[summary, "A long day at work"])
    service.new_session()
    list(service.send("I had a long day at the office"))
    assert service.close_session().summary == summary
