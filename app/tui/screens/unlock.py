"""Create the journal's passphrase (first run), or unlock it (three tries)."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Static

from app.conversation.service import (
    DiskFull,
    JournalError,
    WrongPassphrase,
    create_journal,
    open_journal,
)
from app.tui.widgets.footer import HavenFooter
from app.tui.widgets.passphrase_input import MAX_PASSPHRASE_CHARS, PassphraseInput

MIN_LENGTH = 8
MAX_TRIES = 3


def strength_hint(passphrase: str) -> tuple[str, bool]:
    """A plain hint about a passphrase, and whether it is acceptable."""
    if len(passphrase) < MIN_LENGTH:
        return f"At least {MIN_LENGTH} characters, please.", False
    kinds = sum(any(test(c) for c in passphrase) for test in
                (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum()))
    words = len(passphrase.split())
    if len(passphrase) >= 20 or words >= 4:
        return "Strong: a long passphrase is the best kind.", True
    if len(passphrase) >= 12 and kinds >= 2:
        return "Good. A few more words would make it stronger.", True
    return "Okay, but weak: try a short sentence of four or more words.", True


class CreatePassphraseScreen(Screen):
    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Static("Create a passphrase for your journal", classes="title")
            yield Static("Everything you write in Haven is encrypted with it. Nobody can recover "
                         "it if you forget it — not even us. A short sentence you will remember "
                         "works well.", classes="hint")
            yield PassphraseInput(placeholder="Passphrase", id="first")
            yield Static("", id="strength", classes="hint")
            yield PassphraseInput(placeholder="The same passphrase again", id="second")
            yield Static("", id="problem", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Create my journal", id="create", variant="primary")
        yield HavenFooter()

    def on_mount(self) -> None:
        self.query_one("#first", Input).focus()

    def on_passphrase_input_too_long(self, event: PassphraseInput.TooLong) -> None:
        too_long_paste(self)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "first":
            hint, _ = strength_hint(event.value)
            self.query_one("#strength", Static).update(hint if event.value else "")
        if event.value:  # typing again makes an error about the last try stale
            self.query_one("#problem", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "first":
            if not strength_hint(event.value)[1]:  # stay here: retyping belongs in this box
                self.query_one("#problem", Static).update(
                    f"The passphrase needs at least {MIN_LENGTH} characters.")
                return
            self.query_one("#second", Input).focus()
        else:
            self.create()

    @on(Button.Pressed, "#create")
    def _create_pressed(self) -> None:
        self.create()

    def create(self) -> None:
        first = self.query_one("#first", Input).value
        second = self.query_one("#second", Input).value
        problem = self.query_one("#problem", Static)
        _, ok = strength_hint(first)
        if not ok:
            problem.update(f"The passphrase needs at least {MIN_LENGTH} characters.")
            self.query_one("#first", Input).focus()
            return
        if first != second:
            problem.update("The two passphrases are different. Please type them again.")
            self.query_one("#second", Input).value = ""
            self.query_one("#second", Input).focus()
            return
        problem.update("Creating your encrypted journal…")
        self._create(first)

    @work(thread=True, exclusive=True)
    def _create(self, passphrase: str) -> None:
        try:
            journal = create_journal(self.app.paths, passphrase)
        except JournalError as exc:
            self.app.call_from_thread(self.query_one("#problem", Static).update, Text(str(exc)))
            return
        self.app.call_from_thread(self.app.unlocked, journal, True)


def too_long_paste(screen: Screen) -> None:
    screen.query_one("#problem", Static).update(
        f"That paste is too long for a passphrase (over {MAX_PASSPHRASE_CHARS:,} characters); "
        "nothing was pasted.")


class UnlockScreen(Screen):
    def __init__(self) -> None:
        super().__init__()
        self.tries = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Static("Welcome back. Enter your passphrase to open your journal.")
            yield PassphraseInput(placeholder="Passphrase", id="passphrase")
            yield Static("", id="problem", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Unlock", id="unlock", variant="primary")
        yield HavenFooter()

    def on_mount(self) -> None:
        self.query_one("#passphrase", Input).focus()

    def on_passphrase_input_too_long(self, event: PassphraseInput.TooLong) -> None:
        too_long_paste(self)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.try_unlock()

    @on(Button.Pressed, "#unlock")
    def _unlock_pressed(self) -> None:
        self.try_unlock()

    def try_unlock(self) -> None:
        field = self.query_one("#passphrase", Input)
        if not field.value:
            return
        field.disabled = True
        self.query_one("#problem", Static).update("Opening…")
        self._open(field.value)

    @work(thread=True, exclusive=True)
    def _open(self, passphrase: str) -> None:
        try:
            journal = open_journal(self.app.paths, passphrase)
        except WrongPassphrase:
            self.app.call_from_thread(self._wrong)
            return
        except DiskFull:  # not the person's fault: never counts as a try
            self.app.call_from_thread(
                self._failed, "Haven cannot open your journal: the disk is full. Free some space "
                "and try again — this did not count as a try, and your journal is unchanged.")
            return
        except JournalError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self.app.unlocked, journal)

    def _wrong(self) -> None:
        self.tries += 1
        field = self.query_one("#passphrase", Input)
        field.value = ""
        field.disabled = False
        left = MAX_TRIES - self.tries
        problem = self.query_one("#problem", Static)
        if left <= 0:
            problem.update(Text("That passphrase did not open the journal three times. "
                                "Haven will close now; your journal is unchanged."))
            # Also said on the terminal after the app closes, so it is not gone with the screen.
            self.set_timer(2.5, lambda: self.app.exit(return_code=2, message=Text(
                "haven: that passphrase did not open your journal three times, so Haven "
                "closed; your journal is unchanged. Open Haven again to try once more.")))
            field.disabled = True
            return
        problem.update(f"That passphrase does not open this journal. {left} "
                       f"{'try' if left == 1 else 'tries'} left.")
        field.focus()

    def _failed(self, message: str) -> None:
        self.query_one("#problem", Static).update(Text(message))
        field = self.query_one("#passphrase", Input)
        field.disabled = False
        field.focus()
