"""Crisis resources by country, from ``prompts/safety/resources.toml``."""

from __future__ import annotations

import tomllib
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app import resources
from app.safety.rules import RulesError

INTERNATIONAL = "international"


class CrisisService(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    how: str
    url: str | None = None
    hours: str | None = None
    for_: str | None = Field(None, alias="for")


class CountryResources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = ""
    name: str
    emergency: str
    services: list[CrisisService]


@lru_cache(maxsize=1)
def all_resources() -> dict[str, CountryResources]:
    path = resources.prompts_dir() / "safety" / "resources.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        out = {
            code: CountryResources.model_validate({**entry, "code": code})
            for code, entry in data.items()
            if isinstance(entry, dict)
        }
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise RulesError(f"crisis resources {path} cannot be loaded: {exc}") from exc
    if INTERNATIONAL not in out:
        raise RulesError(f"crisis resources {path} have no international entry")
    return out


def countries() -> list[tuple[str, str]]:
    """(code, name) for every country with resources, international first."""
    table = all_resources()
    rest = sorted((c, r.name) for c, r in table.items() if c != INTERNATIONAL)
    return [(INTERNATIONAL, table[INTERNATIONAL].name), *rest]


def resources_for(country: str | None, categories: tuple[str, ...] = ()) -> CountryResources:
    """The resources for ``country`` (falling back to international), most relevant first."""
    table = all_resources()
    found = table.get((country or "").upper()) or table.get(country or "") or table[INTERNATIONAL]
    if "abuse or violence at home" in categories:
        ordered = sorted(found.services, key=lambda s: s.for_ != "abuse")
    else:
        ordered = sorted(found.services, key=lambda s: s.for_ == "abuse")
    return found.model_copy(update={"services": ordered})


def format_resources(found: CountryResources) -> str:
    """Plain text for the line-mode chat and the CLI."""
    lines = [f"If you are in danger or hurt, call {found.emergency} now."]
    for service in found.services:
        hours = f" ({service.hours})" if service.hours else ""
        lines.append(f"  • {service.name}: {service.how}{hours}")
    return "\n".join(lines)
