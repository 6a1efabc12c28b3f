"""Haven's keys, declared once: the footers' bindings, the command palette's entries and
the help screen's table are all drawn from these rows, so they cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    keys: str  # Textual key names, comma-separated: the first is the one shown
    action: str  # the action it runs (on the screen that binds it, or "app.…")
    label: str  # in the footer
    help: str  # what it does (help screen; the palette's description)
    title: str | None = None  # in the command palette (None: not there)
    show: bool = True  # in the footer
    priority: bool = False
    where: str = ""  # where it works, when not everywhere (help screen)

    @property
    def shown(self) -> str:
        """How the key is written for people: Ctrl+N, F2, Esc, Delete."""
        return " or ".join(display(k) for k in self.keys.split(","))

    @property
    def first(self) -> str:
        return display(self.keys.split(",")[0])

    def binding(self, action: str | None = None) -> Binding:
        return Binding(self.keys, action or self.action, self.label, show=self.show,
                       priority=self.priority)


def display(key: str) -> str:
    names = {"escape": "Esc", "delete": "Delete", "enter": "Enter"}
    if key in names:
        return names[key]
    return "+".join(part.capitalize() if len(part) > 1 and not part.startswith("f") else part.upper()
                    for part in key.split("+"))


# Keys that work on every screen (the app binds them).
SOS = Key("ctrl+o,f12", "sos", "SOS", "**SOS**: crisis services, your safety plan, a grounding "
          "exercise (on every screen)", title="SOS", priority=True)
HELP = Key("f1", "help", "Help", "keys, and what Haven is and is not", title="Help")
QUIT = Key("ctrl+q", "quit", "Quit", "quit", priority=True)
PALETTE = Key("ctrl+p", "command_palette", "Commands", "every action, by name (also: Safety plan)",
              show=False, priority=True)  # the footer shows it at its right (not at 80 columns)

# The chat screen's keys, in footer order. Chosen not to clash with the message box's own
# (Ctrl+E/K/D, F5-F7 edit text).
# Not in the footer: while Haven replies, the line under the conversation says "Esc to stop"
# (where the person is looking), and the footer keeps its room for keys that always work.
STOP = Key("escape", "stop_reply", "Stop reply", "stop Haven's reply", title="Stop reply",
           show=False)
NEW = Key("ctrl+n", "new_session", "New", "new session", title="New session")
MOOD = Key("f2", "check_in", "Mood", "mood check-in", title="Mood check-in")
THOUGHT_RECORD = Key("ctrl+t", "thought_record", "Thoughts", "thought record",
                     title="Thought record")
END = Key("ctrl+g", "end_session", "End",
          "end the session (summary, a step for next time, closing mood)", title="End session")
JOURNAL = Key("f3", "journal", "Journal",
              "journal: sessions, notes, thought records, search, mood chart", title="Journal")
MODELS = Key("f4", "models", "Models", "models: download, import, switch", title="Models")
RENAME = Key("ctrl+r", "rename_session", "Rename", "rename the session", title="Rename session",
             show=False)
SETTINGS = Key("f8", "settings", "Settings",
               "settings (country for crisis resources, generation, theme)", title="Settings",
               show=False)
EXPORT = Key("f9", "export", "Export", "export an encrypted copy of your journal", title="Export",
             show=False)
SIDEBAR = Key("ctrl+b", "toggle_sidebar", "Sessions", "show or hide the sessions sidebar",
              title="Show or hide sessions", show=False)
DELETE = Key("delete", "request_delete", "Delete session",
             "delete the highlighted session", title="Delete session",
             where="in the sidebar; asks first")

CHAT = [STOP, NEW, MOOD, THOUGHT_RECORD, END, JOURNAL, MODELS, RENAME, SETTINGS, EXPORT, SIDEBAR]

# Keys of the message box (bound by the text area itself); listed for the help screen.
SEND = Key("enter", "send", "Send", "send your message (Ctrl+J adds a new line)")


def chat_bindings() -> list[Binding]:
    # SOS first so it is visible in the footer at 80 columns (the app's binding acts)
    return [Binding("ctrl+o", "app.sos", "SOS")] + [k.binding() for k in CHAT]


def palette_help(key: Key) -> str:
    where = f", {key.where}" if key.where else ""
    return f"{key.help[:1].upper()}{key.help[1:]} ({key.first}{where})"


def help_table() -> str:
    rows = [SOS, SEND, STOP, NEW, MOOD, THOUGHT_RECORD, END, RENAME, DELETE, SIDEBAR, JOURNAL,
            MODELS, SETTINGS, EXPORT, PALETTE, QUIT]
    lines = ["# Keys", "", "| Key | What it does |", "|---|---|"]
    for key in rows:
        where = f" ({key.where})" if key.where else ""
        lines.append(f"| {key.shown} | {key.help}{where} |")
    return "\n".join(lines) + "\n"
