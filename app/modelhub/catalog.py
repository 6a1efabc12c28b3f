"""The curated model catalog (``models/catalog.toml``), validated by pydantic."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app import resources


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    file: str = Field(pattern=r"\.gguf$")
    size_mb: int = Field(gt=0)
    licence: str
    context_length: int = Field(gt=0)
    chat_format: str
    template_note: str
    attention: Literal["standard", "sliding-window", "hybrid"]
    min_ram_gb: float = Field(gt=0)
    default: bool = False
    small_machines: bool = False
    description: str

    def ram_fit(self, total_ram_gb: float) -> str:
        """'fits', or what it needs, for a machine with ``total_ram_gb`` of RAM."""
        return "fits" if total_ram_gb >= self.min_ram_gb else f"needs {self.min_ram_gb:g} GB RAM"


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: list[CatalogEntry]

    @model_validator(mode="after")
    def _one_default_one_small(self) -> Catalog:
        names = [m.name for m in self.model]
        if len(set(names)) != len(names):
            raise ValueError("model names must be unique")
        if sum(m.default for m in self.model) != 1:
            raise ValueError("exactly one model must be marked default")
        if sum(m.small_machines for m in self.model) != 1:
            raise ValueError("exactly one model must be marked small_machines")
        if any(m.default and m.attention != "standard" for m in self.model):
            raise ValueError("the default model must use standard attention")
        return self

    @property
    def default(self) -> CatalogEntry:
        return next(m for m in self.model if m.default)

    @property
    def for_small_machines(self) -> CatalogEntry:
        return next(m for m in self.model if m.small_machines)

    def get(self, name: str) -> CatalogEntry | None:
        return next((m for m in self.model if m.name == name), None)


class CatalogError(Exception):
    pass


def load_catalog(path: Path | None = None) -> Catalog:
    path = path or resources.models_dir() / "catalog.toml"
    try:
        return Catalog.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise CatalogError(f"model catalog {path} is invalid: {exc}") from exc


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return load_catalog()
