"""The thought-record form: every column, thinking traps with definitions, a model draft.

A draft from the model only fills the form; nothing is saved until the person presses
Save. A field that does not parse is pointed out and nothing typed is lost.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import (
    Button,
    Header,
    Input,
    Label,
    RadioButton,
    RadioSet,
    SelectionList,
    Static,
    TextArea,
)
from textual.widgets.selection_list import Selection

from app.cbt import Distortion
from app.store.records import AutomaticThought, ThoughtRecord, parse_emotions
from app.text import check_typed, one_line, terminal_safe
from app.tui.screens.dialogs import DiscardGuard
from app.tui.widgets.footer import HavenFooter

THOUGHT_SLOTS = 3
HOT_LABEL_CHARS = 64  # fits beside the radio mark in a form at 80 columns


def ratings_text(ratings) -> str:
    return ", ".join(f"{r.name} {r.intensity}" for r in ratings)


def hot_label(n: int, thought: str) -> Content:
    """The hot-thought choice shows the thought itself (plain text, never markup)."""
    text = one_line(thought, HOT_LABEL_CHARS)
    if text and len(one_line(thought)) > HOT_LABEL_CHARS:
        text = text[:-1] + "…"
    return Content(text or f"thought {n} (not written yet)")


class ThoughtRecordScreen(DiscardGuard, Screen):
    BINDINGS = [Binding("escape", "close", "Close"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, record: ThoughtRecord | None = None) -> None:
        super().__init__()
        self.record = record

    def compose(self) -> ComposeResult:
        traps = self.app.prompts.traps
        yield Header()
        with VerticalScroll():
            yield Static("A thought record helps you slow down a difficult moment and look at it "
                         "from more than one side. Fill in what helps; leave the rest.",
                         classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Draft from this conversation", id="draft")
                yield Button("Save", id="save", variant="primary")
                yield Button("Close", id="close")
            yield Static("", id="problem", classes="error")
            yield Label("1. Situation — what happened, where, when?")
            yield TextArea(id="situation", soft_wrap=True)
            yield Label("2. Moods — what did you feel, how strongly (0-100)?")
            yield Input(placeholder="e.g. anxious 70, sad 40", id="moods", select_on_focus=False)
            yield Label("3. Automatic thoughts — what went through your mind?")
            for n in range(1, THOUGHT_SLOTS + 1):
                yield Input(placeholder=f"thought {n}", id=f"thought-{n}", select_on_focus=False)
            yield Static("Which thought carries the most feeling (the hot thought)?", classes="hint")
            with RadioSet(id="hot"):
                for n in range(1, THOUGHT_SLOTS + 1):
                    yield RadioButton(hot_label(n, ""), id=f"hot-{n}")
            yield Static("How much do you believe the hot thought (0-100)?", classes="hint")
            yield Input(placeholder="belief 0-100", id="hot_belief", select_on_focus=False)
            yield Label("4. Evidence that supports the hot thought")
            yield TextArea(id="evidence_for", soft_wrap=True)
            yield Label("5. Evidence that does not fully fit it")
            yield TextArea(id="evidence_against", soft_wrap=True)
            yield Label("6. A more balanced thought, and how much you believe it (0-100)")
            yield TextArea(id="balanced", soft_wrap=True)
            yield Input(placeholder="belief 0-100", id="belief", select_on_focus=False)
            yield Label("7. Moods now — re-rate them")
            yield Input(placeholder="e.g. anxious 40, sad 30", id="moods_after", select_on_focus=False)
            yield Label("Thinking traps that might fit (space to tick)")
            yield SelectionList[str](*[
                Selection(f"{traps[d].name} — {traps[d].definition}", d.value) for d in Distortion
            ], id="traps")
        yield HavenFooter()

    def on_mount(self) -> None:
        if self.record is not None:
            self.fill(self.record)
        self.query_one("#situation", TextArea).focus()
        self.mark_clean()

    def on_input_changed(self, event: Input.Changed) -> None:
        field_id = event.input.id or ""
        if field_id.startswith("thought-"):
            n = int(field_id.split("-")[1])
            self.query_one(f"#hot-{n}", RadioButton).label = hot_label(n, event.value)

    def form_values(self) -> tuple:
        texts = tuple(self.query_one(f"#{i}", TextArea).text
                      for i in ("situation", "evidence_for", "evidence_against", "balanced"))
        inputs = tuple(self.query_one(f"#{i}", Input).value for i in
                       ("moods", "hot_belief", "belief", "moods_after",
                        *(f"thought-{n}" for n in range(1, THOUGHT_SLOTS + 1))))
        traps = tuple(sorted(self.query_one("#traps", SelectionList).selected))
        return texts + inputs + (traps,)

    def fill(self, record: ThoughtRecord) -> None:
        """Put a record (stored, or a model's draft) in the form, shown safely."""
        self.record = record
        self.query_one("#situation", TextArea).text = terminal_safe(record.situation)
        self.query_one("#moods", Input).value = ratings_text(record.moods)
        for n in range(1, THOUGHT_SLOTS + 1):
            thought = record.automatic_thoughts[n - 1] if n <= len(record.automatic_thoughts) else None
            self.query_one(f"#thought-{n}", Input).value = one_line(thought.text) if thought else ""
            self.query_one(f"#hot-{n}", RadioButton).value = bool(thought and thought.hot)
        hot_belief = next((t.belief for t in record.automatic_thoughts if t.hot), None)
        self.query_one("#hot_belief", Input).value = "" if hot_belief is None else str(hot_belief)
        self.query_one("#evidence_for", TextArea).text = terminal_safe(record.evidence_for)
        self.query_one("#evidence_against", TextArea).text = terminal_safe(record.evidence_against)
        self.query_one("#balanced", TextArea).text = terminal_safe(record.balanced_thought)
        belief = record.balanced_belief
        self.query_one("#belief", Input).value = "" if belief is None else str(belief)
        self.query_one("#moods_after", Input).value = ratings_text(record.moods_after)
        traps = self.query_one("#traps", SelectionList)
        traps.deselect_all()
        for distortion in record.distortions:
            traps.select(distortion.value)

    def collect(self) -> ThoughtRecord:
        """Build the record from the form; raises ValueError naming the field at fault."""
        try:
            moods = parse_emotions(self.query_one("#moods", Input).value)
        except ValueError as exc:
            raise ValueError(f"Moods: {exc}") from exc
        try:
            moods_after = parse_emotions(self.query_one("#moods_after", Input).value)
        except ValueError as exc:
            raise ValueError(f"Moods now: {exc}") from exc
        hot_belief = self._belief("hot_belief", "Belief in the hot thought")
        belief = self._belief("belief", "Belief in the balanced thought")
        hot_index = next((n - 1 for n in range(1, THOUGHT_SLOTS + 1)
                          if self.query_one(f"#hot-{n}", RadioButton).value), -1)
        # a thought keeps a belief it was saved with (say, from an import) while its words stay
        earlier = {t.text: t.belief for t in (self.record.automatic_thoughts if self.record else [])}
        thoughts = []
        for n in range(1, THOUGHT_SLOTS + 1):
            text = self.query_one(f"#thought-{n}", Input).value.strip()
            if text:
                hot = hot_index == n - 1
                thoughts.append(AutomaticThought(
                    text=text, hot=hot, belief=hot_belief if hot else earlier.get(text)))
        if hot_belief is not None and not any(t.hot for t in thoughts):
            raise ValueError("Belief in the hot thought: first choose which thought is the hot one.")
        for field_id in ("situation", "evidence_for", "evidence_against", "balanced"):
            check_typed(self.query_one(f"#{field_id}", TextArea).text, "That field")
        session = self.app.service.session
        base = self.record or ThoughtRecord(session_id=session.id if session else None)
        return base.model_copy(update=dict(
            situation=self.query_one("#situation", TextArea).text.strip(),
            moods=moods,
            automatic_thoughts=thoughts,
            evidence_for=self.query_one("#evidence_for", TextArea).text.strip(),
            evidence_against=self.query_one("#evidence_against", TextArea).text.strip(),
            balanced_thought=self.query_one("#balanced", TextArea).text.strip(),
            balanced_belief=belief,
            moods_after=moods_after,
            distortions=[Distortion(v) for v in self.query_one("#traps", SelectionList).selected],
        ))

    def _belief(self, field_id: str, name: str) -> int | None:
        text = self.query_one(f"#{field_id}", Input).value.strip().removesuffix("%").strip()
        if not text:
            return None
        if not text.isdigit() or not 0 <= int(text) <= 100:
            raise ValueError(f"{name}: a number from 0 to 100, please.")
        return int(text)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#close")
    def _close_pressed(self) -> None:
        self.action_close()

    @on(Button.Pressed, "#draft")
    def _draft_pressed(self) -> None:
        self.draft()

    def action_save(self) -> None:
        problem = self.query_one("#problem", Static)
        try:
            record = self.collect()
        except ValueError as exc:
            problem.update(Text(str(exc)))
            return
        if not (record.situation or record.automatic_thoughts or record.balanced_thought):
            problem.update("Write at least the situation or a thought before saving.")
            return
        try:
            self.record = self.app.service.save_thought_record(record)
        except Exception as exc:  # a full disk, a replaced journal: the form keeps every word
            problem.update(Text(f"Could not save: {exc}. Everything you wrote is still here."))
            return
        problem.update("")
        self.mark_clean()
        self.notify("Thought record saved in your journal.")

    def action_close(self) -> None:
        self.close_guarded(lambda: self.dismiss(None))

    def draft(self) -> None:
        if not self.app.service.can_draft():
            self.notify("A draft needs the model, which is not ready. You can fill the form by hand.",
                        severity="warning")
            return
        self.query_one("#problem", Static).update("Drafting from the conversation… (you can keep typing)")
        self.query_one("#draft", Button).disabled = True
        self._draft()

    @work(thread=True, exclusive=True)
    def _draft(self) -> None:
        record = self.app.service.draft_thought_record()
        self.app.call_from_thread(self._drafted, record)

    def _drafted(self, record: ThoughtRecord) -> None:
        self.query_one("#draft", Button).disabled = False
        empty = not (record.situation or record.automatic_thoughts)
        typed = self._typed()
        wrote = (any(t.strip() for t in (*typed["texts"].values(), *typed["inputs"].values()))
                 or typed["thoughts"] is not None or bool(typed["traps"]))
        self.query_one("#problem", Static).update(
            "The draft came back empty; the form is yours to fill." if empty else
            "The draft filled the empty fields; what you wrote is unchanged. Nothing is saved "
            "until you press Save." if wrote else
            "Here is a draft. Check and edit it — nothing is saved until you press Save.")
        if not empty:
            if self.record is not None:
                record = record.model_copy(update={"id": self.record.id})
            self.fill(record)
            self._restore(typed)

    _TEXTS = ("situation", "evidence_for", "evidence_against", "balanced")
    _INPUTS = ("moods", "hot_belief", "belief", "moods_after")

    def _typed(self) -> dict:
        """What the person has written so far (the draft may arrive while they type)."""
        thoughts = [(self.query_one(f"#thought-{n}", Input).value,
                     self.query_one(f"#hot-{n}", RadioButton).value)
                    for n in range(1, THOUGHT_SLOTS + 1)]
        return {
            "texts": {i: self.query_one(f"#{i}", TextArea).text for i in self._TEXTS},
            "inputs": {i: self.query_one(f"#{i}", Input).value for i in self._INPUTS},
            "thoughts": thoughts if any(t.strip() for t, _ in thoughts) else None,
            "traps": list(self.query_one("#traps", SelectionList).selected),
        }

    def _restore(self, typed: dict) -> None:
        """A draft fills only what is still empty: nothing the person wrote is replaced
        (and how much they believe a thought is theirs to say; a draft never rates it)."""
        for field_id, text in typed["texts"].items():
            if text.strip():
                self.query_one(f"#{field_id}", TextArea).text = text
        for field_id, value in typed["inputs"].items():
            if value.strip():
                self.query_one(f"#{field_id}", Input).value = value
        if typed["thoughts"] is not None:
            for n, (text, hot) in enumerate(typed["thoughts"], start=1):
                self.query_one(f"#thought-{n}", Input).value = text
                self.query_one(f"#hot-{n}", RadioButton).value = hot
        if typed["traps"]:
            traps = self.query_one("#traps", SelectionList)
            traps.deselect_all()
            for value in typed["traps"]:
                traps.select(value)
