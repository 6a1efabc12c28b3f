"""HavenService: the one owner of Haven's state once the journal is open.

It holds the journal, the engine (start, switch, close), the companion (the session and
its flow) and the settings. The TUI's screens and the line-mode chat call only this;
nothing else reassigns the companion's session or touches its flow.

Safe across threads by construction:

- every step that reads or changes the session, the flow or the journal runs under one
  lock (``_state``), so the reply worker, the closing summary, a thought-record draft and
  the UI thread (a mood, a mode, Skip, rename, delete) never interleave inside a change;
- the slow parts that only wait on the model (streaming a reply, writing the closing
  summary, drafting a thought record) run *outside* that lock on copies they were handed,
  and their results are kept under it again, so a mood saved mid-reply is never undone
  by the reply's end (and ``running_summary``/``folded_until`` never by the mood);
- one reply at a time (``_replying``): a second message, a new or reopened session, or
  closing while Haven replies waits (worker threads) or is refused (the UI thread);
- reading ahead (issue 13: :meth:`prefill`, :meth:`prepare_next`) only builds a request
  under the lock and hands it to the model process; never while a reply is in progress,
  and whatever still runs is stopped when a reply starts (a fold done ahead is kept by
  the next message's quick step);
- every call is counted, and :meth:`shutdown` cancels the reply, waits for the calls in
  flight to end, ends the session, then closes the engine and only then the journal.

Engine changes reach the UI through :meth:`on_engine_change` callbacks (from any thread:
the app hops them to its own).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.conversation.companion import Companion, Opening, PendingReply, mood_words_help
from app.conversation.events import Event
from app.conversation.flow import Mode, Step
from app.conversation.prompts import PromptLibrary, prompt_library
from app.conversation.timeline import Entry, timeline
from app.days import DayError, parse_day_range
from app.export.age_file import AgeError
from app.export.service import describe_counts, export_journal  # describe_counts: for the export screen
from app.llm import EngineState, Job, ModelSpec
from app.modelhub.catalog import catalog
from app.modelhub.download import DownloadError, download_catalog_entry
from app.modelhub.formats import known_formats
from app.modelhub.gguf import GGUFError, inspect_gguf
from app.modelhub.importer import ImportError_, import_gguf
from app.modelhub.registry import ModelRegistry, RegistryError
from app.paths import DataPaths
from app.runtime import NoModelSelected, selected_model_spec, start_engine
from app.safety import prepare_risk_check
from app.settings import Settings, save_settings
from app.store import DiskFull, Journal, JournalError, WrongPassphrase
from app.store.records import (
    EmotionRating,
    Message,
    MoodEntry,
    Note,
    SafetyPlan,
    SearchHit,
    Session,
    ThoughtRecord,
)

# what the unlock screen tells apart (the store's own errors, named here for the UI)
__all__ = ["Busy", "DiskFull", "ExportProblem", "HavenService", "JournalError", "ModelError",
           "ServiceClosed", "WrongPassphrase", "chat_formats", "create_journal", "describe_counts",
           "journal_exists", "model_file_needs_format", "open_journal"]

log = logging.getLogger("haven.service")

EngineFactory = Callable[[ModelSpec | None], object | None]
SHUTDOWN_WAIT_SECONDS = 10.0


def real_engine(spec: ModelSpec | None):
    return None if spec is None else start_engine(spec)


class EarlyStart:
    """The selected model, loading while the passphrase is typed: a model needs no journal,
    and its load (seconds for a 3B) is then over, or nearly, when the chat appears. The
    service takes it over at unlock (``HavenService(early=…)``); otherwise :meth:`close`."""

    def __init__(self, paths: DataPaths, settings: Settings,
                 engine_factory: EngineFactory = real_engine) -> None:
        self.spec: ModelSpec | None = None
        self.engine = None
        try:
            self.spec = selected_model_spec(paths, settings)
        except (NoModelSelected, RegistryError):
            pass  # nothing to load yet; the service says why once the journal is open
        try:
            self.engine = engine_factory(self.spec)
        except Exception as exc:  # the service tries again at unlock, and says what failed
            log.info("the model could not start early (%s)", type(exc).__name__)

    def take(self, spec: ModelSpec | None) -> tuple[object | None, object | None]:
        """Hand the engine over: (it, None) if it is loading ``spec``, else (None, it) for
        the caller to close (another model was chosen meanwhile)."""
        engine, self.engine = self.engine, None
        if engine is not None and spec != self.spec:
            return None, engine
        return engine, None

    def close(self) -> None:
        """Close the engine and wait for its process (Haven is quitting)."""
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()


class Busy(Exception):
    """Haven is replying; the person is told to stop the reply first."""

    def __init__(self) -> None:
        super().__init__("Haven is still replying. Press Esc to stop it first.")


class ServiceClosed(RuntimeError):
    pass


class ModelError(Exception):
    """A model could not be downloaded, imported or removed (one plain sentence)."""


class ExportProblem(Exception):
    """An export that cannot be made as asked (one plain sentence; nothing written)."""


def chat_formats() -> list[str]:
    """The conversation formats a model without a template of its own can be given."""
    return known_formats()


def model_file_needs_format(path: Path) -> bool:
    """Check a GGUF file before it is imported (blocking: a worker): whether it lacks a
    chat template, so a format must be chosen. ModelError when it cannot be used; OSError
    when it cannot be read. Needs no service: the import picker runs before one exists."""
    try:
        info = inspect_gguf(path)
    except GGUFError as exc:
        raise ModelError(str(exc)) from exc
    return info.chat_template is None


def prepare_risk_check_early() -> threading.Thread:
    """Load the risk check in the background while the person reads the first screen or
    types their passphrase; it needs no journal and no model. A failure here is only
    logged: the first message then loads the check itself (and falls back as it says)."""
    def run() -> None:
        try:
            prepare_risk_check()
        except Exception:
            log.exception("the risk check could not be prepared early")

    thread = threading.Thread(target=run, name="haven-risk-check-early", daemon=True)
    thread.start()
    return thread


def journal_exists(paths: DataPaths) -> bool:
    return Journal.exists(paths.journal)


def create_journal(paths: DataPaths, passphrase: str) -> Journal:
    return Journal.create(paths.journal, passphrase)


def open_journal(paths: DataPaths, passphrase: str) -> Journal:
    return Journal.open(paths.journal, passphrase)


@dataclass(frozen=True)
class FlowView:
    """What a screen needs to know about where the session is (never the flow itself)."""

    checking_in: bool  # the opening check-in is still on offer
    closing: bool  # the closing steps (summary, step, closing mood) are under way
    ended: bool


class HavenService:
    def __init__(self, paths: DataPaths, settings: Settings, journal: Journal,
                 engine_factory: EngineFactory = real_engine,
                 keys: dict[str, str] | None = None,
                 prompts: PromptLibrary | None = None,
                 start: bool = True, early: EarlyStart | None = None) -> None:
        self.paths = paths
        self._early = early  # a model already loading since the unlock screen
        self.settings = settings
        self.prompts = prompts or prompt_library()
        self._journal = journal
        self._engine_factory = engine_factory
        self._state = threading.RLock()  # the session, the flow, the engine reference
        self._replying = threading.Lock()  # one reply (or closing summary) at a time
        self._engines = threading.Lock()  # which engine answers, which one is loading
        self._calls = threading.Condition()
        self._in_flight = 0
        self._closed = False
        self._listeners: list[Callable[[], None]] = []
        self._closers: list[threading.Thread] = []
        self._loading = None  # a new engine loading while the old one still answers
        self._ahead_jobs: list[Job] = []  # prefills and folds ahead of time (issue 13)
        self.model_problem: str | None = None
        companion_keys = dict(keys) if keys else None
        self.companion = Companion(journal=journal, engine=None, settings=settings,
                                   prompts=self.prompts,
                                   **({"keys": companion_keys} if companion_keys else {}))
        if start:
            self.start_engine()

    # ---- bookkeeping ------------------------------------------------------------------------

    @contextmanager
    def _call(self) -> Iterator[None]:
        with self._calls:
            if self._closed:
                raise ServiceClosed("Haven is closing")
            self._in_flight += 1
        try:
            yield
        finally:
            with self._calls:
                self._in_flight -= 1
                self._calls.notify_all()

    @contextmanager
    def _mutating(self) -> Iterator[None]:
        with self._call(), self._state:
            yield

    @contextmanager
    def _reply_slot(self, wait: bool) -> Iterator[None]:
        if not self._replying.acquire(blocking=wait):
            raise Busy()
        try:
            yield
        finally:
            self._replying.release()

    @property
    def replying(self) -> bool:
        return self._replying.locked()

    # ---- the engine ---------------------------------------------------------------------------

    @property
    def engine(self):
        return self.companion.engine

    def model_spec(self) -> ModelSpec | None:
        self.model_problem = None
        try:
            return selected_model_spec(self.paths, self.settings)
        except NoModelSelected:
            return None
        except RegistryError as exc:  # the model's file is missing, changed or damaged
            log.warning("the selected model cannot be used (%s)", type(exc).__name__)
            self.model_problem = f"{exc}. Journaling works without a model; F4 for models."
            return None

    def start_engine(self) -> None:
        """Start the selected model. The old engine keeps answering until the new one is
        ready (or has failed); then it is closed at once, so two models are resident only
        while the new one loads."""
        spec = self.model_spec()
        early, self._early = self._early, None
        new, unwanted = early.take(spec) if early is not None else (None, None)
        self._close_later(unwanted)  # joined on shutdown, like any engine the service retires
        if new is None:
            new = self._engine_factory(spec)
        retired = []
        with self._engines:  # never the state lock: engine threads call _engine_state
            if self._loading is not None:  # switched again before it was ready
                retired.append(self._loading)
                self._loading = None
            if new is None or new.ready or new.state is EngineState.FAILED \
                    or self.companion.engine is None:
                retired.append(self.companion.engine)
                self.companion.engine = new
            else:
                self._loading = new
        for engine in retired:
            self._close_later(engine)
        if new is not None:
            new.on_state(lambda state, detail, e=new: self._engine_state(e, state))
        self._changed()

    def _engine_state(self, engine, state: EngineState) -> None:
        retired = None
        with self._engines:
            if engine is self._loading and state in (EngineState.READY, EngineState.FAILED):
                self._loading = None
                retired, self.companion.engine = self.companion.engine, engine
        self._close_later(retired)
        self._changed()

    def _close_later(self, engine) -> None:
        """Close an engine off the UI thread (it waits for its process); joined on shutdown."""
        if engine is None:
            return
        if self.replying:
            engine.cancel_current()
        thread = threading.Thread(target=engine.close, name="haven-engine-close", daemon=True)
        self._closers.append(thread)
        thread.start()

    def on_engine_change(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                log.exception("engine listener failed")

    def engine_status(self) -> str:
        engine = self._loading or self.companion.engine
        if engine is None:
            return "No model yet — journaling works; F4 to download one"
        name = engine.spec.name if engine.spec else "model"
        if engine.state is EngineState.LOADING:
            detail = getattr(engine, "detail", None) or f"loading {name}"
            return detail[:1].upper() + detail[1:] + "…"
        if engine.state is EngineState.FAILED:
            return f"Model problem: {engine.error}"
        if engine.state is EngineState.READY:
            return f"Model: {name}"
        return "No model loaded"

    @property
    def has_model(self) -> bool:
        return self.companion.engine is not None or self._loading is not None

    # ---- sessions ------------------------------------------------------------------------------

    @property
    def session(self) -> Session | None:
        return self.companion.session

    def flow(self) -> FlowView:
        with self._state:
            flow = self.companion.flow
            return FlowView(checking_in=flow.step is Step.CHECKIN, closing=flow.closing,
                            ended=flow.step is Step.ENDED)

    def new_session(self, wait: bool = False) -> Opening:
        """End the session in progress (if any) and open a new one."""
        with self._reply_slot(wait), self._mutating():
            if self.companion.session is not None and not self.companion.flow.ended:
                self.companion.end_session()
            return self.companion.start_session()

    def open_session(self, session_id: str, wait: bool = False) -> list[Message] | None:
        """Reopen a session; None when it is the one already open."""
        with self._reply_slot(wait), self._mutating():
            current = self.companion.session
            if current is not None and current.id == session_id:
                return None
            if current is not None and not self.companion.flow.ended:
                self.companion.end_session()
            return self.companion.open_session(session_id)

    def rename_session(self, session_id: str, title: str) -> bool:
        """Give a session a title; False when there is no title or no such session."""
        title = title.strip()[:80]
        if not title:
            return False
        with self._mutating():
            if self._journal.session(session_id) is None:  # deleted meanwhile
                return False
            updated = self._journal.update_session(session_id, title=title)
            if self.companion.session is not None and self.companion.session.id == session_id:
                self.companion.session = updated
            return True

    def delete_session(self, session_id: str) -> bool:
        """Delete a session and its messages; True when it was the one open (the caller
        opens a new one). The open session cannot be deleted while Haven replies to it."""
        with self._call():
            current = self.companion.session
            slot = self._reply_slot(wait=False) if current and current.id == session_id else _nothing()
            with slot, self._state:
                current = self.companion.session
                is_current = current is not None and current.id == session_id
                self._journal.delete_session(session_id)
                if is_current:
                    self.companion.session = None
            return is_current

    def sessions(self, limit: int | None = 200) -> list[Session]:
        with self._call():
            return self._journal.sessions(limit=limit)

    def pending_question(self):
        with self._mutating():
            return self.companion.pending_question()

    # ---- talking ---------------------------------------------------------------------------------

    def send(self, text: str, answer: str | None = None) -> Iterator[Event]:
        """One message and Haven's reply, as events (blocking: call from a worker thread).

        The decision (risk check, storing the message) and the end of the reply run under
        the state lock; the model's words stream outside it."""
        with self._call(), self._reply_slot(wait=True):
            self.stop_prefill()  # a reply goes first; a queued prefill would be stale after it
            with self._state:  # decide keeps a fold done ahead of time (_take_fold)
                decided = list(self.companion.decide(text, answer))
            pending: PendingReply | None = None
            for item in decided:
                if isinstance(item, PendingReply):
                    pending = item
                else:
                    yield item
            if pending is None:
                return
            try:
                yield from self.companion.stream_reply(pending, save=self._save_partial)
            finally:
                with self._state:
                    ending = self.companion.finish_reply(pending)
            yield from ending

    # ---- before Enter (issue 13) ------------------------------------------------------------

    def prefill(self, draft: str = "") -> Job | None:
        """Have the model evaluate the next reply's prompt (and the whole words of
        ``draft``, the message being typed) before Enter. Quick: the request is built under
        the state lock and handed to the model process, which evaluates it in small chunks.

        Never while Haven replies (or writes the closing summary): None then, and None
        whenever the companion declines (no ready model, a crisis, an open question, a
        flagged draft). Preemptible: any reply that comes in goes first in the model
        process after the current chunk, a newer prefill continues this one's work, and
        :meth:`stop_prefill` stops it. Returns the engine's job (a future of a Prefill)."""
        return self._ahead(lambda: self.companion.prefill(draft))

    def prepare_next(self) -> Job | None:
        """After a reply: fold ahead of time if the context is nearly full, else prefill the
        history for the next message (see :meth:`Companion.prepare_next`). The fold's
        summary is kept by the next message's quick step (``decide``), under the lock; a
        reply that comes first preempts it. None while Haven replies."""
        return self._ahead(self.companion.prepare_next)

    def _ahead(self, start: Callable[[], Job | None]) -> Job | None:
        with self._call():
            if not self._replying.acquire(blocking=False):  # a reply in progress: never
                return None
            try:
                with self._state:
                    engine = self.companion.engine
                    if engine is None or not hasattr(engine, "prefill"):
                        return None  # an engine without prefill (a scripted one)
                    job = start()
                    if job is not None:
                        self._ahead_jobs = [j for j in self._ahead_jobs if not j.done()]
                        self._ahead_jobs.append(job)
                    return job
            finally:
                self._replying.release()

    def stop_prefill(self) -> None:
        """Stop prefills and folds ahead of time still running (from any thread). What
        was evaluated stays cached; a fold stopped changes nothing."""
        jobs, self._ahead_jobs = self._ahead_jobs, []
        for job in jobs:
            if not job.done():
                job.stop()

    def _save_partial(self, pending: PendingReply, text: str) -> None:
        with self._state:
            self.companion.save_partial(pending, text)

    def cancel(self) -> None:
        """Stop the reply now (from any thread; never waits)."""
        self.companion.cancel()

    # ---- moods, modes, steps ------------------------------------------------------------------

    def record_mood(self, score: int, emotions: list[EmotionRating] | None = None,
                    note: str | None = None) -> MoodEntry:
        with self._mutating():
            return self.companion.record_mood(score, emotions, note)

    def mood_words_help(self, emotions: list[EmotionRating] | None,
                        note: str | None) -> tuple[str, str | None]:
        """(risk level, Haven's line or None) for what was written with a mood. Reads no
        state: the risk check and prompt files only."""
        return mood_words_help(emotions, note, self.companion.keys["sos"], self.companion.prompts)

    def choose_mode(self, mode: Mode) -> bool:
        """Work this way from the next message; False (nothing changed) while the session
        is closing, so a choice made then never pulls the closing steps back."""
        with self._mutating():
            return self.companion.choose_mode(mode)

    def skip_check_in(self) -> None:
        with self._mutating():
            if self.companion.flow.step is Step.CHECKIN:
                self.companion.skip_step()

    # ---- closing --------------------------------------------------------------------------------

    def close_session(self, with_summary: bool = True) -> Session:
        """Move to the closing steps and write the summary and title (blocking: a worker)."""
        return self.close_session_soon(with_summary).result()

    def close_session_soon(self, with_summary: bool = True) -> Future[Session]:
        """Move to the closing steps now, and write the summary and title in the background:
        the closing screen shows at once and fills the summary in from the future (issue
        13), while the person may already type a step. Returns once the session is in its
        closing steps (or the future holds why it could not be)."""
        future: Future[Session] = Future()
        closing = threading.Event()

        def run() -> None:
            try:
                with self._call(), self._reply_slot(wait=True):
                    with self._state:
                        work = self.companion.begin_closing(with_summary)
                        if not work.turns:  # nothing for a model to write: done at once
                            future.set_result(self.companion.finish_closing(work, {}))
                            return
                    closing.set()
                    fields = self.companion.closing_fields(work)  # the model: outside the lock
                    with self._state:
                        future.set_result(self.companion.finish_closing(work, fields))
            except BaseException as exc:  # the caller hears of it through the future
                future.set_exception(exc)
            finally:
                closing.set()

        threading.Thread(target=run, name="haven-closing", daemon=True).start()
        closing.wait()
        return future

    def set_next_step(self, text: str | None) -> None:
        with self._mutating():
            self.companion.set_next_step(text)

    def end_session(self) -> None:
        with self._mutating():
            if self.companion.session is not None:
                self.companion.end_session()

    # ---- thought records ----------------------------------------------------------------------

    def draft_thought_record(self) -> ThoughtRecord:
        """A draft from this conversation (blocking: a worker). The turns are read under
        the lock; the model writes outside it."""
        with self._call():
            with self._state:
                session_id, turns = self.companion.draft_context()
            return self.companion.draft_from(session_id, turns)

    def can_draft(self) -> bool:
        return self.model_ready()

    def model_ready(self) -> bool:
        """Whether a model is loaded and answering now."""
        engine = self.companion.engine
        return engine is not None and engine.ready

    def save_thought_record(self, record: ThoughtRecord) -> ThoughtRecord:
        with self._mutating():
            if record.session_id is None and self.companion.session is not None:
                record = record.model_copy(update={"session_id": self.companion.session.id})
            return self.companion.save_thought_record(record)

    # ---- settings ---------------------------------------------------------------------------------

    def update_settings(self, new: Settings) -> bool:
        """Apply and keep new settings (in place: everyone holds the same object); starts
        the model again when a setting it was loaded with changed. True if it did."""
        with self._mutating():
            old = self.settings
            reload = ((new.n_ctx, new.threads, new.weight_repack)
                      != (old.n_ctx, old.threads, old.weight_repack))
            for name in Settings.model_fields:
                setattr(old, name, getattr(new, name))
            save_settings(self.paths, old)
        if reload:
            self.start_engine()
        return reload

    # ---- models -------------------------------------------------------------------------------

    def catalog_entries(self) -> list:
        return list(catalog().model)

    def catalog_entry(self, name: str):
        return catalog().get(name)

    def installed_models(self) -> dict:
        return {m.name: m for m in ModelRegistry(self.paths).all()}

    def is_installed(self, name: str | None) -> bool:
        return bool(name) and ModelRegistry(self.paths).get(name) is not None

    def download_model(self, name: str, progress: Callable) -> str:
        """Download (resuming) and verify a catalog model; its name. Blocking: a worker.
        ``progress`` may raise to stop (the part downloaded is kept)."""
        entry = catalog().get(name)
        if entry is None:
            raise ModelError(f"{name} is not in Haven's catalog")
        try:
            return download_catalog_entry(self.paths, entry, progress).name
        except DownloadError as exc:
            raise ModelError(exc.in_app) from exc  # the app's words: no command line

    def import_model(self, path: Path, chat_format: str | None = None) -> str:
        try:
            return import_gguf(self.paths, path, None, chat_format).name
        except ImportError_ as exc:
            raise ModelError(exc.in_app) from exc

    def select_model(self, name: str | None) -> None:
        """Talk with this model from now on (the old one answers until it is loaded)."""
        with self._mutating():
            self.settings.model = name
            save_settings(self.paths, self.settings)
        self.start_engine()

    def remove_model(self, name: str) -> None:
        try:
            ModelRegistry(self.paths).remove(name)
        except RegistryError as exc:
            raise ModelError(str(exc)) from exc
        if self.settings.model == name:
            self.select_model(None)

    # ---- the journal, for reading (and the few records that are no one else's) -------------

    def timeline(self) -> list[Entry]:
        with self._call():
            return timeline(self._journal)

    def messages(self, session_id: str) -> list[Message]:
        with self._call():
            return self._journal.messages(session_id)

    def notes(self) -> list[Note]:
        with self._call():
            return self._journal.notes()

    def note(self, note_id: str) -> Note | None:
        return next((n for n in self.notes() if n.id == note_id), None)

    def add_note(self, body: str) -> Note:
        with self._call():
            return self._journal.add_note(body)

    def thought_records(self) -> list[ThoughtRecord]:
        with self._call():
            return self._journal.thought_records()

    def thought_record(self, record_id: str) -> ThoughtRecord | None:
        with self._call():
            return self._journal.thought_record(record_id)

    def insights(self):
        """The person's patterns (app.insights) from the whole journal."""
        from app.insights import insights

        with self._call():
            return insights(self._journal)

    def moods(self) -> list[MoodEntry]:
        with self._call():
            return self._journal.moods()

    def search(self, text: str) -> list[SearchHit]:
        with self._call():
            return self._journal.search(text) if text.strip() else []

    def safety_plan(self) -> SafetyPlan | None:
        with self._call():
            return self._journal.safety_plan()

    def save_safety_plan(self, plan: SafetyPlan) -> SafetyPlan:
        with self._call():
            return self._journal.save_safety_plan(plan)

    def export(self, out: Path, *, passphrase: str | None, recipients: list[str],
               since: str | None, until: str | None, fmt: str):
        """An encrypted export (blocking: a worker). Days are YYYY-MM-DD, both inclusive."""
        try:
            start, end = parse_day_range(since, until)
        except DayError as exc:
            raise ExportProblem(str(exc)) from exc
        if self.paths.holds(out):
            raise ExportProblem(f"{out} is inside Haven's data folder; choose a place outside it.")
        if out.exists():
            raise ExportProblem(f"{out} already exists; choose another name.")
        with self._call():
            try:
                return export_journal(self._journal, out, passphrase=passphrase,
                                      recipients=recipients, since=start, until=end, fmt=fmt)
            except AgeError as exc:
                raise ExportProblem(str(exc)) from exc

    # ---- the end -------------------------------------------------------------------------------------

    def shutdown(self, wait: float = SHUTDOWN_WAIT_SECONDS) -> None:
        """Stop the reply, wait for calls in flight, end the session, close the engine,
        then the journal. Safe to call twice."""
        with self._calls:
            if self._closed:
                return
            self._closed = True
        self.companion.cancel()
        self.stop_prefill()
        with self._calls:
            if not self._calls.wait_for(lambda: self._in_flight == 0, timeout=wait):
                log.warning("a reply did not stop in time; closing the model to end it")
        engines = [e for e in (self.companion.engine, self._loading) if e is not None]
        if self._in_flight:
            for engine in engines:  # a reply still waiting on the model ends with its process
                engine.close()
            with self._calls:
                self._calls.wait_for(lambda: self._in_flight == 0, timeout=wait)
        with self._state:
            try:
                if self.companion.session is not None:
                    self.companion.end_session()
            except Exception as exc:  # its text could hold the person's words: the type only
                log.warning("could not end the session cleanly (%s)", type(exc).__name__)
            for engine in engines:
                engine.close()
            for thread in self._closers:
                thread.join(timeout=wait)
            self._journal.close()


@contextmanager
def _nothing() -> Iterator[None]:
    yield
