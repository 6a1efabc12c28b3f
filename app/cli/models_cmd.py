"""``haven models``: list, download, import, use and remove models."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import psutil

from app.cli.common import CliError, Context
from app.modelhub.catalog import catalog
from app.modelhub.download import (
    DownloadError,
    DownloadProgress,
    check_request,
    download_catalog_entry,
    download_spec,
)
from app.modelhub.importer import ImportError_, import_gguf
from app.modelhub.registry import ModelRegistry, RegistryError
from app.settings import save_settings
from app.text import terminal_safe

log = logging.getLogger("haven.cli")


def register(sub) -> None:
    models = sub.add_parser("models", help="list, download, import, choose and remove models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    p = msub.add_parser("list", help="catalog and installed models")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = msub.add_parser("download", help="download a catalog model, or REPO_ID:FILENAME")
    p.add_argument("name", help="a catalog name (see `haven models list`) or org/repo:file.gguf")
    p.add_argument("--name", dest="as_name", help="name to install it as (for REPO_ID:FILENAME)")
    p.add_argument("--chat-format", help="chat format if the GGUF has no template")
    p.add_argument("--no-use", action="store_true", help="do not select it after download")
    p.add_argument("--no-prepare", action="store_true",
                   help="do not have the model read Haven's prompt now (the first start will)")
    p.set_defaults(func=cmd_download)

    p = msub.add_parser("import", help="import a GGUF file you already have")
    p.add_argument("path", type=Path)
    p.add_argument("--name", help="name to install it as (default: from the file name)")
    p.add_argument("--chat-format", help="chat format if the GGUF has no template (e.g. chatml)")
    p.add_argument("--no-use", action="store_true", help="do not select it after import")
    p.add_argument("--no-prepare", action="store_true",
                   help="do not have the model read Haven's prompt now (the first start will)")
    p.set_defaults(func=cmd_import)

    p = msub.add_parser("use", help="select the model Haven talks with")
    p.add_argument("name")
    p.set_defaults(func=cmd_use)

    p = msub.add_parser("remove", help="delete an installed model")
    p.add_argument("name")
    p.set_defaults(func=cmd_remove)


def cmd_list(args: argparse.Namespace) -> int:
    ctx = Context()
    registry = ModelRegistry(ctx.paths)
    installed = {m.name: m for m in registry.all()}
    selected = ctx.settings.model
    ram_gb = psutil.virtual_memory().total / 1024**3
    rows = []
    for entry in catalog().model:
        m = installed.get(entry.name)
        rows.append({
            "name": entry.name, "title": entry.title, "source": "catalog",
            "installed": m is not None, "selected": entry.name == selected,
            "size_mb": round(m.size / 1e6) if m else entry.size_mb, "licence": entry.licence,
            "min_ram_gb": entry.min_ram_gb, "default": entry.default,
            "small_machines": entry.small_machines, "ram": entry.ram_fit(ram_gb),
        })
    for name, m in installed.items():
        if catalog().get(name) is None:
            rows.append({
                "name": name, "title": m.repo_file or m.file, "source": m.source,
                "installed": True, "selected": name == selected,
                "size_mb": round(m.size / 1e6), "licence": None, "min_ram_gb": None,
                "default": False, "small_machines": False, "ram": "",
            })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'':2}{'NAME':<26} {'SIZE':>8}  {'STATUS':<16} NOTE")
    for r in rows:
        mark = "*" if r["selected"] else " "
        notes = []
        if r["default"]:
            notes.append("recommended")
        if r["small_machines"]:
            notes.append("for small machines")
        if r["ram"] and r["ram"] != "fits":
            notes.append(r["ram"])
        print(terminal_safe(
            f"{mark:2}{r['name']:<26} {r['size_mb']:>5} MB  {_status(r):<16} {', '.join(notes)}"
            .rstrip()))
    if any(r["selected"] for r in rows):
        print("\n* the model Haven talks with.  To download another: haven models download NAME")
    else:
        print("\nNo model chosen yet.  To download one: haven models download NAME")
    return 0


def _status(row: dict) -> str:
    """In plain words: is the model's file on this computer, and how did it get there."""
    if not row["installed"]:
        return "not downloaded"
    return "imported" if row["source"] == "import" else "downloaded"


