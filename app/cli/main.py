"""``haven``: the app, and a command line for everything a user might script."""

from __future__ import annotations

import argparse
import os
import sys

from app import __version__
from app.cli import (
    bench_cmd,
    chat_cmd,
    data_cmd,
    desktop_cmd,
    doctor_cmd,
    export_cmd,
    insights_cmd,
    models_cmd,
    sos_cmd,
)
from app.cli.common import CliError
from app.fileio import disk_full
from app.text import terminal_safe


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="haven",
        description=(
            "Haven: a private CBT self-help companion that runs on this computer. "
            "Run `haven` alone to open the app. Not a therapist, not for emergencies."
        ),
        epilog="Data lives in HAVEN_HOME (or your user data folder). "
               "HAVEN_PASSPHRASE supplies the journal passphrase for scripts.",
    )
    parser.add_argument("--version", action="version", version=f"haven {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    app_parser = sub.add_parser("app", help="open the app (the default)")
    app_parser.set_defaults(func=run_app)
    models_cmd.register(sub)
    data_cmd.register(sub)
    chat_cmd.register(sub)
    sos_cmd.register(sub)
    export_cmd.register(sub)
    bench_cmd.register(sub)
    doctor_cmd.register(sub)
    insights_cmd.register(sub)
    desktop_cmd.register(sub)
    return parser


def run_app(args: argparse.Namespace) -> int:
    from app.tui.run import run_tui

    return run_tui()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None) or run_app
    try:
        code = int(func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not as noise at exit
        return code
    except CliError as exc:
        print(f"haven: {terminal_safe(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _drop_stdout()
        print("haven: the output was closed before everything was printed (by `head`, say); "
              "nothing was changed", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nhaven: stopped.", file=sys.stderr)
        return 130
    except Exception as exc:  # a known error type of ours: one line, never a traceback
        message = _known_error(exc)
        if message is None:
            raise
        print(f"haven: {terminal_safe(message)}", file=sys.stderr)
        return 2


def _drop_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _known_error(exc: Exception) -> str | None:
    from app.conversation.prompts import PromptError
    from app.modelhub.catalog import CatalogError
    from app.modelhub.registry import RegistryError
    from app.safety.rules import RulesError
    from app.settings import SettingsError
    from app.store.errors import JournalError
    from app.text import TextProblem

    known = (JournalError, SettingsError, RegistryError, CatalogError, PromptError, RulesError,
             TextProblem)
    if isinstance(exc, known):
        return str(exc)
    if isinstance(exc, UnicodeError):
        return ("the text is not valid UTF-8 (check your terminal's or file's encoding); "
                "that text was not saved")
    if disk_full(exc):
        return "the disk is full; nothing was written — free some space and try again"
    if type(exc).__name__ == "OperationalError" and "full" in str(exc):
        return "the disk is full; the journal was not changed — free some space and try again"
    return None


if __name__ == "__main__":
    raise SystemExit(main())
