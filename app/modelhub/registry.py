"""The models installed on this machine: ``models/installed.json`` in the data dir.

A model is listed only after its file has been verified (sha256 against the hub, or
a full GGUF check on import), so nothing half-downloaded can pose as a model. Every
listed file is a plain name inside ``models/``: an entry naming anything else (a
tampered list saying ``../../victim.txt``) is ignored, never opened or deleted. Before a
model is used its file is checked against its size and sha256 again (the hash only when
the file is not the very one verified last time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.fileio import atomic_write
from app.paths import DataPaths

log = logging.getLogger("haven.models")

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
NAME_RULE = "use up to 64 lowercase letters, digits, '.', '-' or '_', starting with a letter or digit"


def valid_name(name: str) -> bool:
    return bool(NAME_PATTERN.match(name))


def safe_file_name(file: str) -> bool:
    """A plain ``*.gguf`` name in the models folder: no folders, no dots up, no hidden file."""
    return (
        bool(file) and file.endswith(".gguf") and not file.startswith(".")
        and "/" not in file and "\\" not in file and "\x00" not in file
        and file not in (".", "..") and len(file) <= 255
    )


class InstalledModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    file: str = Field(description="file name inside the models folder")
    size: int
    sha256: str
    source: Literal["catalog", "hub", "import"]
    repo: str | None = None
    repo_file: str | None = None
    chat_format: str | None = None
    installed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    verified: list[int] | None = Field(
        None, description="size, mtime_ns and inode of the file when its sha256 last matched")

    @field_validator("file")
    @classmethod
    def _inside_models(cls, value: str) -> str:
        if not safe_file_name(value):
            raise ValueError("not a plain model file name inside the models folder")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("not a sha256")
        return value


class _Registry(BaseModel):
    models: list[InstalledModel] = []


class RegistryError(Exception):
    pass


class ModelRegistry:
    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths

    def _load(self) -> _Registry:
        path = self.paths.installed_models
        if not path.exists():
            return _Registry()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            entries = raw["models"] if isinstance(raw, dict) else None
            if not isinstance(entries, list):
                raise ValueError("no list of models")
        except (OSError, ValueError, KeyError, RecursionError) as exc:
            raise RegistryError(
                f"the list of installed models ({path}) is damaged; delete it and "
                "import your models again"
            ) from exc
        models = []
        for entry in entries:
            try:
                models.append(InstalledModel.model_validate(entry))
            except ValidationError:
                # A tampered or damaged entry (a file outside models/, say) is left out:
                # never opened, never deleted.
                log.warning("ignored an unusable entry in the list of installed models")
        return _Registry(models=models)

    def _save(self, registry: _Registry) -> None:
        self.paths.ensure()
        atomic_write(self.paths.installed_models, registry.model_dump_json(indent=2).encode())

    def all(self) -> list[InstalledModel]:
        return self._load().models

    def get(self, name: str) -> InstalledModel | None:
        return next((m for m in self.all() if m.name == name), None)

    def file_of(self, model: InstalledModel) -> Path:
        """Where the model's file is: always directly inside the models folder."""
        if not safe_file_name(model.file):
            raise RegistryError(f"model {model.name!r} names a file outside Haven's models folder")
        path = self.paths.models_dir / model.file
        if path.parent != self.paths.models_dir:
            raise RegistryError(f"model {model.name!r} names a file outside Haven's models folder")
        return path

    def path_of(self, model: InstalledModel) -> Path:
        """The model's file, checked before use: a regular file of the size and sha256 it
        was installed with. The hash is computed again only when the file is not the very
        one that matched last time (size, mtime and inode)."""
        path = self.file_of(model)
        try:
            found = os.lstat(path)
        except FileNotFoundError as exc:
            raise RegistryError(
                f"the file of model {model.name!r} is missing; download or import it again"
            ) from exc
        if not stat.S_ISREG(found.st_mode):
            raise RegistryError(f"the file of model {model.name!r} is not a regular file; "
                                "download or import it again")
        if found.st_size != model.size:
            raise RegistryError(f"the file of model {model.name!r} has changed since it was "
                                "installed (damaged?); download or import it again")
        fingerprint = [found.st_size, found.st_mtime_ns, found.st_ino]
        if model.verified == fingerprint:
            return path
        if sha256_of(path) != model.sha256:
            raise RegistryError(f"the file of model {model.name!r} does not match its sha256 "
                                "(damaged or replaced); download or import it again")
        self.mark_verified(model.name, fingerprint)
        return path

    def mark_verified(self, name: str, fingerprint: list[int] | None = None) -> None:
        registry = self._load()
        for model in registry.models:
            if model.name == name:
                if fingerprint is None:
                    found = os.lstat(self.file_of(model))
                    fingerprint = [found.st_size, found.st_mtime_ns, found.st_ino]
                model.verified = fingerprint
        self._save(registry)

    def add(self, model: InstalledModel) -> None:
        registry = self._load()
        registry.models = [m for m in registry.models if m.name != model.name] + [model]
        self._save(registry)

    def remove(self, name: str) -> InstalledModel:
        registry = self._load()
        found = next((m for m in registry.models if m.name == name), None)
        if found is None:
            raise RegistryError(f"no installed model called {name!r}")
        registry.models = [m for m in registry.models if m.name != name]
        self._save(registry)
        still_used = any(m.file == found.file for m in registry.models)
        if not still_used:
            self.file_of(found).unlink(missing_ok=True)  # a link is removed, never followed
        return found


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
