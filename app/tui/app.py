"""HavenApp: first run, unlock, then the chat screen and everything reachable from it.

Once the journal is unlocked, the app holds one :class:`HavenService` (``app.service``),
which owns the journal, the engine and the conversation; screens call it and render what
it returns; widgets only render and post messages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from app.conversation.prompts import prompt_library
from app.conversation.service import (
    EarlyStart,
    EngineFactory,
    HavenService,
    journal_exists,
    prepare_risk_check_early,
    real_engine,
)
from app.paths import DataPaths
from app.settings import Settings, save_settings
from app.tui import keys

log = logging.getLogger("haven.tui")
HERE = Path(__file__).parent


class HavenApp(App):
    TITLE = "Haven"
    SUB_TITLE = "a private CBT companion"
    # Styles live in .tcss files beside the code they style: widgets and screens first,
    # the app's shared classes last (they win a tie, as the app's CSS did over defaults).
    CSS_PATH = [*sorted(str(p) for p in (HERE / "widgets").glob("*.tcss")),
                *sorted(str(p) for p in (HERE / "screens").glob("*.tcss")),
                str(HERE / "app.tcss")]
    # SOS works on every screen, in dialogs and before unlock (priority): Ctrl+O is
    # delivered by every terminal and edits no text; F12 is the same for those who prefer
    # a function key. The keys are declared once, in app/tui/keys.py.
    BINDINGS = [
        keys.QUIT.binding(),
        keys.HELP.binding(),
        keys.PALETTE.binding(),  # named in plain words ("Commands", not Textual's "palette")
        Binding("ctrl+o", "sos", "SOS", priority=True),
        Binding("f12", "sos", "SOS", priority=True, show=False),
    ]
    # How Haven names its keys in what it writes into the conversation.
    KEYS = {"sos": f"press {keys.SOS.first} (SOS)", "new_session": keys.NEW.first}

    def __init__(self, paths: DataPaths, settings: Settings,
                 engine_factory: EngineFactory = real_engine) -> None:
        super().__init__()
        self.paths = paths
        self.settings = settings
        self.engine_factory = engine_factory
        self.service: HavenService | None = None
        self._early: EarlyStart | None = None  # the model, loading behind the unlock screen
        self.prompts = prompt_library()
        self._engine_listeners: list[Callable[[], None]] = []

    # What tests look at (screens never do: they call the service).
    @property
    def journal(self):
        return self.service._journal if self.service else None

    @property
    def companion(self):
        return self.service.companion if self.service else None

    @property
    def engine(self):
        return self.service.engine if self.service else None

    # ---- start-up ------------------------------------------------------------------------

    def on_mount(self) -> None:
        prepare_risk_check_early()  # the first message must not wait for it
        self.theme = self.settings.theme if self.settings.theme in self.available_themes else "textual-dark"
        from app.tui.screens.unlock import CreatePassphraseScreen, UnlockScreen
        from app.tui.screens.welcome import WelcomeScreen

        if not self.settings.notice_acknowledged:
            self.push_screen(WelcomeScreen())
        elif self.needs_country():
            from app.tui.screens.country import CountryScreen

            self.push_screen(CountryScreen())
        elif journal_exists(self.paths):
            self.start_model_early()
            self.push_screen(UnlockScreen())
        else:
            self.push_screen(CreatePassphraseScreen())

    def start_model_early(self) -> None:
        """Load the model while the passphrase is typed (it needs no journal)."""
        if self._early is None and self.service is None:
            self._early = EarlyStart(self.paths, self.settings, self.engine_factory)

    def needs_country(self) -> bool:
        """Set-up asks once where the person is, unless a country is already chosen."""
        from app.safety.resources import INTERNATIONAL

        return not self.settings.country_confirmed and self.settings.country == INTERNATIONAL

    def after_notice(self) -> None:
        self.settings.notice_acknowledged = True
        save_settings(self.paths, self.settings)
        if self.needs_country():
            from app.tui.screens.country import CountryScreen

            self.switch_screen(CountryScreen())
            return
        self._to_journal()

    def after_country(self, code: str) -> None:
        self.settings.country = code
        self.settings.country_confirmed = True
        save_settings(self.paths, self.settings)
        self._to_journal()

    def _to_journal(self) -> None:
        from app.tui.screens.unlock import CreatePassphraseScreen, UnlockScreen

        if journal_exists(self.paths):
            self.start_model_early()
            self.switch_screen(UnlockScreen())
        else:
            self.switch_screen(CreatePassphraseScreen())

    def unlocked(self, journal, first_run: bool = False) -> None:
        """The journal is open: the service starts the model in the background; the chat shows."""
        from app.tui.screens.chat import ChatScreen
        from app.tui.screens.models import ModelsScreen

        self.service = HavenService(self.paths, self.settings, journal,
                                    engine_factory=self.engine_factory, keys=dict(self.KEYS),
                                    prompts=self.prompts, start=False, early=self._early)
        self._early = None
        self.service.on_engine_change(lambda: self.run_on_ui(self.engine_changed))
        self.service.start_engine()
        if self.service.model_problem:
            self.notify(self.service.model_problem, severity="error", timeout=15, markup=False)
        self.switch_screen(ChatScreen())
        if first_run and not self.service.has_model:
            self.push_screen(ModelsScreen(first_run=True))

    # ---- the engine ------------------------------------------------------------------------

    def engine_status(self) -> str:
        return self.service.engine_status() if self.service else "No model loaded"

    def on_engine_change(self, callback: Callable[[], None]) -> None:
        self._engine_listeners.append(callback)

    def engine_changed(self) -> None:
        for callback in list(self._engine_listeners):
            callback()

    def run_on_ui(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the UI thread, from whichever thread we are on."""
        if threading.get_ident() == self._thread_id:
            fn()
        else:
            try:
                self.call_from_thread(fn)
            except RuntimeError:  # the app is closing
                pass

    # ---- actions reachable from everywhere -------------------------------------------------

    def action_help(self) -> None:
        from app.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_sos(self) -> None:
        """Crisis services, the safety plan (once unlocked) and a grounding exercise."""
        from app.tui.screens.sos import SosScreen

        if isinstance(self.screen, SosScreen):
            return  # already open: pressing again never closes help
        self.push_screen(SosScreen())

    def action_safety_plan(self) -> None:
        from app.tui.screens.safety_plan import SafetyPlanScreen

        if self.service is None:
            self.notify("Your safety plan opens once your journal is unlocked.")
            return
        self.push_screen(SafetyPlanScreen())

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"
        self.settings.theme = self.theme
        save_settings(self.paths, self.settings)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(keys.SOS.title, "Crisis services, your safety plan, a grounding "
                            f"exercise ({keys.SOS.first})", self.action_sos)
        yield SystemCommand(keys.HELP.title, keys.palette_help(keys.HELP), self.action_help)
        if self.service is not None:
            yield SystemCommand("Safety plan", "Write or edit your personal safety plan",
                                self.action_safety_plan)
        yield SystemCommand("Light or dark", "Switch between the light and dark themes",
                            self.action_toggle_dark)
        chat = self._chat_screen()
        if chat is None:
            return
        for title, help_text, action in chat.palette_commands():
            yield SystemCommand(title, help_text, action)

    def _chat_screen(self):
        from app.tui.screens.chat import ChatScreen

        for screen in self.screen_stack:
            if isinstance(screen, ChatScreen):
                return screen
        return None

    async def action_quit(self) -> None:
        from app.tui.screens.dialogs import DiscardScreen

        unsaved = any(getattr(screen, "has_unsaved_text", lambda: False)()
                      for screen in self.screen_stack)
        if unsaved and not isinstance(self.screen, DiscardScreen):
            # Nothing typed is thrown away without asking, not even on quit.
            self.push_screen(DiscardScreen(quitting=True),
                             lambda discard: self._quit_now() if discard else None)
            return
        self._quit_now()

    def _quit_now(self) -> None:
        if self.service is not None:
            self.service.cancel()
        self.exit()

    def shutdown(self) -> None:
        """Close the parts after the app has exited (from run_tui): the service stops the
        reply and waits for it, ends the session, closes the model, then the journal."""
        if self._early is not None:  # quit at the unlock screen
            self._early.close()
            self._early = None
        if self.service is not None:
            self.service.shutdown()
