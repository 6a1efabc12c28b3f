"""``haven desktop install|remove``: open Haven from the applications menu, like any program.

On Linux (and other freedesktop systems) ``install`` writes a desktop entry,
``$XDG_DATA_HOME/applications/haven.desktop`` (``~/.local/share`` by default), with
``Terminal=true`` so the menu opens Haven in the person's terminal, and an icon into the
hicolor icon theme beside it. On macOS it writes a small ``Haven.app`` into ``~/Applications``
that opens Terminal running Haven.

Both point at the absolute path of the ``haven`` that ran the command, so a pipx or venv
install works without anything on PATH. ``remove`` takes away exactly what ``install``
wrote: each file carries a mark (``X-Haven-Launcher`` in the entry, an id in the icon, a key
in the app's Info.plist), a file without it is never replaced or removed, and the folders
install created (recorded in the entry or the plist) are removed again when they are empty.
Installing twice writes the same bytes.
"""

from __future__ import annotations

import argparse
import os
import plistlib
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from app.cli.common import CliError
from app.fileio import atomic_write

ENTRY_FILE = "haven.desktop"
ICON_NAME = "haven"
ICON_DIR = Path("icons", "hicolor", "scalable", "apps")
ENTRY_MARK = "X-Haven-Launcher"
CREATED_KEY = "X-Haven-Created-Folders"
ICON_MARK = b'id="haven-launcher-icon"'
APP_NAME = "Haven.app"
PLIST_MARK = "HavenLauncher"
PLIST_CREATED = "HavenCreatedFolders"
BUNDLE_ID = "local.haven.launcher"

DESCRIPTION = (
    "Adds Haven to your applications menu, so you can open it like any other program; it "
    "opens in a terminal window. On Linux this writes a launcher (haven.desktop) and an icon "
    "into your own folders under ~/.local/share (or $XDG_DATA_HOME); on macOS, a small "
    "Haven app in ~/Applications that opens Terminal. Nothing else changes, and "
    "`haven desktop remove` takes away exactly what install added. The launcher runs this "
    "copy of Haven: if you move or reinstall Haven, run `haven desktop install` again."
)

COMMENT = "Talk things through and keep a private journal, on this computer only"


def register(sub) -> None:
    p = sub.add_parser("desktop", help="add Haven to your applications menu, or take it away",
                       description=DESCRIPTION)
    dsub = p.add_subparsers(dest="desktop_command", metavar="ACTION")
    i = dsub.add_parser("install", help="add Haven to your applications menu (run again to update)",
                        description=DESCRIPTION)
    i.set_defaults(func=cmd_install)
    r = dsub.add_parser("remove", help="take away what `haven desktop install` added",
                        description="Removes the launcher and icon that `haven desktop install` "
                        "wrote, and the folders it created if they are empty. Nothing else is "
                        "touched; your journal and models stay.")
    r.set_defaults(func=cmd_remove)

    def explain(args: argparse.Namespace) -> int:
        p.print_help()
        return 0

    p.set_defaults(func=explain)


# --- where things are -----------------------------------------------------------------------

def installed_haven() -> Path:
    """The absolute path of the ``haven`` command that is running (or of this environment's)."""
    candidates = []
    if Path(sys.argv[0]).name == "haven":
        candidates.append(Path(sys.argv[0]))
    candidates.append(Path(sysconfig.get_path("scripts")) / "haven")
    found = shutil.which("haven")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return Path(os.path.abspath(candidate))
    raise CliError("cannot find the installed `haven` command to point the launcher at; "
                   "install Haven (pipx install, or make run) and run this with that `haven`")


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset, empty or not absolute."""
    value = os.environ.get("XDG_DATA_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".local" / "share"


def icon_bytes() -> bytes:
    return (Path(__file__).resolve().parent.parent / "icons" / "haven.svg").read_bytes()


# --- the freedesktop entry ------------------------------------------------------------------

_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def exec_argument(path: Path) -> str:
    """One argument of ``Exec=``, quoted as the Desktop Entry spec asks, then escaped as a
    string value (so a backslash inside quotes ends up doubled twice)."""
    text = str(path)
    if any(ch in text for ch in "\n\r\t") or not text.isprintable():
        raise CliError("the path of the haven command has a control character in it, which a launcher cannot "
                       "hold; install Haven in a folder with a plain name")
    text = text.replace("%", "%%")
    if any(ch in _EXEC_RESERVED for ch in text):
        text = '"' + "".join("\\" + ch if ch in '"`$\\' else ch for ch in text) + '"'
    return _string_value(text)


def _string_value(text: str) -> str:
    return text.replace("\\", "\\\\")


def desktop_entry(haven: Path, created: list[str]) -> str:
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",
        "Name=Haven",
        "GenericName=Self-help companion",
        f"Comment={COMMENT}",
        "Keywords=CBT;journal;mood;wellbeing;self-help;thoughts;",
        f"Icon={ICON_NAME}",
        f"TryExec={_string_value(str(haven))}",
        f"Exec={exec_argument(haven)}",
        "Terminal=true",
        "Categories=Utility;",
        "StartupNotify=false",
        f"{ENTRY_MARK}=true",
    ]
    if created:
        lines.append(f"{CREATED_KEY}={';'.join(created)};")
    return "\n".join(lines) + "\n"


def _entry_keys(path: Path) -> dict[str, str] | None:
    """The keys of a desktop entry Haven wrote, or None if ``path`` is not one of Haven's."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    keys = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            keys[key.strip()] = value.strip()
    return keys if keys.get(ENTRY_MARK) == "true" else None


