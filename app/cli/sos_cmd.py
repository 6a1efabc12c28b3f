"""``haven sos``: help right now, on the command line, with no passphrase and no model.

Prints the crisis services for your country and a short grounding exercise at once. Your
safety plan follows when the journal can be opened: with HAVEN_PASSPHRASE, or by typing the
passphrase when asked in a terminal (never required: Enter skips it).
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys

from app.paths import DataPaths
from app.safety.resources import all_services_for, format_resources
from app.safety.safety_plan import plan_plain


def register(sub) -> None:
    p = sub.add_parser(
        "sos", help="help right now: crisis services, a grounding exercise, your safety plan",
        description="Print the crisis services for your country and a short grounding "
        "exercise; no passphrase needed. Your safety plan is added when HAVEN_PASSPHRASE is "
        "set, or when you type your passphrase at the prompt (Enter skips it).")
    p.add_argument("--country", help="show the services for this country code (e.g. GB, US)")
    p.add_argument("--no-plan", action="store_true", help="do not ask for the safety plan")
    p.set_defaults(func=cmd_sos)


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def grounding_text() -> str:
    from app.conversation.prompts import prompt_library

    text = prompt_library().render("safety/grounding.md")
    text = re.sub(r"^#+ *", "", text, flags=re.M).replace("**", "")
    return "\n".join("  • " + line[2:] if line.startswith("- ") else line
                     for line in text.splitlines())


def print_sos(country: str | None, plan=None, with_grounding: bool = True) -> None:
    _say("SOS — help right now")
    _say("")
    _say(format_resources(all_services_for(country)))
    if plan is not None and plan_plain(plan):
        _say("")
        _say(plan_plain(plan))
    if with_grounding:
        _say("")
        _say(grounding_text())


def _country(args) -> str | None:
    if args.country:
        return args.country
    try:
        from app.settings import load_settings

        return load_settings(DataPaths.discover()).country
    except Exception:  # a damaged settings file must never stand between a person and help
        return None


def _plan(paths: DataPaths):
    """The safety plan, if the journal opens; None (with a short note) otherwise."""
    from app.store import Journal
    from app.store.errors import JournalError, WrongPassphrase

    if not Journal.exists(paths.journal):
        return None
    passphrase = os.environ.get("HAVEN_PASSPHRASE")
    if passphrase is None:
        if not sys.stdin.isatty():
            return None
        try:
            passphrase = getpass.getpass(
                "\nTo see your safety plan too, type your journal passphrase "
                "(or just press Enter to skip): ")
        except (EOFError, KeyboardInterrupt):
            return None
        if not passphrase:
            return None
    try:
        with Journal.open(paths.journal, passphrase) as journal:
            plan = journal.safety_plan()
            return plan if plan is not None and not plan.is_empty else False
    except WrongPassphrase:
        _say("(That passphrase does not open your journal, so your safety plan is not shown.)")
    except JournalError as exc:
        _say(f"(Your safety plan could not be read: {exc}.)")
    return None


def cmd_sos(args: argparse.Namespace) -> int:
    # Help first, before anything that could fail or wait: no logging set-up, no journal.
    country = _country(args)
    print_sos(country, with_grounding=True)
    if args.no_plan:
        return 0
    try:
        paths = DataPaths.discover()
    except Exception:
        return 0
    plan = _plan(paths)
    if plan:
        text = plan_plain(plan)
        if text:
            _say("")
            _say(text)
    elif plan is False:
        _say("")
        _say("You have not written a safety plan yet. In the app, press Ctrl+O and choose "
             "“Write my safety plan”.")
    return 0
