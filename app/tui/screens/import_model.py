"""Import a model file without the command line: pick it, and (if it needs one) a format.

A folder tree that shows only folders and ``.gguf`` files, and a path box for those who
would rather paste a path; the path stays after an error. The file is checked before
anything is copied. When it carries no chat template of its own, the person chooses the
model family from a list in plain words (a guess from the file name is highlighted).
Dismisses with an :class:`ImportChoice`, or None when closed; the caller does the import
(``service.import_model(choice.path, choice.chat_format)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, OptionList, Static
from textual.widgets.option_list import Option

from app.conversation.service import ModelError, chat_formats, model_file_needs_format

#: The families a person may recognise from the model's page, for each format Haven knows.
FORMAT_WORDS = {
    "gemma": "Gemma (Google)",
    "llama-3": "Llama 3 (Meta)",
    "llama-2": "Llama 2 (Meta)",
    "mistral-instruct": "Mistral",
    "phi3": "Phi-3 (Microsoft)",
    "qwen": "Qwen (Alibaba)",
    "chatml": "ChatML (used by many others: Hermes, OpenHermes, Yi, SmolLM…)",
    "zephyr": "Zephyr",
    "alpaca": "Alpaca (older instruction-following models)",
}
#: Words in a file name that suggest a family, most specific first.
HINTS = (("gemma", "gemma"), ("llama-3", "llama-3"), ("llama3", "llama-3"), ("llama-2", "llama-2"),
         ("llama2", "llama-2"), ("mistral", "mistral-instruct"), ("phi-3", "phi3"),
         ("phi3", "phi3"), ("qwen", "qwen"), ("zephyr", "zephyr"), ("hermes", "chatml"),
         ("smollm", "chatml"), ("alpaca", "alpaca"))


@dataclass(frozen=True)
class ImportChoice:
    path: Path
    chat_format: str | None  # None: the file's own template is used


def guess_format(path: Path) -> str | None:
    name = path.name.lower()
    return next((fmt for word, fmt in HINTS if word in name), None)


class ModelFileTree(DirectoryTree):
    """Folders (not hidden ones) and GGUF files, nothing else."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        for path in paths:
            if path.name.startswith("."):
                continue
            try:
                if path.is_dir() or path.suffix.lower() == ".gguf":
                    yield path
            except OSError:  # a broken link or a folder we may not read
                continue


class ImportModelScreen(ModalScreen[ImportChoice | None]):
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, start: Path | None = None) -> None:
        super().__init__()
        self.start = start or Path.home()
        self.checked: Path | None = None  # the file whose check passed (format may follow)
        self.needs_format = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Import a model file you already have (a .gguf file). Pick it below, "
                         "or paste its location. Haven keeps its own copy.", classes="hint")
            yield ModelFileTree(self.start, id="tree")
            yield Input(placeholder="or paste the file's location here", id="path",
                        select_on_focus=False)
            yield Static("", id="problem", classes="error")
            yield OptionList(*[Option(FORMAT_WORDS.get(f, f), id=f) for f in chat_formats()],
                             id="formats")
            with Horizontal(classes="buttons"):
                yield Button("Check this file", id="check", variant="primary")
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        self.query_one("#tree", ModelFileTree).focus()

    # ---- choosing a file ---------------------------------------------------------------------

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.query_one("#path", Input).value = str(event.path)
        self.check(event.path)

    @on(Input.Changed, "#path")
    def _path_changed(self, event: Input.Changed) -> None:
        if self.checked is not None and Path(event.value).expanduser() != self.checked:
            self._reset()

    @on(Input.Submitted, "#path")
    def _path_submitted(self) -> None:
        self.next_step()

    @on(Button.Pressed, "#check")
    def _check_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.next_step()

    @on(Button.Pressed, "#close")
    def _close_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_close()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.finish(event.option.id)

    def next_step(self) -> None:
        text = self.query_one("#path", Input).value.strip().strip("'\"")
        if not text:
            self.say("Pick a .gguf file in the list, or paste where it is.")
            return
        path = Path(text).expanduser()
        if self.checked == path and self.needs_format:
            formats = self.query_one("#formats", OptionList)
            if formats.highlighted is None:
                self.say("Choose the model's family in the list first.")
                return
            self.finish(formats.get_option_at_index(formats.highlighted).id)
            return
        self.check(path)

    # ---- checking it ---------------------------------------------------------------------------

    def check(self, path: Path) -> None:
        self._reset()
        if not path.is_file():
            self.say(f"There is no file at {path}." if not path.exists() else
                     f"{path.name} is a folder: pick a .gguf file inside it.")
            return
        self.say(f"Checking {path.name}…", error=False)
        self._inspect(path)

    @work(thread=True, exclusive=True, group="inspect")
    def _inspect(self, path: Path) -> None:
        try:
            needs_format = model_file_needs_format(path)
        except ModelError as exc:
            self.app.call_from_thread(self.say, f"{path.name} cannot be used: {exc}")
            return
        except OSError as exc:
            self.app.call_from_thread(self.say, f"{path.name} cannot be read: {exc.strerror}")
            return
        self.app.call_from_thread(self._checked, path, needs_format)

    def _checked(self, path: Path, needs_format: bool) -> None:
        self.checked, self.needs_format = path, needs_format
        if not needs_format:
            self.finish(None)
            return
        formats = self.query_one("#formats", OptionList)
        formats.add_class("shown")
        self.add_class("choosing-format")  # the file is chosen: the list takes the tree's room
        guess = guess_format(path)
        ids = [formats.get_option_at_index(i).id for i in range(formats.option_count)]
        formats.highlighted = ids.index(guess) if guess in ids else None
        self.query_one("#check", Button).label = "Import"
        self.say(f"{path.name} does not say how it expects a conversation to be laid out. "
                 "Which family of models is it? (The page you got it from usually says.)",
                 error=False)
        formats.focus()

    def finish(self, chat_format: str | None) -> None:
        if self.checked is None:
            return
        self.dismiss(ImportChoice(self.checked, chat_format))

    # ---- small helpers -------------------------------------------------------------------------

    def _reset(self) -> None:
        self.checked, self.needs_format = None, False
        self.query_one("#formats", OptionList).remove_class("shown")
        self.remove_class("choosing-format")
        self.query_one("#check", Button).label = "Check this file"
        self.say("", error=False)

    def say(self, message: str, error: bool = True) -> None:
        problem = self.query_one("#problem", Static)
        problem.set_class(error, "error")
        problem.set_class(not error, "hint")
        problem.update(Text(message))

    def action_close(self) -> None:
        self.dismiss(None)
