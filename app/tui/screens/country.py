"""First-run set-up: the country whose crisis services Haven shows (changeable in Settings)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Header, OptionList, Static
from textual.widgets.option_list import Option

from app.safety.resources import INTERNATIONAL, countries
from app.tui.widgets.footer import HavenFooter

ELSEWHERE = "Somewhere else, or I'd rather not say"
EXPLAIN = (
    "If Haven notices you may be in danger, and whenever you press Ctrl+O (SOS), it shows "
    "crisis services for your country. Choose where you are; you can change it any time in "
    "Settings (F8)."
)
DEFAULT = (
    "Not listed? Choose the first line: Haven will then ask you to call your local emergency "
    "number and show findahelpline.com, which lists free crisis lines around the world."
)


class CountryScreen(Screen):
    BINDINGS = [Binding("escape", "keep", "Keep the default")]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Static("Where are you?", id="country-title")
            yield Static(EXPLAIN, classes="hint")
            options = [Option(ELSEWHERE if code == INTERNATIONAL else name, id=code)
                       for code, name in countries()]
            yield OptionList(*options, id="countries")
            yield Static(DEFAULT, classes="hint", id="country-default")
            with Horizontal(classes="buttons"):
                yield Button("Continue", id="continue", variant="primary")
        yield HavenFooter()

    def on_mount(self) -> None:
        chooser = self.query_one(OptionList)
        codes = [code for code, _ in countries()]
        current = self.app.settings.country
        chooser.highlighted = codes.index(current) if current in codes else 0
        chooser.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.choose(event.option.id or INTERNATIONAL)

    @on(Button.Pressed, "#continue")
    def _continue_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        chooser = self.query_one(OptionList)
        index = chooser.highlighted or 0
        self.choose(chooser.get_option_at_index(index).id or INTERNATIONAL)

    def action_keep(self) -> None:
        self.choose(self.app.settings.country or INTERNATIONAL)

    def choose(self, code: str) -> None:
        self.app.after_country(code)
