"""The chat screen: sessions on the left, the conversation, the message box.

A view of the service (``app.service``): sending runs the service in a worker thread;
its events come back to the UI thread to be rendered. Input is never blocked: the box
stays usable while the model loads or replies.
"""

from __future__ import annotations

import asyncio
import logging
import time

from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Header, Static, TextArea

from app.conversation.companion import MAX_MESSAGE_CHARS
from app.conversation.events import (
    CheckIn,
    Crisis,
    FollowUp,
    NoModel,
    Recalled,
    ReplyDone,
    ReplyReplaced,
    ReplyStarted,
    ScreenerOver,
    ScreenerQuestion,
    Token,
    UserSaved,
)
from app.conversation.flow import Mode
from app.conversation.service import Busy
from app.safety.screener import CHOICES, LABELS
from app.store.records import Message
from app.tui import keys
from app.tui.widgets.chat_message import ChatMessage
from app.tui.widgets.crisis_panel import CrisisPanel
from app.tui.widgets.footer import NARROW, HavenFooter
from app.tui.widgets.insights_panel import RecalledNote
from app.tui.widgets.message_box import MessageBox
from app.tui.widgets.session_list import SessionList, friendly_day, session_name
from app.tui.widgets.status_line import StatusLine

TOKEN_BATCH_SECONDS = 0.05
#: A pause in typing this long has the model evaluate the draft so far (issue 13)
PREFILL_DEBOUNCE_SECONDS = 0.4
#: While the person types on without a pause, a finished word has the model read on, at
#: most this often (a fast typist never pauses 0.4 s; `haven bench --session` types so)
PREFILL_WHILE_TYPING_SECONDS = 0.5

log = logging.getLogger("haven.tui")


