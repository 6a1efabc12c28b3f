"""``haven chat``: a plain line-mode conversation, for scripts and screen readers.

It runs with or without a model: every message is saved and passes the same risk check
as in the app, and crisis help is shown either way; without a model Haven says it cannot
reply. Haven's direct safety questions are answered by typing yes, no or not sure (or in
your own words); /sos prints the crisis services, your safety plan and a grounding
exercise.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from app.cli.common import CliError, Context, open_journal
from app.conversation.companion import MessageTooLong
from app.conversation.events import (
    CheckIn,
    Crisis,
    FollowUp,
    NoModel,
    ReplyDone,
    ReplyReplaced,
    ScreenerOver,
    ScreenerQuestion,
    Token,
)
from app.conversation.service import HavenService, prepare_risk_check_early
from app.llm import EngineState
from app.runtime import NoModelSelected, quiet_terminal, selected_model_spec, start_engine
from app.safety.resources import format_resources
from app.safety.safety_plan import plan_plain
from app.text import terminal_safe

HELP = "Type a message and press Enter. /new starts a new session, /sos shows help right " \
       "now, /quit leaves. Ctrl-C stops a reply."


def register(sub) -> None:
    p = sub.add_parser("chat", help="a plain line-mode conversation (scripts, screen readers)",
                       description="Talk with Haven line by line. Reads messages from stdin "
                       "when it is not a terminal. " + HELP)
    p.add_argument("--model", type=Path, help="a GGUF file to use instead of the selected model")
    p.add_argument("--chat-format", help="chat format for --model if it has no template")
    p.set_defaults(func=cmd_chat)


def _say(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(terminal_safe(text) + end)  # stored and model text: no control sequences
    sys.stdout.flush()


def _plain(markdown: str) -> str:
    """Haven's own Markdown texts, readable as plain lines."""
    out = []
    for line in markdown.splitlines():
        line = line.replace("**", "")
        out.append("  • " + line[2:] if line.startswith("- ") else line)
    return "\n".join(out)


def _show_event(event) -> None:
    if isinstance(event, (Crisis, FollowUp)):
        # the numbers first, then the person's own safety plan, then Haven's words
        _say("\n" + format_resources(event.resources, event.kind))
        if event.plan is not None:
            _say("\n" + plan_plain(event.plan))
        _say("\n" + _plain(event.words))
    elif isinstance(event, CheckIn):
        _say("\n" + _plain(event.text))
    elif isinstance(event, ScreenerQuestion):
        _say("\n" + event.text)
        _say("(answer yes, no or not sure, or in your own words)")
    elif isinstance(event, ScreenerOver):
        _say("\n" + _plain(event.text))
    elif isinstance(event, NoModel):
        _say(event.text)
    elif isinstance(event, Token):
        _say(event.text, end="")
    elif isinstance(event, ReplyReplaced):
        _say("\n[The reply was withheld by Haven's safety check.]\n" + _plain(event.text))
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
    if args.model is not None and not args.model.is_file():
        raise CliError(f"no such model file: {args.model}")
    try:
        spec = selected_model_spec(ctx.paths, ctx.settings, args.model, args.chat_format)
    except NoModelSelected as exc:
        spec, no_model = None, str(exc)
    prepare_risk_check_early()  # while the passphrase is typed
    journal = open_journal(ctx)
    # the same service as the app: it owns the journal, the engine and the session
    service = HavenService(ctx.paths, ctx.settings, journal,
                           engine_factory=lambda _: start_engine(spec) if spec is not None else None)
    try:
        opening = service.new_session()
        if interactive:
            _say(f"Haven — {HELP}")
            _say("Haven is a self-help tool, not a therapist. In an emergency, call your local "
                 "emergency number. /sos shows crisis services for your country.")
            if spec is not None:
                _say(f"(loading {spec.name} in the background…)")
        if spec is None:
            # still a safe place to write: saved, risk-checked, crisis help shown
            _say(f"(The model is not available, so Haven cannot reply: {no_model}. Your "
                 "messages are still saved and checked, and help is shown if you need it.)")
        _say(opening.text)
        for line in _lines(interactive):
            text = line.rstrip("\n")
            command = text.strip().lower()
            if command in ("/quit", "/exit"):
                break
            if command == "/help":
                _say(HELP)
                continue
            if command == "/sos":
                from app.cli.sos_cmd import print_sos

                print_sos(ctx.settings.country, service.safety_plan())
                continue
            if command == "/new":
                _say(service.new_session().text)
                continue
            if not text.strip():
                continue
            _wait_for_model(service.engine, interactive)
            _converse(service, text)
        return 0
    finally:
        service.shutdown()  # ends the session, closes the model, then the journal


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
    if engine is not None and engine.state is EngineState.LOADING:
        if interactive:
            _say("(waiting for the model to finish loading…)")
        while engine.state is EngineState.LOADING:
            time.sleep(0.05)


def _converse(service: HavenService, text: str) -> None:
    previous = signal.signal(signal.SIGINT, lambda *_: service.cancel())
    try:
        _say("haven> ", end="")
        for event in service.send(text):
            _show_event(event)
    except MessageTooLong as exc:
        _say(f"[{exc}]")
    finally:
        signal.signal(signal.SIGINT, previous)
