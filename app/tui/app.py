"""HavenApp: first run, unlock, then the chat screen and everything reachable from it.

The app holds the parts (journal, engine, companion) once unlocked; screens call the
companion and the store through it; widgets only render and post messages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from app.conversation.companion import Companion
from app.conversation.prompts import prompt_library
from app.llm import EngineState, ModelSpec
from app.modelhub.registry import RegistryError
from app.paths import DataPaths
from app.runtime import NoModelSelected, selected_model_spec, start_engine
from app.settings import Settings, save_settings
from app.store import Journal

log = logging.getLogger("haven.tui")

EngineFactory = Callable[[ModelSpec | None], object | None]


def real_engine(spec: ModelSpec | None):
    return None if spec is None else start_engine(spec)


class HavenApp(App):
    TITLE = "Haven"
    SUB_TITLE = "a private CBT companion"
    CSS = """
    Screen { background: $background; }
    .hint { color: $text-muted; }
    .error { color: $error; }
    .form-row { height: auto; margin: 0 0 1 0; }
    .buttons { height: auto; margin: 1 0 0 0; }
    .buttons Button { margin: 0 1 0 0; min-width: 10; }
    .dialog { width: 76; max-width: 100%; height: auto; max-height: 100%; border: thick $accent;
              background: $surface; padding: 1 2; }
    ModalScreen { align: center middle; }
    """
    # SOS works on every screen, in dialogs and before unlock (priority): Ctrl+O is
    # delivered by every terminal and edits no text; F12 is the same for those who prefer
    # a function key.
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Help"),
        Binding("ctrl+o", "sos", "SOS", priority=True),
        Binding("f12", "sos", "SOS", priority=True, show=False),
    ]
    # How Haven names its keys in what it writes into the conversation.
    KEYS = {"sos": "press Ctrl+O (SOS)", "new_session": "Ctrl+N"}

    def __init__(self, paths: DataPaths, settings: Settings,
                 engine_factory: EngineFactory = real_engine) -> None:
        super().__init__()
        self.paths = paths
        self.settings = settings
        self.engine_factory = engine_factory
        self.journal: Journal | None = None
        self.engine = None
        self.companion: Companion | None = None
        self.prompts = prompt_library()
        self._engine_listeners: list[Callable[[], None]] = []

    # ---- start-up ------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.theme = self.settings.theme if self.settings.theme in self.available_themes else "textual-dark"
        from app.tui.screens.unlock import CreatePassphraseScreen, UnlockScreen
        from app.tui.screens.welcome import WelcomeScreen

        if not self.settings.notice_acknowledged:
            self.push_screen(WelcomeScreen())
        elif self.needs_country():
            from app.tui.screens.country import CountryScreen

            self.push_screen(CountryScreen())
        elif Journal.exists(self.paths.journal):
            self.push_screen(UnlockScreen())
        else:
            self.push_screen(CreatePassphraseScreen())

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

        screen = UnlockScreen() if Journal.exists(self.paths.journal) else CreatePassphraseScreen()
        self.switch_screen(screen)

    def unlocked(self, journal: Journal, first_run: bool = False) -> None:
        """The journal is open: start the model in the background and show the chat."""
        from app.tui.screens.chat import ChatScreen
        from app.tui.screens.models import ModelsScreen

        self.journal = journal
        self.start_engine()
        self.companion = Companion(journal=journal, engine=self.engine, settings=self.settings,
                                   keys=dict(self.KEYS))
        self.switch_screen(ChatScreen())
        if first_run and self.engine is None:
            self.push_screen(ModelsScreen(first_run=True))

    # ---- the engine ------------------------------------------------------------------------

    def model_spec(self) -> ModelSpec | None:
        try:
            return selected_model_spec(self.paths, self.settings)
        except NoModelSelected:
            return None
        except RegistryError as exc:  # the model's file is missing, changed or damaged
            log.warning("the selected model cannot be used (%s)", type(exc).__name__)
            self.notify(f"{exc}. Journaling works without a model; F4 for models.",
                        severity="error", timeout=15, markup=False)
            return None

    def start_engine(self) -> None:
        old = self.engine
        if old is not None:
            threading.Thread(target=old.close, daemon=True).start()
        self.engine = self.engine_factory(self.model_spec())
        if self.engine is not None:
            self.engine.on_state(lambda state, detail: self.run_on_ui(self.engine_changed))
        if self.companion is not None:
            self.companion.engine = self.engine
        self.engine_changed()

    def engine_status(self) -> str:
        engine = self.engine
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

        if self.journal is None:
            self.notify("Your safety plan opens once your journal is unlocked.")
            return
        self.push_screen(SafetyPlanScreen())

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"
        self.settings.theme = self.theme
        save_settings(self.paths, self.settings)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("SOS", "Crisis services, your safety plan, a grounding exercise "
                            "(Ctrl+O)", self.action_sos)
        yield SystemCommand("Help", "Keys, and what Haven is and is not (F1)", self.action_help)
        if self.journal is not None:
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
        if self.companion is not None:
            self.companion.cancel()
        self.exit()

    def shutdown(self) -> None:
        """Close the parts after the app has exited (from run_tui)."""
        if self.companion is not None:
            self.companion.cancel()
            try:
                if self.companion.session is not None:
                    self.companion.end_session()
            except Exception as exc:  # its text could hold the person's words: the type only
                log.warning("could not end the session cleanly (%s)", type(exc).__name__)
        if self.engine is not None:
            self.engine.close()
        if self.journal is not None:
            self.journal.close()