def _is_our_icon(path: Path) -> bool:
    try:
        return ICON_MARK in path.read_bytes()
    except OSError:
        return False


@dataclass(frozen=True)
class Launcher:
    """The files of a freedesktop launcher under one data folder."""

    home: Path  # $XDG_DATA_HOME

    @property
    def entry(self) -> Path:
        return self.home / "applications" / ENTRY_FILE

    @property
    def icon(self) -> Path:
        return self.home / ICON_DIR / f"{ICON_NAME}.svg"

    def folders(self) -> list[Path]:
        """The folders the launcher's files need, parents first."""
        needed = []
        for path in (self.entry.parent, self.icon.parent):
            chain = []
            while path != self.home and self.home in path.parents:
                chain.append(path)
                path = path.parent
            needed += [p for p in reversed(chain) if p not in needed]
        return needed


def install_freedesktop(home: Path, haven: Path) -> list[Path]:
    """Write the entry and the icon under ``home`` ($XDG_DATA_HOME); the files written."""
    launcher = Launcher(home)
    _refuse_foreign(launcher.entry, _entry_keys(launcher.entry) is not None)
    _refuse_foreign(launcher.icon, _is_our_icon(launcher.icon))
    previous = _entry_keys(launcher.entry) or {}
    created = [c for c in previous.get(CREATED_KEY, "").split(";") if c]
    home.mkdir(parents=True, exist_ok=True)
    for folder in launcher.folders():
        if not folder.is_dir():
            folder.mkdir(mode=0o755)
            created.append(folder.relative_to(home).as_posix())
    _write(launcher.icon, icon_bytes(), 0o644)
    _write(launcher.entry, desktop_entry(haven, created).encode(), 0o644)
    _touch(home / "icons" / "hicolor")  # icon caches look at the theme folder's time
    return [launcher.entry, launcher.icon]


def remove_freedesktop(home: Path) -> list[Path]:
    """Remove what :func:`install_freedesktop` wrote (and the folders it made, if empty);
    the files removed."""
    launcher = Launcher(home)
    keys = _entry_keys(launcher.entry)
    removed = []
    if launcher.entry.exists() and keys is None:
        raise CliError(f"{launcher.entry} was not written by Haven, so it was left alone; "
                       "nothing was removed")
    if _is_our_icon(launcher.icon):
        launcher.icon.unlink()
        removed.append(launcher.icon)
        _touch(home / "icons" / "hicolor")
    if keys is not None:
        launcher.entry.unlink()
        removed.append(launcher.entry)
        created = [home / c for c in keys.get(CREATED_KEY, "").split(";") if c]
        for folder in sorted(created, key=lambda p: len(p.parts), reverse=True):
            if home in folder.parents:
                _remove_if_empty(folder)
    return removed


# --- macOS ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MacApp:
    home: Path  # the person's home folder

    @property
    def bundle(self) -> Path:
        return self.home / "Applications" / APP_NAME

    @property
    def plist(self) -> Path:
        return self.bundle / "Contents" / "Info.plist"

    @property
    def executable(self) -> Path:
        return self.bundle / "Contents" / "MacOS" / "Haven"

    @property
    def command(self) -> Path:
        return self.bundle / "Contents" / "Resources" / "haven.command"


