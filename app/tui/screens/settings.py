"""Settings: the country for crisis resources, generation, context, theme."""

from __future__ import annotations

from pydantic import ValidationError
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from app.safety.resources import countries
from app.settings import Settings

NUMBERS = [
    ("temperature", "Temperature (0-2: higher is more varied)", "generation"),
    ("top_p", "Top-p (0-1)", "generation"),
    ("repeat_penalty", "Repeat penalty (1-2)", "generation"),
    ("max_tokens", "Longest reply, in tokens", "generation"),
    ("seed", "Seed (-1 for random)", "generation"),
    ("n_ctx", "Context window, in tokens", None),
    ("threads", "CPU threads", None),
]


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
            for key, label, group in NUMBERS:
                value = getattr(s.generation if group else s, key)
                yield Label(label)
                yield Input(str(value), id=key)
            yield Static("", id="problem", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Back", id="back")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_close()

    def action_save(self) -> None:
        old = self.app.settings
        data = old.model_dump()
        data["country"] = self.query_one("#country", Select).value
        data["country_confirmed"] = True
        data["theme"] = self.query_one("#theme", Select).value
        for key, _, group in NUMBERS:
            raw = self.query_one(f"#{key}", Input).value.strip()
            (data["generation"] if group else data)[key] = raw
        try:
            new = Settings.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"])
            self.query_one("#problem", Static).update(f"{field}: {error['msg']}")
            return
        self.app.service.update_settings(new)
        self.app.theme = new.theme
        self.query_one("#problem", Static).update("")
        self.notify("Settings saved.")

    def action_close(self) -> None:
        self.dismiss(None)
