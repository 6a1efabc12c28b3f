"""``haven export``, ``haven decrypt`` and ``haven import``: encrypted, portable journals."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from app.cli.common import (
    CliError,
    Context,
    ask_new_passphrase,
    ask_passphrase,
    open_journal,
    parse_day_range,
)
from app.export import age_file
from app.export.document import NotAnExport, parse
from app.export.service import describe_counts, export_journal, import_document
from app.fileio import atomic_write
from app.paths import DataPaths

EXPORT_ENV = "HAVEN_EXPORT_PASSPHRASE"


def register(sub) -> None:
    p = sub.add_parser("export", help="export the journal as an encrypted age file",
                       description="Writes an age-encrypted file holding a readable Markdown "
                       "journal and a versioned JSON copy. Encrypted to a passphrase (asked "
                       f"twice, or {EXPORT_ENV}) or to recipients' age public keys.")
    p.add_argument("out", type=Path, help="the file to write (e.g. journal.age)")
    p.add_argument("--recipient", "-r", action="append", default=[], metavar="AGE_PUBLIC_KEY",
                   help="encrypt to this public key (age1…); repeatable")
    p.add_argument("--since", help="first day to include, YYYY-MM-DD")
    p.add_argument("--until", help="last day to include, YYYY-MM-DD")
    p.add_argument("--format", choices=("markdown", "json", "both"), default="both")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("decrypt", help="decrypt an export to read it (stdout by default)")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, help="write the plaintext here (careful: unencrypted)")
    p.add_argument("-i", "--identity", type=Path, help="age identity file, for recipient exports")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(func=cmd_decrypt)

    p = sub.add_parser("import", help="merge an export into this journal (no duplicates)")
    p.add_argument("input", type=Path)
    p.add_argument("-i", "--identity", type=Path, help="age identity file, for recipient exports")
    p.set_defaults(func=cmd_import)


def check_target(path: Path, force: bool) -> None:
    """Never Haven's own files (whatever --force says); an existing file only with --force."""
    data = DataPaths.discover()
    if data.holds(path):
        raise CliError(f"{path} is inside Haven's data folder ({data.root}), where Haven's own "
                       "files live; choose a place outside it — nothing was written")
    if (path.exists() or path.is_symlink()) and not force:
        raise CliError(f"{path} already exists; choose another name or add --force")
    if path.is_dir():
        raise CliError(f"{path} is a folder; give a file name")


def cmd_export(args: argparse.Namespace) -> int:
    since, until = parse_day_range(args.since, args.until)
    check_target(args.out, args.force)
    try:
        recipients = age_file.parse_recipients(args.recipient)
    except age_file.AgeError as exc:
        raise CliError(str(exc)) from exc
    passphrase = None if recipients else ask_new_passphrase(env=EXPORT_ENV, what="export passphrase")
    ctx = Context()
    started = time.perf_counter()
    with open_journal(ctx, create=False) as journal:
        try:
            result = export_journal(journal, args.out, passphrase=passphrase,
                                    recipients=args.recipient, since=since, until=until,
                                    fmt=args.format)
        except age_file.AgeError as exc:
            raise CliError(str(exc)) from exc
    counts = describe_counts(result.counts)
    print(f"Exported {counts} to {result.path} ({result.size / 1024:.0f} KB, encrypted) "
          f"in {time.perf_counter() - started:.1f}s.")
    return 0


def _decrypt(args: argparse.Namespace) -> bytes:
    try:
        data = args.input.read_bytes()
    except FileNotFoundError as exc:
        raise CliError(f"no such file: {args.input}") from exc
    except OSError as exc:
        raise CliError(f"cannot read {args.input}: {exc.strerror}") from exc
    try:
        if args.identity:
            return age_file.decrypt(data, identities=age_file.read_identities(args.identity))
        if not age_file.needs_passphrase(data):
            raise CliError(f"{args.input} is encrypted to a public key; give its identity with -i FILE")
        passphrase = os.environ.get(EXPORT_ENV)
        if passphrase is None:
            passphrase = ask_passphrase("Export passphrase: ", env=EXPORT_ENV)
        return age_file.decrypt(data, passphrase=passphrase)
    except age_file.AgeError as exc:
        raise CliError(f"{args.input}: {exc}") from exc


def cmd_decrypt(args: argparse.Namespace) -> int:
    if args.output:
        check_target(args.output, args.force)
    plaintext = _decrypt(args)
    if args.output:
        try:
            atomic_write(args.output, plaintext)
        except OSError as exc:
            raise CliError(f"could not write {args.output}: {exc.strerror}") from exc
        print(f"Decrypted to {args.output} (unencrypted: delete it when you are done).",
              file=sys.stderr)
    else:
        sys.stdout.buffer.write(plaintext)
        sys.stdout.flush()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    plaintext = _decrypt(args)
    try:
        doc = parse(plaintext)
    except NotAnExport as exc:
        raise CliError(f"{args.input}: {exc}") from exc
    ctx = Context()
    with open_journal(ctx) as journal:
        result = import_document(journal, doc, progress=ImportProgressLine())
    added = describe_counts(result.added) or "nothing new"
    same = sum(result.already_there.values())
    notes = []
    if same:
        notes.append(f"{same:,} record{'s were' if same > 1 else ' was'} already in your journal.")
    if result.repeated:
        notes.append(f"{result.repeated:,} record{'s' if result.repeated > 1 else ''} appeared "
                     "more than once in the file and were imported once.")
    if result.unlinked:
        notes.append(f"{result.unlinked:,} mood or thought record{'s' if result.unlinked > 1 else ''} "
                     "belonged to a session not in the file; kept without that link.")
    print(" ".join([f"Imported {added}.", *notes]))
    return 0


class ImportProgressLine:
    """Progress of a large import on stderr: updated in place on a terminal, else one line."""

    SHOW_FROM = 2_000

    def __init__(self) -> None:
        self.shown = False
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if total < self.SHOW_FROM:
            return
        tty = sys.stderr.isatty()
        if not self.shown:
            self.shown = True
            if not tty:
                print(f"Importing {total:,} records…", file=sys.stderr)
        if tty and (done == total or time.monotonic() - self.last > 0.2):
            self.last = time.monotonic()
            sys.stderr.write(f"\rImporting… {done:,} of {total:,} records ({done / total:.0%})")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
