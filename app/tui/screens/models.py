"""Models: the catalog with size and RAM fit, download with progress, switch, import."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Header, ProgressBar, Static

from app.conversation.service import ModelError
from app.text import safe_rich
from app.tui.widgets.footer import HavenFooter


class DownloadStopped(Exception):
    pass


class ModelsScreen(Screen):
    BINDINGS = [Binding("escape", "close", "Back")]

    def __init__(self, first_run: bool = False) -> None:
        super().__init__()
        self.first_run = first_run
        self.stop_requested = False
        self.downloading = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            intro = ("Choose a model to download once; after that Haven works offline. You can also "
                     "skip this and use the journal without a model." if self.first_run else
                     "Models run on this computer. The recommended one suits most laptops.")
            yield Static(intro, classes="hint")
            yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
            yield Static("", id="detail")
            with Horizontal(classes="buttons"):
                yield Button("Download", id="download", variant="primary")
                yield Button("Use", id="use")
                yield Button("Import…", id="import")
                yield Button("Remove", id="remove")
                yield Button("Continue" if self.first_run else "Back", id="close")
            yield ProgressBar(id="progress", show_eta=True)
            yield Static("", id="status")
        yield HavenFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Model", "Size", "RAM", "Status", "Licence")
        self.query_one(ProgressBar).display = False
        self.reload()
        table.focus()

    def reload(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        service = self.app.service
        installed = service.installed_models()
        ram = psutil.virtual_memory().total / 1024**3
        selected = service.settings.model
        for entry in service.catalog_entries():
            status = "selected" if entry.name == selected and entry.name in installed else (
                "installed" if entry.name in installed else "")
            tag = " (recommended)" if entry.default else " (small machines)" if entry.small_machines else ""
            fit = entry.ram_fit(ram)
            table.add_row(entry.title + tag, f"{entry.size_mb} MB", fit, status, entry.licence,
                          key=entry.name)
        for name, model in installed.items():
            if service.catalog_entry(name) is None:
                status = "selected" if name == selected else "installed"
                table.add_row(safe_rich(name), f"{model.size / 1e6:.0f} MB", "", status, "imported",
                              key=name)

    def _selected_name(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        entry = self.app.service.catalog_entry(str(event.row_key.value))
        detail = self.query_one("#detail", Static)
        detail.update(f"{entry.description}  ({entry.template_note})" if entry else "")

    @on(Button.Pressed, "#download")
    def _download_pressed(self) -> None:
        self.start_download()

    @on(Button.Pressed, "#use")
    def _use_pressed(self) -> None:
        self.use()

    @on(Button.Pressed, "#import")
    def _import_pressed(self) -> None:
        self.ask_import()

    @on(Button.Pressed, "#remove")
    def _remove_pressed(self) -> None:
        self.remove_model()

    @on(Button.Pressed, "#close")
    def _close_pressed(self) -> None:
        self.action_close()

    # ---- download ----------------------------------------------------------------------------

    def start_download(self) -> None:
        if self.downloading:
            self.stop_requested = True
            self.query_one("#status", Static).update("Stopping… the part downloaded is kept.")
            return
        entry = self.app.service.catalog_entry(self._selected_name() or "")
        if entry is None:
            self.notify("Pick a catalog model to download.")
            return
        self.downloading = True
        self.stop_requested = False
        self.query_one("#download", Button).label = "Stop download"
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(total=entry.size_mb * 1_000_000, progress=0)
        self.query_one("#status", Static).update(f"Downloading {entry.title}…")
        self._download(entry.name)

    @work(thread=True, exclusive=True, group="download")
    def _download(self, name: str) -> None:
        last = [0.0]

        def progress(p) -> None:
            if self.stop_requested:
                raise DownloadStopped()
            now = time.monotonic()
            if now - last[0] > 0.2 or p.done >= p.total:
                last[0] = now
                self.app.call_from_thread(self._progress, p)

        try:
            installed = self.app.service.download_model(name, progress)
        except DownloadStopped:
            self.app.call_from_thread(self._finished, "Download paused. Press Download to resume.")
            return
        except ModelError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self._installed, installed)

    def _failed(self, message: str) -> None:
        """A download that could not go on: no bar left standing at 0 %, one plain line
        (what is already on disk stays, and the next try resumes from it)."""
        self.query_one(ProgressBar).display = False
        self._finished(message)

    def _progress(self, p) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=p.total, progress=p.done)
        what = "Verifying" if p.phase == "verify" else "Downloading"
        rate = f" at {p.rate / 1e6:.1f} MB/s" if p.phase == "download" and p.rate else ""
        self.query_one("#status", Static).update(
            f"{what}: {p.done / 1e6:.0f} of {p.total / 1e6:.0f} MB{rate}")

    def _finished(self, message: str) -> None:
        self.downloading = False
        self.query_one("#download", Button).label = "Download"
        self.query_one("#status", Static).update(message)

    def _installed(self, name: str) -> None:
        self._finished(f"{name} is installed and verified. Haven will use it now.")
        self._select(name)

    def on_unmount(self) -> None:
        self.stop_requested = True  # a closing screen or app pauses the download

    # ---- use, import, remove ---------------------------------------------------------------------

    def _select(self, name: str) -> None:
        self.app.service.select_model(name)
        self.reload()

    def use(self) -> None:
        name = self._selected_name()
        if not self.app.service.is_installed(name):
            self.notify("Download or import this model first.")
            return
        self._select(name)
        self.notify(f"Haven will talk with {name}.")

    def ask_import(self) -> None:
        """A file picker (a folder tree, or a pasted location) that checks the file first
        and offers a list of model families when the file has no chat template."""
        from app.tui.screens.import_model import ImportModelScreen

        def chosen(choice) -> None:
            if choice is not None:
                self._import(choice.path, choice.chat_format)

        self.app.push_screen(ImportModelScreen(), chosen)

    @work(thread=True, exclusive=True, group="import")
    def _import(self, path: Path, chat_format: str | None) -> None:
        self.app.call_from_thread(self.query_one("#status", Static).update, f"Checking {path.name}…")
        try:
            installed = self.app.service.import_model(path, chat_format)
        except ModelError as exc:
            self.app.call_from_thread(self.query_one("#status", Static).update, Text(str(exc)))
            return
        self.app.call_from_thread(self._installed, installed)

    def remove_model(self) -> None:
        from app.tui.screens.dialogs import ConfirmScreen

        name = self._selected_name()
        if not self.app.service.is_installed(name):
            self.notify("That model is not installed.")
            return

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.app.service.remove_model(name)
            except ModelError as exc:
                self.notify(str(exc), severity="error")
                return
            self.reload()

        self.app.push_screen(ConfirmScreen(f"Delete the model {name} from this computer?",
                                           "Delete"), done)

    def action_close(self) -> None:
        self.dismiss(None)
