"""The models installed on this machine: ``models/installed.json`` in the data dir.

A model is listed only after its file has been verified (sha256 against the hub, or
a full GGUF check on import), so nothing half-downloaded can pose as a model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.fileio import atomic_write
from app.paths import DataPaths


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
            return _Registry.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, ValidationError) as exc:
            raise RegistryError(
                f"the list of installed models ({path}) is damaged; delete it and "
                "import your models again"
            ) from exc

    def _save(self, registry: _Registry) -> None:
        self.paths.ensure()
        atomic_write(self.paths.installed_models, registry.model_dump_json(indent=2).encode())

    def all(self) -> list[InstalledModel]:
        return self._load().models

    def get(self, name: str) -> InstalledModel | None:
        return next((m for m in self.all() if m.name == name), None)

    def path_of(self, model: InstalledModel) -> Path:
        return self.paths.models_dir / model.file

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
            self.path_of(found).unlink(missing_ok=True)
        return found