class ProgressBar:
    """bytes, rate and ETA on one line of stderr."""

    def __init__(self) -> None:
        self._last = 0.0
        self._phase = ""

    def __call__(self, p: DownloadProgress) -> None:
        now = time.monotonic()
        if p.phase == self._phase and now - self._last < 0.2 and p.done < p.total:
            return
        if p.phase != self._phase and self._phase:
            sys.stderr.write("\n")
        self._phase, self._last = p.phase, now
        if p.phase == "verify":
            line = f"  verifying sha256 {p.fraction:6.1%}"
        else:
            eta = f"{int(p.eta // 60)}:{int(p.eta % 60):02d}" if p.eta is not None else "--:--"
            resumed = f" (resumed at {p.resumed_from / 1e6:.1f} MB)" if p.resumed_from else ""
            line = (f"  {p.fraction:6.1%}  {p.done / 1e6:8.1f} / {p.total / 1e6:.1f} MB  "
                    f"{p.rate / 1e6:6.2f} MB/s  ETA {eta}{resumed}")
        sys.stderr.write("\r" + line.ljust(78))
        sys.stderr.flush()

    def close(self) -> None:
        if self._phase:
            sys.stderr.write("\n")


def cmd_download(args: argparse.Namespace) -> int:
    ctx = Context()
    bar = ProgressBar()
    entry = catalog().get(args.name)
    try:
        if entry is not None:
            print(f"Downloading {entry.title} ({entry.size_mb} MB) from {entry.repo}", file=sys.stderr)
            model = download_catalog_entry(ctx.paths, entry, bar)
        else:
            check_request(args.name, args.as_name)  # refused before a word or a request
            print(f"Downloading {terminal_safe(args.name)}", file=sys.stderr)
            model = download_spec(ctx.paths, args.name, args.as_name, args.chat_format, bar)
    except DownloadError as exc:
        bar.close()
        raise CliError(str(exc)) from exc
    except KeyboardInterrupt:
        bar.close()
        print("haven: download paused. Run the same command again to resume where it stopped.",
              file=sys.stderr)
        return 130
    bar.close()
    print(f"Installed {model.name} (sha256 verified).")
    if not args.no_use:
        _select(ctx, model.name, prepare=not args.no_prepare)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    ctx = Context()
    try:
        model = import_gguf(ctx.paths, args.path, args.name, args.chat_format)
    except ImportError_ as exc:
        raise CliError(str(exc)) from exc
    print(f"Imported {model.name} ({model.size / 1e6:.0f} MB).")
    if not args.no_use:
        _select(ctx, model.name, prepare=not args.no_prepare)
    return 0


def _select(ctx: Context, name: str, prepare: bool = False) -> None:
    settings = ctx.settings
    settings.model = name
    save_settings(ctx.paths, settings)
    print(f"Haven will now talk with {name}.")
    if prepare:
        _prepare(ctx)


def _prepare(ctx: Context) -> None:
    """Have the new model read Haven's own prompt once now, while the person is waiting
    for the install anyway, so the first conversation answers as quickly as any later one
    (app.conversation.warmup). It is only a head start: a failure or Ctrl+C loses nothing."""
    from app.conversation.warmup import prepare_model
    from app.runtime import quiet_terminal

    print("Getting it ready, so your first conversation starts quickly…", file=sys.stderr)
    quiet_terminal(ctx.paths)  # llama.cpp writes to stderr; that goes to Haven's log
    try:
        prepare_model(ctx.paths, ctx.settings)
    except KeyboardInterrupt:
        print("Skipped. Haven will get it ready the first time it starts.", file=sys.stderr)
        return
    except Exception as exc:  # the model is installed; this was only a head start
        log.warning("preparing the model failed (%s)", type(exc).__name__)
        print("Haven could not get it ready now; it will try when it starts "
              "(details in the log: haven doctor).", file=sys.stderr)
        return
    print("Ready.", file=sys.stderr)


def cmd_use(args: argparse.Namespace) -> int:
    ctx = Context()
    registry = ModelRegistry(ctx.paths)
    model = registry.get(args.name)
    if model is None:
        hint = " (download it first: haven models download NAME)" if catalog().get(args.name) else ""
        raise CliError(f"no installed model called {args.name!r}{hint}")
    registry.path_of(model)  # its file is there and still the one that was verified
    _select(ctx, args.name)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    ctx = Context()
    try:
        removed = ModelRegistry(ctx.paths).remove(args.name)
    except RegistryError as exc:
        raise CliError(str(exc)) from exc
    if ctx.settings.model == removed.name:
        settings = ctx.settings
        settings.model = None
        save_settings(ctx.paths, settings)
    print(f"Removed {removed.name}.")
    return 0