class ChatScreen(Screen):
    BINDINGS = keys.chat_bindings()  # declared once, in app/tui/keys.py

    def __init__(self) -> None:
        super().__init__()
        self.replying = False
        self._reply_view: ChatMessage | None = None
        self._recalled: str | None = None  # "Haven remembered: …", shown under the reply
        self._prefill_timer: Timer | None = None
        self._prefilled_at = 0.0
        self._model_was_ready = False
        self._sidebar_chosen = False  # the person showed or hid it (Ctrl+B): width no longer decides

    @property
    def service(self):
        return self.app.service

    def has_unsaved_text(self) -> bool:
        """Words typed in the message box and not sent (the app asks before quitting)."""
        try:
            return bool(self.query_one(MessageBox).text.strip())
        except Exception:
            return False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield SessionList(id="sessions")
            with Vertical(id="main"):
                yield CrisisPanel(id="crisis")
                with Horizontal(id="checkin-offer"):
                    yield Static(self.app.prompts.render("checkin_offer.md"))
                    yield Button("Check in", id="offer-checkin", variant="primary")
                    yield Button("Skip", id="offer-skip")
                yield VerticalScroll(id="log")
                yield MessageBox(id="box")
                # Haven's direct safety questions: answer with a button (Tab) or in words
                with Horizontal(id="answers"):
                    yield Static("Or answer (Tab):")
                    for choice in CHOICES:
                        yield Button(LABELS[choice], id=f"answer-{choice}")
                yield StatusLine()
        yield HavenFooter(palette_when_narrow=False)

    async def on_mount(self) -> None:
        self.app.on_engine_change(self.refresh_status)
        self.app.on_engine_change(self._engine_changed)
        self.refresh_status()
        await self.begin_new_session()
        self._engine_changed()
        self.query_one(MessageBox).focus()
        self._fit_sidebar(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._fit_sidebar(event.size.width)

    def _fit_sidebar(self, width: int) -> None:
        """In a narrow terminal (80x24) the conversation gets the whole width; the sessions
        are a Ctrl+B (or F3) away. Once the person shows or hides them, that choice stays."""
        if not self._sidebar_chosen:
            self.query_one(SessionList).display = width >= NARROW

    # ---- sessions --------------------------------------------------------------------------

    def refresh_sessions(self) -> None:
        current = self.service.session.id if self.service.session else None
        self.query_one(SessionList).set_sessions(self.service.sessions(limit=200), current)

    async def begin_new_session(self) -> None:
        try:
            opening = self.service.new_session()
        except Busy as exc:
            self.notify(str(exc))
            return
        log = self.query_one("#log", VerticalScroll)
        await log.remove_children()
        await log.mount(ChatMessage("system", opening.text))
        self.query_one("#checkin-offer").add_class("shown")
        self.query_one(CrisisPanel).hide()
        self.show_answers(False)
        self.refresh_sessions()

    async def open_session(self, session_id: str) -> None:
        try:
            messages = self.service.open_session(session_id)
        except Busy as exc:
            self.notify(str(exc))
            return
        if messages is None:  # already open
            return
        log = self.query_one("#log", VerticalScroll)
        await log.remove_children()
        await log.mount_all([self._view(m) for m in messages])
        log.scroll_end(animate=False)
        self.query_one("#checkin-offer").remove_class("shown")
        self.query_one(CrisisPanel).hide()
        self.show_answers(self.service.pending_question() is not None)
        self.refresh_sessions()
        self.query_one(MessageBox).focus()

    @staticmethod
    def _view(message: Message) -> ChatMessage:
        note = {"partial": "(interrupted)", "cancelled": "(stopped)"}.get(message.status, "")
        return ChatMessage(message.role, message.content, note=note, message_id=message.id,
                           risk=message.risk_level)

    async def on_session_list_opened(self, event: SessionList.Opened) -> None:
        await self.open_session(event.session_id)

    def on_session_list_delete_requested(self, event: SessionList.DeleteRequested) -> None:
        self.action_delete_session()

    # ---- sending ---------------------------------------------------------------------------

    def on_message_box_submitted(self, event: MessageBox.Submitted) -> None:
        text = event.text
        if not text.strip():
            return
        if self.replying:
            self.notify("Haven is still replying — press Esc to stop it. Your text is kept.")
            return
        if len(text) > MAX_MESSAGE_CHARS:
            self.notify(f"That is {len(text):,} characters; Haven takes up to "
                        f"{MAX_MESSAGE_CHARS:,} at a time. Your text is kept in the box.",
                        severity="error", timeout=8)
            return
        event.box.clear()
        self.query_one("#checkin-offer").remove_class("shown")
        self.replying = True
        self.send(text)

    def show_answers(self, shown: bool) -> None:
        self.query_one("#answers").set_class(shown, "shown")

    def answer(self, choice: str) -> None:
        """A button answer to Haven's open question (sent like a message)."""
        if self.replying:
            return
        self.show_answers(False)
        self.query_one("#checkin-offer").remove_class("shown")
        self.replying = True
        self.send(LABELS[choice], choice)
        self.query_one(MessageBox).focus()

    @work(thread=True, exclusive=True, group="reply")
    def send(self, text: str, answer: str | None = None) -> None:
        pending: list[str] = []
        last_flush = time.monotonic()

        def flush() -> None:
            nonlocal last_flush
            if pending:
                self.app.call_from_thread(self.show_event, Token("".join(pending)))
                pending.clear()
            last_flush = time.monotonic()

        saved = False
        try:
            for event in self.service.send(text, answer=answer):
                if isinstance(event, UserSaved):
                    saved = True
                if isinstance(event, Token):
                    # Tokens are drawn in small batches, so the screen (and typing) stays
                    # responsive however fast the model is.
                    pending.append(event.text)
                    if time.monotonic() - last_flush >= TOKEN_BATCH_SECONDS:
                        flush()
                    continue
                flush()
                self.app.call_from_thread(self.show_event, event)
        except Exception as exc:  # never lose the text: put it back and say what happened
            self.app.call_from_thread(self._send_failed, text, exc, saved)
        finally:
            self.app.call_from_thread(self._reply_over)

    def _send_failed(self, text: str, exc: Exception, saved: bool = False) -> None:
        if saved:  # it is in the journal: putting it back would invite a duplicate
            self.notify(f"Your message is saved in your journal, but Haven could not reply: {exc}",
                        severity="error", timeout=10, markup=False)
            return
        box = self.query_one(MessageBox)
        if not box.text and text not in LABELS.values():
            box.text = text
        self.notify(f"Your message was not saved; it is back in the box. {exc}",
                    severity="error", timeout=10, markup=False)

    def _reply_over(self) -> None:
        self.replying = False
        self._reply_view = None
        self.query_one(StatusLine).set_activity("")
        self.refresh_sessions()
        self.prepare_next()

    # ---- before Enter (issue 13): the model reads ahead, through the service ------------------

    def _engine_changed(self) -> None:
        """When a model becomes ready, have it evaluate the system prompt and the history."""
        if not self.is_attached:  # the chat screen has gone (Haven is closing)
            return
        ready = self.service.model_ready()
        if ready and not self._model_was_ready:
            self.prefill()
        self._model_was_ready = ready

    @on(TextArea.Changed, "#box")
    def _draft_changed(self, event: TextArea.Changed) -> None:
        if self.replying:
            return
        if self._prefill_timer is not None:
            self._prefill_timer.stop()
        text = event.text_area.text
        if text.endswith((" ", "\n")) and \
                time.monotonic() - self._prefilled_at >= PREFILL_WHILE_TYPING_SECONDS:
            self._prefilled_at = time.monotonic()
            self.prefill(text)  # a word is finished: the model reads on while they type
        self._prefill_timer = self.set_timer(PREFILL_DEBOUNCE_SECONDS, self._prefill_draft)

    def _prefill_draft(self) -> None:
        self._prefill_timer = None
        if not self.replying:
            self.prefill(self.query_one(MessageBox).text)

    @work(thread=True, group="prefill", exclusive=True)
    def prefill(self, draft: str = "") -> None:
        """Quick (the model process does the work); the service refuses while Haven replies."""
        try:
            self.service.prefill(draft)
        except Exception as exc:  # a model that went away, Haven closing: only a lost head start
            log.info("prefill skipped (%s)", type(exc).__name__)

    @work(thread=True, group="prefill", exclusive=True)
    def prepare_next(self) -> None:
        """After a reply: fold ahead of time, or prefill the history for the next message."""
        try:
            self.service.prepare_next()
        except Exception as exc:
            log.info("preparing the next turn skipped (%s)", type(exc).__name__)

    async def show_event(self, event) -> None:
        log = self.query_one("#log", VerticalScroll)
        status = self.query_one(StatusLine)
        if isinstance(event, UserSaved):
            await log.mount(self._view(event.message))
        elif isinstance(event, (Crisis, FollowUp)):
            # the services are written into the conversation; the panel puts them first
            await log.mount(ChatMessage("system", event.text, risk="crisis"))
            self.show_answers(False)
            self.query_one(CrisisPanel).show("crisis", event.words, event.resources,
                                             kind=event.kind, plan=event.plan)
        elif isinstance(event, CheckIn):
            # the services are in the message; the conversation keeps room for the questions
            await log.mount(ChatMessage("system", event.text, risk="elevated"))
        elif isinstance(event, ScreenerQuestion):
            await log.mount(ChatMessage("system", event.text, risk="elevated"))
            self.show_answers(True)
        elif isinstance(event, ScreenerOver):
            await log.mount(ChatMessage("system", event.text))
            self.show_answers(False)
        elif isinstance(event, NoModel):
            await log.mount(ChatMessage("system", event.text))
        elif isinstance(event, Recalled):
            self._recalled = event.line
        elif isinstance(event, ReplyStarted):
            self._reply_view = ChatMessage("assistant", "", note="thinking…",
                                           message_id=event.message.id)
            await log.mount(self._reply_view)
            status.set_activity("Haven is thinking… (Esc to stop)")
        elif isinstance(event, Token) and self._reply_view is not None:
            if self._reply_view.note:
                self._reply_view.set_note("")
                status.set_activity("Haven is replying… (Esc to stop)")
            await self._reply_view.append(event.text)
        elif isinstance(event, ReplyReplaced) and self._reply_view is not None:
            await self._reply_view.replace(event.text)
            if event.kind == "harm":
                self.query_one(CrisisPanel).show("elevated", event.text, event.resources)
        elif isinstance(event, ReplyDone) and self._reply_view is not None:
            note = {"cancelled": "(stopped)", "replaced": "(replaced by Haven's safety check)",
                    "error": f"(the model stopped: {event.error})",
                    "crashed": "(interrupted)"}.get(event.status, "")
            await self._reply_view.finish(note)
            if self._recalled and event.status != "replaced":
                await log.mount(RecalledNote(self._recalled), after=self._reply_view)
            self._recalled = None
            if event.status == "crashed" and event.error:  # one calm line; the box is untouched
                await log.mount(ChatMessage("system", event.error))
        # after the new content is laid out, or the view can stop short of the end
        self.call_after_refresh(log.scroll_end, animate=False)

    def action_stop_reply(self) -> None:
        if self.replying:
            self.service.cancel()
            self.query_one(StatusLine).set_activity("Stopping…")
        else:
            self.query_one(CrisisPanel).hide()

    def refresh_status(self) -> None:
        self.query_one(StatusLine).set_model(self.service.engine_status())

    # ---- check-in and closing ------------------------------------------------------------------

    @on(Button.Pressed, "#answers Button")
    def _answer_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.answer((event.button.id or "").removeprefix("answer-"))

    @on(Button.Pressed, "#offer-checkin")
    def _offer_check_in(self) -> None:
        self.action_check_in()

    @on(Button.Pressed, "#offer-skip")
    def _offer_skip(self) -> None:
        self.service.skip_check_in()
        self.query_one("#checkin-offer").remove_class("shown")
        self.query_one(MessageBox).focus()

    def action_check_in(self) -> None:
        from app.tui.screens.mood import MoodScreen

        closing = self.service.flow().closing
        self.app.push_screen(MoodScreen(closing=closing, save=self._record_mood), self._mood_done)

    def _record_mood(self, result) -> None:
        """Saved before the dialog closes: if saving fails, the dialog keeps the words."""
        self.service.record_mood(result.score, result.emotions, result.note)

    def _mood_done(self, result) -> None:
        self.query_one("#checkin-offer").remove_class("shown")
        self.query_one(MessageBox).focus()
        if result is None:
            return
        self.prefill(self.query_one(MessageBox).text)  # the mood is in the prompt now
        if not self._mood_words_checked(result):
            self.notify(f"Mood {result.score}/10 saved.")

    def _mood_words_checked(self, result) -> bool:
        """What was written with a mood goes through the risk check too: a crisis opens the
        SOS screen at once, softer signs say where help is. True when Haven said something."""
        if result is None:
            return False
        level, line = self.service.mood_words_help(result.emotions, result.note)
        if line is None:
            return False
        self.notify(line, severity="warning" if level == "crisis" else "information",
                    markup=False, timeout=12)
        if level == "crisis":
            self.app.action_sos()
        return True

    def action_end_session(self) -> None:
        if self.replying:
            self.notify("Haven is still replying. Press Esc to stop it first.")
            return
        self._close_session()

    @work(exclusive=True, group="closing")
    async def _close_session(self) -> None:
        """The closing steps, in order: the summary, a step for next time, the closing mood."""
        from app.tui.screens.closing import ClosingScreen
        from app.tui.screens.mood import MoodScreen

        status = self.query_one(StatusLine)
        # The closing screen shows at once; the model writes the summary and title in the
        # background (the service keeps them under its lock) and the screen fills it in.
        closing = self.service.close_session_soon()
        summarising = asyncio.wrap_future(closing)
        ready = closing.done() and closing.exception() is None  # nothing for a model to write
        screen = ClosingScreen(closing.result().summary if ready else None,
                               save=self.service.set_next_step,
                               had_model=self.service.model_ready(), writing=not closing.done())

        def written(task: asyncio.Future) -> None:
            failed = task.cancelled() or task.exception() is not None
            screen.show_summary(None if failed else task.result().summary)

        summarising.add_done_callback(written)
        step = await self.app.push_screen_wait(screen)
        if step is None:  # skipped (a written step was saved before the dialog closed)
            try:
                self.service.set_next_step(None)
            except Exception as exc:
                self.notify(f"Could not save: {exc}", severity="error", markup=False)
        result = await self.app.push_screen_wait(MoodScreen(closing=True, save=self._record_mood))
        if not summarising.done():
            status.set_activity("Finishing the summary…")
        try:
            await summarising
        except Exception as exc:  # the session still ends; its words are all saved
            log.warning("closing summary failed: %s", type(exc).__name__)
        finally:
            status.set_activity("")
        try:
            self.service.end_session()
        except Exception as exc:
            self.notify(f"Could not save: {exc}", severity="error", markup=False)
        self.notify("Session saved in your journal. Take care.")
        await self.begin_new_session()
        self._mood_words_checked(result)

    async def action_new_session(self) -> None:
        if self.replying:
            self.notify("Haven is still replying. Press Esc to stop it first.")
            return
        await self.begin_new_session()
        self.query_one(MessageBox).focus()

    def action_rename_session(self) -> None:
        from app.tui.screens.dialogs import TextPromptScreen

        session = self.query_one(SessionList).highlighted_session or self.service.session
        if session is None:
            return

        def rename(title: str) -> None:  # before the dialog closes: a failure keeps the words
            self.service.rename_session(session.id, title)

        def done(title: str | None) -> None:
            self.refresh_sessions()

        self.app.push_screen(TextPromptScreen("Rename session", session.title or "", save=rename),
                             done)

    def action_delete_session(self) -> None:
        from app.tui.screens.dialogs import ConfirmScreen

        session = self.query_one(SessionList).highlighted_session
        if session is None:
            return

        async def done(confirmed: bool | None) -> None:
            if not confirmed:
                return
            try:
                current = self.service.delete_session(session.id)
            except Busy as exc:
                self.notify(str(exc))
                return
            if current:
                await self.begin_new_session()
            self.refresh_sessions()
            self.notify("Session deleted.")

        title = session_name(session)
        when = friendly_day(session.started)
        self.app.push_screen(ConfirmScreen(f"Delete “{title}” ({when}) and all its messages? "
                                           "This cannot be undone.", "Delete"), done)

    def action_toggle_sidebar(self) -> None:
        self._sidebar_chosen = True
        sidebar = self.query_one(SessionList)
        sidebar.display = not sidebar.display

    # ---- other screens -----------------------------------------------------------------------

    def action_thought_record(self) -> None:
        from app.tui.screens.thought_record import ThoughtRecordScreen

        self.app.push_screen(ThoughtRecordScreen())

    def action_journal(self) -> None:
        from app.tui.screens.journal import JournalScreen

        self.app.push_screen(JournalScreen(), self._journal_closed)

    async def _journal_closed(self, session_id: str | None) -> None:
        if session_id:
            await self.open_session(session_id)

    def action_models(self) -> None:
        from app.tui.screens.models import ModelsScreen

        self.app.push_screen(ModelsScreen())

    def action_settings(self) -> None:
        from app.tui.screens.settings import SettingsScreen

        self.app.push_screen(SettingsScreen())

    def action_export(self) -> None:
        from app.tui.screens.export import ExportScreen

        self.app.push_screen(ExportScreen())

    def set_mode(self, mode: Mode) -> None:
        if not self.service.choose_mode(mode):
            self.notify("This conversation is closing. You can choose how to work in the next one.")
            return
        self.notify(f"{mode.label}: Haven will work this way from your next message.")
        self.query_one("#checkin-offer").remove_class("shown")

    def palette_commands(self):
        for key in keys.CHAT:
            yield key.title, keys.palette_help(key), getattr(self, f"action_{key.action}")
        yield keys.DELETE.title, keys.palette_help(keys.DELETE), self.action_delete_session
        for mode in Mode:
            yield f"Work: {mode.label}", "Change how Haven works with you", (
                lambda m=mode: self.set_mode(m))
