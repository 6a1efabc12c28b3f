"""The journal: everything by date, full-text search with highlights, the mood trend,
thought records, and free notes."""

from __future__ import annotations

import re
from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    Header,
    Input,
    Label,
    ListItem,
    ListView,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)

from app.store.records import MoodEntry, SearchHit
from app.text import TextProblem, check_typed, one_line, terminal_safe
from app.tui.screens.dialogs import DiscardGuard
from app.tui.screens.thought_record import ThoughtRecordScreen
from app.tui.widgets.footer import HavenFooter
from app.tui.widgets.insights_panel import InsightsPanel
from app.tui.widgets.session_list import friendly_day

KIND_LABEL = {"session": "Session", "note": "Note", "thought_record": "Thought record",
              "message": "Message", "mood": "Mood"}


class EntryItem(ListItem):
    def __init__(self, kind: str, ref_id: str, text: Text, session_id: str | None = None) -> None:
        super().__init__(Label(text))
        self.kind = kind
        self.ref_id = ref_id
        self.session_id = session_id


def entry_text(kind: str, when, body: str) -> Text:
    text = Text()
    text.append(f"{KIND_LABEL[kind]:<15}", style="bold")
    text.append(f"{friendly_day(when):<12}", style="dim")
    text.append(one_line(body, 90))
    return text


def mood_text(mood: MoodEntry) -> str:
    """A mood entry, to read: the rating, the feelings named, the note."""
    lines = [f"Mood {mood.score} of 10 ({friendly_day(mood.created)})"]
    if mood.emotions:
        lines.append(", ".join(f"{e.name} {e.intensity}" for e in mood.emotions))
    if mood.note:
        lines += ["", mood.note]
    return "\n".join(lines)


def hit_text(hit: SearchHit) -> Text:
    text = Text()
    text.append(f"{KIND_LABEL[hit.kind]:<15}", style="bold")
    text.append(f"{friendly_day(hit.created):<12}", style="dim")
    for piece, matched in hit.segments():
        piece = terminal_safe(piece)
        # Runs of spaces and line breaks become one space, but the spaces around a match stay
        # ("My manager said", not "Mymanagersaid").
        text.append(re.sub(r"\s+", " ", piece) if not matched else piece,
                    style="bold reverse" if matched else "")
    return text


class NoteScreen(DiscardGuard, ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, body: str = "", editable: bool = True,
                 save: Callable[[str], object] | None = None, heading: str = "Note") -> None:
        super().__init__()
        self.heading = heading  # what a read-only entry is (a note, a mood)
        self.body = body if editable else terminal_safe(body)
        self.editable = editable
        self.save = save  # called before the dialog closes: if it fails, the text stays

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("A note for your journal" if self.editable else self.heading)
            yield TextArea(self.body, id="note", soft_wrap=True, read_only=not self.editable)
            yield Static("", id="problem", classes="error")
            with Horizontal(classes="buttons"):
                if self.editable:
                    yield Button("Save", id="save", variant="primary")
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()
        self.mark_clean()

    def form_values(self) -> tuple:
        return (self.query_one(TextArea).text,) if self.editable else ()

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#close")
    def _close_pressed(self) -> None:
        self.action_cancel()

    def action_save(self) -> None:
        if not self.editable:
            return
        text = self.query_one(TextArea).text
        try:
            check_typed(text, "This note")
        except TextProblem as exc:
            self.query_one("#problem", Static).update(Text(str(exc).removesuffix("; nothing was saved")
                                                           + ". Your text is still here."))
            return
        if not text.strip():
            self.dismiss(None)
            return
        if self.save is not None:
            try:
                self.save(text)
            except Exception as exc:  # a full disk, a journal replaced under us: keep the text
                self.query_one("#problem", Static).update(
                    Text(f"Could not save the note: {exc}. Your text is still here."))
                return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.close_guarded(lambda: self.dismiss(None))


class JournalScreen(Screen[str | None]):
    BINDINGS = [Binding("escape", "close", "Back"), Binding("ctrl+n", "new_note", "New note")]

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="timeline"):
            with TabPane("Timeline", id="timeline"):
                with Horizontal(classes="buttons"):
                    yield Button("New note", id="new-note", variant="primary")
                    yield Button("Back to chat", id="back")
                yield ListView(id="timeline-list")
            with TabPane("Search", id="search"):
                yield Input(placeholder="Search everything you have written: conversations, "
                            "notes, moods, thought records, steps",
                            id="search-box", select_on_focus=False)
                yield Static("", id="search-count", classes="hint")
                yield ListView(id="search-results")
            with TabPane("Mood", id="mood"):
                yield InsightsPanel()
            with TabPane("Thought records", id="records"):
                yield ListView(id="records-list")
        yield HavenFooter()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        service = self.app.service
        timeline = self.query_one("#timeline-list", ListView)
        timeline.clear()
        for e in service.timeline():
            timeline.append(EntryItem(e.kind, e.id, entry_text(e.kind, e.created, e.text), e.session_id))
        records = self.query_one("#records-list", ListView)
        records.clear()
        for t in service.thought_records():
            records.append(EntryItem("thought_record", t.id,
                                     entry_text("thought_record", t.created,
                                                t.situation or t.hot_thought or "Thought record")))
        self.query_one(InsightsPanel).show(service.insights())

    @on(Input.Changed, "#search-box")
    def _search_changed(self, event: Input.Changed) -> None:
        self.search(event.value)

    def search(self, query: str) -> None:
        results = self.query_one("#search-results", ListView)
        results.clear()
        hits = self.app.service.search(query)
        for hit in hits:
            results.append(EntryItem(hit.kind, hit.ref_id, hit_text(hit), hit.session_id))
        count = self.query_one("#search-count", Static)
        count.update(f"{len(hits)} found" if query.strip() else "")

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        item = event.item
        if not isinstance(item, EntryItem):
            return
        if item.kind in ("session", "message"):
            self.dismiss(item.session_id or item.ref_id)
        elif item.kind == "note":
            note = self.app.service.note(item.ref_id)
            if note:
                self.app.push_screen(NoteScreen(note.body, editable=False))
        elif item.kind == "mood":
            mood = next((m for m in self.app.service.moods() if m.id == item.ref_id), None)
            if mood:
                self.app.push_screen(NoteScreen(mood_text(mood), editable=False,
                                                heading="Mood"))
        elif item.kind == "thought_record":
            record = self.app.service.thought_record(item.ref_id)
            if record:
                self.app.push_screen(ThoughtRecordScreen(record), lambda _: self.reload())

    @on(Button.Pressed, "#new-note")
    def _new_note_pressed(self) -> None:
        self.action_new_note()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_close()

    def action_new_note(self) -> None:
        def saved(body: str | None) -> None:
            if body:
                self.notify("Note saved.")
                self.reload()

        self.app.push_screen(NoteScreen(save=self.app.service.add_note), saved)

    def action_close(self) -> None:
        self.dismiss(None)
