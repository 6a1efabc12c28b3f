"""Settings: the country for crisis resources, theme, recall, generation, context."""

from __future__ import annotations

from pydantic import ValidationError
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Label, Select, Static

from app.safety.resources import countries
from app.settings import Settings
from app.tui.widgets.footer import HavenFooter

NUMBERS = [
    ("temperature", "Variety of replies (0-2: higher is more varied, lower more predictable)",
     "generation"),
    ("top_p", "Range of words it picks from (0-1: lower keeps to the likeliest words)",
     "generation"),
    ("repeat_penalty", "Avoiding repetition (1-2: higher repeats itself less)", "generation"),
    ("max_tokens", "Longest reply (in tokens; a token is about three quarters of a word)",
     "generation"),
    ("seed", "Same reply to the same words? (-1: no; any other number: yes)", "generation"),
    ("n_ctx", "How much of the conversation the model keeps in view (in tokens)", None),
    ("threads", "Processor cores the model may use", None),
]
#: The start of each label, for an error that names the field in the same words.
FIELD_NAMES = {key: label.split(" (")[0].rstrip("?") for key, label, _ in NUMBERS}


def plain_error(error: dict) -> str:
    """A pydantic error on a settings field, in the words the form uses."""
    key = str(error["loc"][-1]) if error.get("loc") else ""
    name = FIELD_NAMES.get(key, key.replace("_", " ").capitalize())
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind.endswith("_parsing") or kind.endswith("_type"):
        wants = "a whole number" if kind.startswith("int") else "a number"
        return f"{name}: {wants}, please."
    for bound, words in (("ge", "at least"), ("gt", "more than"), ("le", "at most"),
                         ("lt", "less than")):
        if bound in ctx:
            return f"{name}: {words} {ctx[bound]}, please."
    return f"{name}: {error.get('msg', 'not a value Haven can use')}."


class SettingsScreen(Screen):
    BINDINGS = [Binding("escape", "close", "Back"), Binding("ctrl+s", "save", "Save")]

    def compose(self) -> ComposeResult:
        s = self.app.settings
        yield Header()
        with VerticalScroll():
            yield Label("Country, for crisis resources")
            yield Select([(name, code) for code, name in countries()], value=s.country,
                         allow_blank=False, id="country")
            yield Label("Theme")
            yield Select([("Dark", "textual-dark"), ("Light", "textual-light")],
                         value=s.theme if s.theme in ("textual-dark", "textual-light")
                         else "textual-dark", allow_blank=False, id="theme")
            yield Label("Bring back earlier entries in replies (recall from your journal)")
            yield Select([("On: a few earlier thought records, summaries and notes", True),
                          ("Off: nothing from earlier is ever brought back", False)],
                         value=s.recall, allow_blank=False, id="recall")
            for key, label, group in NUMBERS:
                value = getattr(s.generation if group else s, key)
                yield Label(label)
                yield Input(str(value), id=key, select_on_focus=False)
            yield Static("", id="problem", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Back", id="back")
        yield HavenFooter()

    def on_mount(self) -> None:
        self.query_one("#country", Select).focus()

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_close()

    def action_save(self) -> None:
        old = self.app.settings
        data = old.model_dump()
        data["country"] = self.query_one("#country", Select).value
        data["country_confirmed"] = True
        data["theme"] = self.query_one("#theme", Select).value
        data["recall"] = self.query_one("#recall", Select).value
        for key, _, group in NUMBERS:
            raw = self.query_one(f"#{key}", Input).value.strip()
            (data["generation"] if group else data)[key] = raw
        try:
            new = Settings.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            self.query_one("#problem", Static).update(Text(plain_error(error)))
            return
        self.app.service.update_settings(new)
        self.app.theme = new.theme
        self.query_one("#problem", Static).update("")
        self.notify("Settings saved.")

    def action_close(self) -> None:
        self.dismiss(None)
