"""Small modal dialogs: confirm, ask for one line of text, and "Discard what you wrote?".

:class:`DiscardGuard` is the one piece every form with free text uses so that nothing a
person typed is thrown away without asking: Esc, a Close/Skip/Cancel button, or quitting
the app, on a form that holds unsaved text, asks first ("Keep editing" is the default and
what Esc answers). An empty or unchanged form closes at once.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from app.text import one_line, terminal_safe


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = terminal_safe(question)
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, markup=False)
            with Horizontal(classes="buttons"):
                yield Button(self.yes, id="yes", variant="error")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_cancel(self) -> None:
        self.dismiss(False)


class DiscardScreen(ModalScreen[bool]):
    """Discard what you wrote? Keep editing (default, Esc) / Discard. Dismisses True to discard."""

    BINDINGS = [Binding("escape", "keep", "Keep editing")]

    def __init__(self, quitting: bool = False) -> None:
        super().__init__()
        self.quitting = quitting

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Discard what you wrote?", classes="title")
            yield Static("It is not saved yet." + (" Haven will close." if self.quitting else ""),
                         classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Keep editing", id="keep", variant="primary")
                yield Button("Discard and quit" if self.quitting else "Discard", id="discard",
                             variant="error")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "discard")

    def action_keep(self) -> None:
        self.dismiss(False)


class DiscardGuard:
    """Mix into a screen whose fields hold free text.

    The screen says what its fields hold (:meth:`form_values`), calls :meth:`mark_clean`
    once they hold what is saved (after filling or saving), and closes through
    :meth:`close_guarded`. The app asks the same question on quit (``has_unsaved_text``).
    """

    _clean_values: tuple | None = None
    #: Run with the form's result before it closes; if it fails, the form stays open with
    #: every word in it and says why (a full disk, a replaced journal).
    save_step: Callable[[object], object] | None = None

    def form_values(self) -> tuple:
        raise NotImplementedError

    def show_problem(self, message: str) -> None:
        self.query_one("#problem", Static).update(Text(message))  # type: ignore[attr-defined]

    def save_and_close(self, value) -> None:
        if value is not None and self.save_step is not None:
            try:
                self.save_step(value)
            except Exception as exc:
                self.show_problem(f"Could not save: {exc}. What you wrote is still here.")
                return
        self.dismiss(value)  # type: ignore[attr-defined]

    def mark_clean(self) -> None:
        self._clean_values = self.form_values()

    def has_unsaved_text(self) -> bool:
        try:
            values = self.form_values()
        except Exception:  # not mounted (yet, or any more): nothing typed here
            return False
        if not any(_filled(v) for v in values):
            return False  # an empty form: nothing to lose
        return values != self._clean_values

    def close_guarded(self, close: Callable[[], object]) -> None:
        if not self.has_unsaved_text():
            close()
            return

        def answered(discard: bool | None) -> None:
            if discard:
                close()

        self.app.push_screen(DiscardScreen(), answered)  # type: ignore[attr-defined]


def _filled(value) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (tuple, list, set, frozenset)):
        return any(_filled(v) for v in value)
    return bool(value)


class TextPromptScreen(DiscardGuard, ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, title: str, value: str = "", placeholder: str = "",
                 save: Callable[[str], object] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.value = one_line(value)
        self.placeholder = placeholder
        self.save_step = save

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, markup=False)
            yield Input(self.value, placeholder=self.placeholder, id="value", select_on_focus=False)
            yield Static("", id="problem", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self.mark_clean()

    def form_values(self) -> tuple:
        return (self.query_one(Input).value,)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.save_and_close(event.value)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.save_and_close(self.query_one(Input).value)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_save(self) -> None:
        self.save_and_close(self.query_one(Input).value)

    def action_cancel(self) -> None:
        self.close_guarded(lambda: self.dismiss(None))
