"""``haven desktop install|remove``: a launcher in the applications menu, and nothing else."""

from __future__ import annotations

import os
import plistlib
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.cli.common import CliError
from app.cli.desktop_cmd import desktop_entry, install_macos, remove_macos
from tests.conftest import haven_env, require_tool, run_haven


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``root``."""
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def entry_keys(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:] if "=" in line)


def exec_argv(value: str) -> list[str]:
    """Read ``Exec`` as the Desktop Entry spec says: undo the string escapes, then split on
    spaces outside double quotes, where a backslash escapes " ` $ and itself; then ``%%``."""
    text = value.replace("\\\\", "\0").replace("\\s", " ").replace("\0", "\\")
    args, current, quoted, i = [], "", False, 0
    while i < len(text):
        ch = text[i]
        if quoted and ch == "\\" and text[i + 1:i + 2] in ('"', "`", "$", "\\"):
            current, i = current + text[i + 1], i + 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == " " and not quoted:
            args.append(current)
            current = ""
        else:
            current += ch
        i += 1
    assert not quoted, value
    return [arg.replace("%%", "%") for arg in [*args, current] if arg]


@pytest.fixture
def desktop(tmp_path):
    """A home and an XDG data folder of their own; the env to run `haven desktop` in."""
    home = tmp_path / "home"
    data = tmp_path / "xdg-data"
    home.mkdir()
    data.mkdir()
    env = haven_env(tmp_path / "haven-home", HOME=str(home), XDG_DATA_HOME=str(data))
    return home, data, env


def test_install_writes_an_entry_that_opens_haven_in_a_terminal(desktop):
    validate = require_tool("desktop-file-validate", "desktop-file-utils")
    home, data, env = desktop
    result = run_haven(home, "desktop", "install", env=env)
    assert result.returncode == 0, result.stderr
    assert "applications menu" in result.stdout and "terminal window" in result.stdout

    entry = data / "applications" / "haven.desktop"
    checked = subprocess.run([validate, str(entry)], capture_output=True, text=True)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr
    keys = entry_keys(entry)
    assert keys["Type"] == "Application" and keys["Name"] == "Haven"
    assert keys["Terminal"] == "true"
    assert "Utility" in keys["Categories"].split(";")
    assert keys["Comment"] and "CBT" not in keys["Comment"]  # plain words in the tooltip
    # Exec is the absolute path of an installed `haven`, so a pipx or venv install works
    # from the menu with nothing on PATH.
    argv = exec_argv(keys["Exec"])
    assert len(argv) == 1 and os.path.isabs(argv[0]) and Path(argv[0]).name == "haven"
    assert os.access(argv[0], os.X_OK)
    assert keys["TryExec"] == argv[0]
    version = subprocess.run([argv[0], "--version"], capture_output=True, text=True, env=env)
    assert version.returncode == 0 and version.stdout.startswith("haven ")

    icon = data / "icons" / "hicolor" / "scalable" / "apps" / f"{keys['Icon']}.svg"
    assert ET.parse(icon).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    assert not (home / ".local").exists()  # XDG_DATA_HOME was honoured; nothing else written


def test_installing_twice_changes_nothing_and_remove_takes_away_only_its_own(desktop):
    home, data, env = desktop
    other = data / "applications" / "notes.desktop"
    other.parent.mkdir()
    other.write_text("[Desktop Entry]\nType=Application\nName=Notes\nExec=notes\n")
    (data / "icons" / "hicolor").mkdir(parents=True)  # a theme folder that was there before
    before = tree(data)

    assert run_haven(home, "desktop", "install", env=env).returncode == 0
    once = tree(data)
    assert run_haven(home, "desktop", "install", env=env).returncode == 0
    assert tree(data) == once
    assert set(once) - set(before) == {
        "applications/haven.desktop", "icons/hicolor/scalable", "icons/hicolor/scalable/apps",
        "icons/hicolor/scalable/apps/haven.svg"}

    removed = run_haven(home, "desktop", "remove", env=env)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip().splitlines()[1:] == [
        f"  {data / 'icons/hicolor/scalable/apps/haven.svg'}", f"  {data / 'applications/haven.desktop'}"]
    assert tree(data) == before  # the folders it made are gone; the ones it found stay

    again = run_haven(home, "desktop", "remove", env=env)
    assert again.returncode == 0 and "nothing was changed" in again.stdout
    assert tree(data) == before


def test_a_launcher_haven_did_not_write_is_never_replaced_or_removed(desktop):
    home, data, env = desktop
    theirs = data / "applications" / "haven.desktop"
    theirs.parent.mkdir()
    theirs.write_text("[Desktop Entry]\nType=Application\nName=Haven (another app)\nExec=x\n")
    before = tree(data)
    for action in ("install", "remove"):
        result = run_haven(home, "desktop", action, env=env)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("haven: ") and "not written by Haven" in lines[0]
        assert "haven: Haven" not in lines[0]
        assert tree(data) == before


