"""Where Haven keeps its files, and keeping them private.

Everything lives under one data directory: ``HAVEN_HOME`` when set, else the
platform's user data dir. The directory is 0700 and every file in it 0600.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_private_by_default() -> None:
    """Files this process creates are readable by the owner only (SQLite side files too)."""
    os.umask(0o077)


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


@dataclass(frozen=True)
class DataPaths:
    """The layout of the data directory."""

    root: Path

    @classmethod
    def discover(cls) -> DataPaths:
        env = os.environ.get("HAVEN_HOME")
        root = Path(env).expanduser() if env else Path(platformdirs.user_data_dir("haven"))
        return cls(root=root.absolute())

    @property
    def settings_file(self) -> Path:
        return self.root / "settings.toml"

    @property
    def journal(self) -> Path:
        return self.root / "journal.db"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def prompt_cache(self) -> Path:
        """Haven's own prompt, evaluated by each model (app.llm.prompt_cache): no one's words."""
        return self.models_dir / "prompt-cache"

    @property
    def installed_models(self) -> Path:
        return self.models_dir / "installed.json"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "haven.log"

    def holds(self, path: Path) -> bool:
        """True if ``path`` is, or is inside, the data folder (links resolved): a place
        Haven must never write an export or a decrypted file to."""
        root = self.root.resolve()
        target = Path(path).expanduser().resolve()
        return target == root or root in target.parents

    def owns(self, path: Path) -> bool:
        """True if ``path`` (links resolved) is one of Haven's own files here: the journal
        and its side files, the settings, anything under models/ or logs/."""
        root = self.root.resolve()
        target = Path(path).expanduser().resolve()
        if target.parent == root and (target.name.startswith(self.journal.name)
                                      or target.name == self.settings_file.name):
            return True
        return any(target == folder or folder in target.parents
                   for folder in (root / self.models_dir.name, root / self.logs_dir.name))

    def ensure(self) -> DataPaths:
        make_private_by_default()
        for folder in (self.root, self.models_dir, self.logs_dir):
            ensure_private_dir(folder)
        return self
