"""Haven's settings: one pydantic object, stored as TOML in the data directory.

The settings file holds preferences only (model, generation, country for
crisis resources, theme, recall on or off). Nothing the user writes ever goes here.
"""

from __future__ import annotations

import os
import tomllib
from typing import Literal

import psutil
import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.fileio import atomic_write
from app.paths import DataPaths


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


class GenerationSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0)
    max_tokens: int = Field(384, ge=16, le=4096)
    seed: int = Field(-1, description="-1 picks a random seed each reply")


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    model: str | None = Field(None, description="name of the selected installed model")
    n_ctx: int = Field(4096, ge=512, le=131072)
    threads: int = Field(default_factory=physical_cores, ge=1, le=256)
    weight_repack: Literal["auto", "on", "off"] = Field(
        "auto", description="llama.cpp's repacked weight buffers: auto (yes, but never AMX "
        "ones, which crash with Q4_K_M models), on (all, AMX too), off (none, like --no-repack)")
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    country: str = Field("international", description="ISO code for crisis resources")
    country_confirmed: bool = Field(False, description="the person chose it (first-run set-up)")
    theme: str = "textual-dark"
    recall: bool = Field(
        True, description="before a reply, bring back the few earlier thought records, session "
        "summaries, steps and notes that fit what the person just wrote (from the encrypted "
        "journal, never from a session that reached crisis); off: nothing is ever recalled")
    notice_acknowledged: bool = False


class SettingsError(Exception):
    """The settings file exists but cannot be read; the message says how to fix it."""


def load_settings(paths: DataPaths) -> Settings:
    path = paths.settings_file
    if not path.exists():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return Settings.model_validate(data)
    except (tomllib.TOMLDecodeError, ValidationError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise SettingsError(
            f"settings file {path} is damaged ({first}); fix it or delete it to start over"
        ) from exc


def save_settings(paths: DataPaths, settings: Settings) -> None:
    """Write atomically (temp file + rename), owner-only."""
    paths.ensure()
    text = tomli_w.dumps(settings.model_dump(mode="json", exclude_none=True))
    atomic_write(paths.settings_file, text.encode("utf-8"))