def test_without_xdg_data_home_it_goes_to_local_share(desktop):
    home, _, env = desktop
    del env["XDG_DATA_HOME"]
    assert run_haven(home, "desktop", "install", env=env).returncode == 0
    assert (home / ".local" / "share" / "applications" / "haven.desktop").is_file()
    assert run_haven(home, "desktop", "remove", env=env).returncode == 0
    assert tree(home) == {".local": None, ".local/share": None}


@pytest.mark.parametrize("path", [
    "/opt/my apps/bin/haven",
    "/home/o'brien/.local/bin/haven",
    '/home/a"b/$HOME/`x`/back\\slash/100%/haven',
    "/home/José/.local/bin/haven",
])
def test_exec_survives_any_install_path(tmp_path, path):
    validate = require_tool("desktop-file-validate", "desktop-file-utils")
    entry = tmp_path / "haven.desktop"
    entry.write_text(desktop_entry(Path(path), []))
    checked = subprocess.run([validate, str(entry)], capture_output=True, text=True)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout
    assert exec_argv(entry_keys(entry)["Exec"]) == [path]


def test_the_help_says_what_it_does_in_plain_words(desktop):
    home, _, env = desktop
    for args in (("desktop", "--help"), ("desktop",)):
        result = run_haven(home, *args, env=env)
        assert result.returncode == 0
        text = " ".join(result.stdout.split())
        assert "applications menu" in text and "terminal window" in text
        assert "haven desktop remove" in text and "install" in text
    listed = run_haven(home, "--help", env=env)
    assert "desktop" in listed.stdout


# --- macOS: what the writer puts in ~/Applications, checked on any system ---------------------

def test_the_macos_app_opens_terminal_running_this_haven(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    marker = tmp_path / "opened"
    haven = tmp_path / "bin dir" / "haven"  # a stand-in for the installed command
    haven.parent.mkdir()
    haven.write_text(f"#!/bin/sh\necho opened > '{marker}'\n")
    haven.chmod(0o755)

    install_macos(home, haven)
    app = home / "Applications" / "Haven.app"
    info = plistlib.loads((app / "Contents" / "Info.plist").read_bytes())
    assert info["CFBundlePackageType"] == "APPL" and info["CFBundleName"] == "Haven"
    executable = app / "Contents" / "MacOS" / info["CFBundleExecutable"]
    assert stat.S_IMODE(executable.stat().st_mode) == 0o755
    launcher = executable.read_text()
    assert launcher.startswith("#!/bin/sh\n")
    assert "open -a Terminal" in launcher and "Resources/haven.command" in launcher
    assert subprocess.run(["sh", "-n", str(executable)]).returncode == 0
    # What Terminal runs: the .command file, which starts this very haven.
    command = app / "Contents" / "Resources" / "haven.command"
    assert stat.S_IMODE(command.stat().st_mode) == 0o755
    subprocess.run([str(command)], check=True, env={"PATH": "/usr/bin:/bin"})
    assert marker.read_text() == "opened\n"


def test_the_macos_app_installs_twice_the_same_and_removes_cleanly(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    haven = Path("/Users/someone/.local/bin/haven")
    install_macos(home, haven)
    once = tree(home)
    install_macos(home, haven)
    assert tree(home) == once
    remove_macos(home)
    assert tree(home) == {}  # ~/Applications was made by install, so it went too
    assert remove_macos(home) == []

    (home / "Applications").mkdir()
    install_macos(home, haven)
    remove_macos(home)
    assert tree(home) == {"Applications": None}  # it was there before: it stays


def test_a_haven_app_not_written_by_haven_is_left_alone(tmp_path):
    home = tmp_path / "home"
    theirs = home / "Applications" / "Haven.app" / "Contents"
    theirs.mkdir(parents=True)
    (theirs / "Info.plist").write_bytes(plistlib.dumps({"CFBundleName": "Haven"}))
    before = tree(home)
    with pytest.raises(CliError, match="not written by Haven"):
        install_macos(home, Path("/usr/local/bin/haven"))
    with pytest.raises(CliError, match="not written by Haven"):
        remove_macos(home)
    assert tree(home) == before


def test_without_desktop_file_validate_a_user_is_told_the_package_and_ci_fails(monkeypatch):
    """The validation tests skip on a machine without desktop-file-utils, naming it; under
    CI (which installs it in .ci/run) a missing tool is a failure, never a quiet skip."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Debian package: desktop-file-utils"):
        require_tool("desktop-file-validate", "desktop-file-utils")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        require_tool("desktop-file-validate", "desktop-file-utils")
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "desktop-file-utils" in ci
