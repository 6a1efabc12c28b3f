"""Export an encrypted copy of the journal (age): to a passphrase or a public key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from app.conversation.service import ExportProblem, describe_counts
from app.tui.widgets.passphrase_input import PassphraseInput


class ExportScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close"), Binding("ctrl+s", "export", "Export")]

    def compose(self) -> ComposeResult:
        default = Path.home() / f"haven-journal-{date.today().isoformat()}.age"
        with Vertical(classes="dialog"):
            with VerticalScroll(id="fields"):
                yield Static("Export an encrypted copy of your journal. It can be opened with Haven, "
                             "or with the standard age tool.", classes="hint")
                yield Label("Save to")
                yield Input(str(default), id="path", select_on_focus=False)
                yield Label("Passphrase for the export (or leave empty and give a public key)")
                with Horizontal(classes="form-row"):
                    yield PassphraseInput(id="pass1", placeholder="at least 8 characters")
                    yield PassphraseInput(id="pass2", placeholder="the same again")
                yield Label("…or a recipient's age public key (e.g. your therapist's)")
                yield Input(id="recipient", placeholder="age1…", select_on_focus=False)
                yield Label("From / to (optional, YYYY-MM-DD)")
                with Horizontal(classes="form-row"):
                    yield Input(id="since", placeholder="from", select_on_focus=False)
                    yield Input(id="until", placeholder="to", select_on_focus=False)
                yield Select([("Markdown and JSON", "both"), ("Markdown only", "markdown"),
                              ("JSON only", "json")], value="both", allow_blank=False, id="format")
            with Vertical(id="actions"):
                yield Static("", id="problem", classes="error")
                with Horizontal(classes="buttons"):
                    yield Button("Export", id="export", variant="primary")
                    yield Button("Close", id="close")

    def on_mount(self) -> None:
        self.query_one("#fields").can_focus = False  # Tab goes field to field, no blank stop
        self.query_one("#path", Input).focus()

    def action_export(self) -> None:
        self.start()

    @on(Button.Pressed, "#export")
    def _export_pressed(self) -> None:
        self.start()

    @on(Button.Pressed, "#close")
    def _close_pressed(self) -> None:
        self.action_close()

    def start(self) -> None:
        problem = self.query_one("#problem", Static)
        value = {i.id: i.value.strip() for i in self.query(Input)}
        out = Path(value["path"]).expanduser()
        recipient = value["recipient"]
        passphrase = None
        if not recipient:
            if len(value["pass1"]) < 8:
                problem.update("Give a passphrase of at least 8 characters, or a public key.")
                return
            if value["pass1"] != value["pass2"]:
                problem.update("The two passphrases are different.")
                return
            passphrase = value["pass1"]
        problem.update("Exporting…")
        self._export(out, passphrase, [recipient] if recipient else [], value["since"], value["until"],
                     self.query_one("#format", Select).value)

    @work(thread=True, exclusive=True)
    def _export(self, out, passphrase, recipients, since, until, fmt) -> None:
        try:
            result = self.app.service.export(out, passphrase=passphrase, recipients=recipients,
                                             since=since or None, until=until or None, fmt=fmt)
        except ExportProblem as exc:
            self.app.call_from_thread(self.query_one("#problem", Static).update, Text(str(exc)))
            return
        counts = describe_counts(result.counts)
        self.app.call_from_thread(self.query_one("#problem", Static).update,
                                  f"Saved {counts} to {result.path} (encrypted).")

    def action_close(self) -> None:
        self.dismiss(None)