def _plist_of(path: Path) -> dict | None:
    try:
        data = plistlib.loads(path.read_bytes())
    except (OSError, plistlib.InvalidFileException, ValueError):
        return None
    return data if isinstance(data, dict) and data.get(PLIST_MARK) is True else None


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def install_macos(home: Path, haven: Path) -> list[Path]:
    """Write ``~/Applications/Haven.app``: opening it opens Terminal running ``haven``."""
    app = MacApp(home)
    previous = _plist_of(app.plist)
    if app.bundle.exists() and previous is None:
        raise CliError(f"{app.bundle} is already there and was not written by Haven; "
                       "nothing was changed (move it away and try again)")
    created = list((previous or {}).get(PLIST_CREATED, []))
    applications = app.bundle.parent
    if not applications.is_dir():
        applications.mkdir(mode=0o755, parents=True)
        created.append("Applications")
    plist = {
        "CFBundleName": "Haven",
        "CFBundleDisplayName": "Haven",
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleExecutable": app.executable.name,
        "CFBundlePackageType": "APPL",
        "CFBundleInfoDictionaryVersion": "6.0",
        "CFBundleShortVersionString": "1.0",
        "CFBundleVersion": "1",
        "LSUIElement": True,  # it only opens Terminal and exits: no Dock icon of its own
        PLIST_MARK: True,
        PLIST_CREATED: created,
    }
    launcher = ("#!/bin/sh\n"
                "# Written by `haven desktop install`: opens Terminal running Haven.\n"
                'exec /usr/bin/open -a Terminal "$(dirname "$0")/../Resources/haven.command"\n')
    command = ("#!/bin/sh\n"
               "# Written by `haven desktop install`: Terminal runs this to open Haven.\n"
               f"exec {_sh_quote(str(haven))}\n")
    for folder in (app.executable.parent, app.command.parent):
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    _write(app.command, command.encode(), 0o755)
    _write(app.executable, launcher.encode(), 0o755)
    _write(app.plist, plistlib.dumps(plist, sort_keys=True), 0o644)
    return [app.bundle]


def remove_macos(home: Path) -> list[Path]:
    app = MacApp(home)
    if not app.bundle.exists():
        return []
    plist = _plist_of(app.plist)
    if plist is None:
        raise CliError(f"{app.bundle} was not written by Haven, so it was left alone; "
                       "nothing was removed")
    shutil.rmtree(app.bundle)
    if "Applications" in plist.get(PLIST_CREATED, []):
        _remove_if_empty(app.bundle.parent)
    return [app.bundle]


# --- shared ---------------------------------------------------------------------------------

def _refuse_foreign(path: Path, ours: bool) -> None:
    if path.exists() and not ours:
        raise CliError(f"{path} is already there and was not written by Haven; nothing was "
                       "changed (move it away and try again)")


def _write(path: Path, data: bytes, mode: int) -> None:
    try:
        if path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
            return  # already so: installing twice changes nothing
    except OSError:
        pass
    atomic_write(path, data)
    os.chmod(path, mode)


def _touch(folder: Path) -> None:
    try:
        os.utime(folder)
    except OSError:
        pass


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # something else is in it now: it stays


# --- the commands ---------------------------------------------------------------------------

def _platform() -> str:
    if sys.platform == "darwin":
        return "macos"
    if sys.platform.startswith(("win", "cygwin")):
        raise CliError("a desktop launcher can be made on Linux and macOS only")
    return "freedesktop"


def cmd_install(args: argparse.Namespace) -> int:
    haven = installed_haven()
    if _platform() == "macos":
        written = install_macos(Path.home(), haven)
        print("Haven is in your Applications folder now: open it from Finder, Launchpad or "
              "Spotlight, and it opens in a Terminal window.")
    else:
        written = install_freedesktop(data_home(), haven)
        print('Haven is in your applications menu now: look for "Haven". It opens in a '
              "terminal window.")
    for path in written:
        print(f"  {path}")
    print(f"It runs {haven}; if you move or reinstall Haven, run `haven desktop install` again.")
    print("To take it away: haven desktop remove")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    if _platform() == "macos":
        removed = remove_macos(Path.home())
    else:
        removed = remove_freedesktop(data_home())
    if not removed:
        print("There was no Haven launcher to remove; nothing was changed.")
        return 0
    print("Removed Haven from your applications menu (your journal and models stay):")
    for path in removed:
        print(f"  {path}")
    return 0
