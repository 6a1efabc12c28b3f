"""``haven mood``, ``haven journal`` and ``haven passwd``: the journal from a script."""

from __future__ import annotations

import argparse
import json
import sys

from app.cli.common import CliError, Context, ask_new_passphrase, ask_passphrase, local_time, open_journal
from app.conversation.timeline import timeline
from app.store.lock import JournalLock
from app.store.records import EmotionRating, SearchHit, parse_emotion
from app.store.rekey import change_passphrase
from app.text import MAX_TEXT_CHARS, TextProblem, check_typed, one_line, terminal_safe


def register(sub) -> None:
    mood = sub.add_parser("mood", help="log and list mood ratings")
    msub = mood.add_subparsers(dest="mood_command", metavar="ACTION", required=True)
    p = msub.add_parser("add", help="log a mood from 0 (very low) to 10 (very good)")
    p.add_argument("score", help="0 to 10")
    p.add_argument("--emotion", action="append", default=[], metavar="NAME=INTENSITY",
                   help="a named emotion with intensity 0-100 (repeatable), e.g. anxious=60")
    p.add_argument("--note", help="a short note; `--note -` reads it from stdin (safer: an "
                   "argument can be seen by other users of this computer, e.g. in `ps`)")
    p.set_defaults(func=cmd_mood_add)
    p = msub.add_parser("list", help="list mood entries, oldest first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_mood_list)

    journal = sub.add_parser("journal", help="notes, the journal list and full-text search")
    jsub = journal.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    p = jsub.add_parser(
        "note", help="write a free journal note",
        description="Write a free journal note. Leave TEXT out (or give -) to type the note "
        "here, or pipe it in: `haven journal note < today.txt`. That is the safer way: text "
        "given as an argument can be seen by other users of this computer (in `ps`) and may "
        "stay in your shell's history. Haven opens no editor, because editors keep plain-text "
        "copies of what you write on disk.")
    p.add_argument("text", nargs="?", default="-",
                   help="the note (default: read it from stdin, which is safer)")
    p.set_defaults(func=cmd_note)
    p = jsub.add_parser("list", help="sessions, notes and thought records, newest first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_journal_list)
    p = jsub.add_parser("search", help="search everything you have written")
    p.add_argument("query")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("passwd", help="change the journal passphrase",
                       description="Asks for the current passphrase once and the new one twice "
                       "(or reads HAVEN_PASSPHRASE and HAVEN_NEW_PASSPHRASE).")
    p.set_defaults(func=cmd_passwd)


def _score(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise CliError(f"mood score must be a whole number from 0 to 10, not {text!r}") from exc
    if not 0 <= value <= 10:
        raise CliError(f"mood score must be from 0 to 10, not {value}")
    return value


def _emotion(spec: str) -> EmotionRating:
    try:
        return parse_emotion(spec, default=None)
    except ValueError as exc:
        raise CliError(f"--emotion: {exc}") from exc


def read_text(what: str) -> str:
    """Text from stdin (typed, or piped in): checked before anything is opened or written."""
    if sys.stdin.isatty():
        print(f"Write {what}; press Ctrl-D on an empty line to save it (Ctrl-C to cancel).",
              file=sys.stderr)
    data = sys.stdin.buffer.read(MAX_TEXT_CHARS * 4 + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{what} is not valid UTF-8 text (check the file's encoding); "
                       "nothing was saved") from exc
    return text.removesuffix("\n")


def _typed(text: str, what: str) -> str:
    try:
        return check_typed(text, what)
    except TextProblem as exc:
        raise CliError(str(exc)) from exc


def cmd_mood_add(args: argparse.Namespace) -> int:
    score = _score(args.score)
    emotions = [_emotion(e) for e in args.emotion]
    if args.note == "-":
        args.note = read_text("the note")
    if args.note is not None:
        _typed(args.note, "the note")
    if args.note is not None and not args.note.strip():
        raise CliError("the note is empty; leave out --note or write something")
    ctx = Context()
    with open_journal(ctx) as journal:
        entry = journal.add_mood(score, emotions, args.note)
    print(f"Logged mood {entry.score}/10.")
    _help_if_risky(ctx, args.note, emotions)
    return 0


def _help_if_risky(ctx: Context, note: str | None, emotions: list[EmotionRating]) -> None:
    """What is written with a mood goes through the risk check too; a crisis gets the
    crisis services at once (on stderr, so scripts reading stdout are unchanged)."""
    from app.conversation.companion import mood_words_help
    from app.safety.resources import format_resources, resources_for

    level, line = mood_words_help(emotions, note, sos="haven sos")
    if line is not None:
        print(line, file=sys.stderr)
    if level == "crisis":
        print(format_resources(resources_for(ctx.settings.country)), file=sys.stderr)


def cmd_mood_list(args: argparse.Namespace) -> int:
    ctx = Context()
    with open_journal(ctx, create=False) as journal:
        entries = journal.moods()
    if args.json:
        print(json.dumps([e.model_dump(mode="json") for e in entries], indent=2, ensure_ascii=False))
        return 0
    if not entries:
        print("No mood entries yet. Add one with: haven mood add SCORE")
    for e in entries:
        emotions = ", ".join(f"{x.name} {x.intensity}" for x in e.emotions)
        note = f" — {' '.join(terminal_safe(e.note).split())}" if e.note else ""
        print(terminal_safe(f"{local_time(e.created)}  {e.score:>2}/10  {emotions}{note}"))
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    text = read_text("your note") if args.text == "-" else args.text
    _typed(text, "the note")
    if not text.strip():
        raise CliError("the note is empty")
    args.text = text
    ctx = Context()
    with open_journal(ctx) as journal:
        journal.add_note(args.text)
    print("Note saved.")
    return 0


def cmd_journal_list(args: argparse.Namespace) -> int:
    ctx = Context()
    with open_journal(ctx, create=False) as journal:
        entries = timeline(journal)
    items = [{"kind": e.kind, "id": e.id, "created": e.created, "text": e.text,
              **({"summary": e.summary} if e.kind == "session" else {})} for e in entries]
    if args.json:
        print(json.dumps([{**i, "created": i["created"].isoformat()} for i in items], indent=2,
                         ensure_ascii=False))
        return 0
    if not items:
        print("Your journal is empty.")
    for i in items:
        first = one_line(i["text"], 60)
        print(f"{local_time(i['created'])}  {i['kind'].replace('_', ' '):<14} {first}")
    return 0


def _hit_json(hit: SearchHit) -> dict:
    data = hit.model_dump(mode="json")
    data["snippet"] = hit.snippet_with("**", "**")
    return data


def cmd_search(args: argparse.Namespace) -> int:
    _typed(args.query, "the search")
    if not args.query.strip():
        raise CliError("the search is empty")
    ctx = Context()
    with open_journal(ctx, create=False) as journal:
        hits = journal.search(args.query)
    if args.json:
        print(json.dumps([_hit_json(h) for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("Nothing found.")
    for h in hits:
        snippet = " ".join(terminal_safe(h.snippet_with("**", "**")).split())
        print(f"{local_time(h.created)}  {h.kind.replace('_', ' '):<14} {snippet}")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    ctx = Context()
    path = ctx.paths.journal
    if not path.exists():
        raise CliError(f"there is no journal yet at {path}")
    # Refuse before asking anything if the app or another command has the journal open.
    with JournalLock.exclusive_now(path) as held:
        current = ask_passphrase("Current passphrase: ")
        new = ask_new_passphrase(env="HAVEN_NEW_PASSPHRASE")
        change_passphrase(path, current, new, held=held)
    print("Passphrase changed. Use the new one from now on.")
    return 0
