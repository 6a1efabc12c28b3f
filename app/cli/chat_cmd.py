"""``haven chat``: a plain line-mode conversation, for scripts and screen readers."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from app.cli.common import CliError, Context, open_journal
from app.conversation.companion import Companion, MessageTooLong
from app.conversation.events import CheckIn, Crisis, NoModel, ReplyDone, ReplyReplaced, Token
from app.llm import EngineState
from app.runtime import NoModelSelected, quiet_terminal, selected_model_spec, start_engine
from app.safety.resources import format_resources

HELP = "Type a message and press Enter. /new starts a new session, /quit leaves. " \
       "Ctrl-C stops a reply."


def register(sub) -> None:
    p = sub.add_parser("chat", help="a plain line-mode conversation (scripts, screen readers)",
                       description="Talk with Haven line by line. Reads messages from stdin "
                       "when it is not a terminal. " + HELP)
    p.add_argument("--model", type=Path, help="a GGUF file to use instead of the selected model")
    p.add_argument("--chat-format", help="chat format for --model if it has no template")
    p.set_defaults(func=cmd_chat)


def _say(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def _show_event(event) -> None:
    if isinstance(event, (Crisis, CheckIn)):
        _say("\n" + event.text)
        _say(format_resources(event.resources))
    elif isinstance(event, NoModel):
        _say(event.text)
    elif isinstance(event, Token):
        _say(event.text, end="")
    elif isinstance(event, ReplyReplaced):
        _say("\n[The reply was withheld by Haven's safety check.]\n" + event.text)
        _say(format_resources(event.resources))
    elif isinstance(event, ReplyDone):
        if event.status == "cancelled":
            _say(" [stopped]")
        elif event.status == "error":
            _say(f"\n[The model stopped: {event.error}]")
        elif event.status == "crashed":
            _say(f"\n{event.error}")
        else:
            _say("")


def cmd_chat(args: argparse.Namespace) -> int:
    ctx = Context()
    quiet_terminal(ctx.paths)
    interactive = sys.stdin.isatty()
    try:
        spec = selected_model_spec(ctx.paths, ctx.settings, args.model, args.chat_format)
    except NoModelSelected as exc:
        raise CliError(str(exc)) from exc
    if args.model is not None and not args.model.is_file():
        raise CliError(f"no such model file: {args.model}")
    journal = open_journal(ctx)
    engine = start_engine(spec)
    companion = Companion(journal=journal, engine=engine, settings=ctx.settings)
    try:
        opening = companion.start_session()
        if interactive:
            _say(f"Haven — {HELP}")
            _say("Haven is a self-help tool, not a therapist. In an emergency, call your local "
                 "emergency number.")
            _say(f"(loading {spec.name} in the background…)")
        _say(opening.text)
        for line in _lines(interactive):
            text = line.rstrip("\n")
            command = text.strip().lower()
            if command in ("/quit", "/exit"):
                break
            if command == "/help":
                _say(HELP)
                continue
            if command == "/new":
                companion.end_session()
                _say(companion.start_session().text)
                continue
            if not text.strip():
                continue
            _wait_for_model(engine, interactive)
            _converse(companion, text)
        return 0
    finally:
        companion.end_session()
        engine.close()
        journal.close()


def _lines(interactive: bool):
    if not interactive:
        yield from sys.stdin
        return
    while True:
        try:
            yield input("\nyou> ")
        except EOFError:
            _say("")
            return
        except KeyboardInterrupt:
            _say("\n(type /quit to leave)")


def _wait_for_model(engine, interactive: bool) -> None:
    if engine.state is EngineState.LOADING:
        if interactive:
            _say("(waiting for the model to finish loading…)")
        while engine.state is EngineState.LOADING:
            time.sleep(0.05)


def _converse(companion: Companion, text: str) -> None:
    previous = signal.signal(signal.SIGINT, lambda *_: companion.cancel())
    try:
        _say("haven> ", end="")
        for event in companion.send(text):
            _show_event(event)
    except MessageTooLong as exc:
        _say(f"[{exc}]")
    finally:
        signal.signal(signal.SIGINT, previous)
