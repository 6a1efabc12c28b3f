"""Crisis resources by country, from ``prompts/safety/resources.toml``.

A crisis is one of a few *situations* (:func:`situation`): the person's own safety, an
overdose or medical emergency, danger from someone else, or a risk of hurting someone.
Each gets its own words and the services that fit it first (a poison line after an
overdose, an abuse line when someone is in danger at home).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app import resources
from app.safety.rules import RulesError

INTERNATIONAL = "international"

Situation = Literal["self", "medical", "danger", "others"]


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
    """(code, English name) for every country with resources: international first, then
    the rest sorted by their English name."""
    table = all_resources()
    rest = sorted(((c, r.name) for c, r in table.items() if c != INTERNATIONAL),
                  key=lambda item: item[1].casefold())
    return [(INTERNATIONAL, table[INTERNATIONAL].name), *rest]


def _key(category: str) -> str:
    return re.sub(r"[^a-z]+", "_", category.lower()).strip("_")


def situation(categories: Iterable[str]) -> Situation:
    """Which crisis this is, from the risk check's categories (most urgent first).

    Works with the rule names ("medical emergency", "abuse or violence at home", "harm to
    others") and the corpus's ("medical_emergency", "danger_from_others", "harm_to_others").
    """
    keys = [_key(c) for c in categories]
    if any(w in k for k in keys for w in ("medical", "overdose", "poison")):
        return "medical"
    if any(w in k for k in keys for w in ("danger", "abuse", "violence")):
        return "danger"
    if any("others" in k for k in keys):
        return "others"
    return "self"


# Which services a situation lists, in order (None: general crisis support).
_ORDER: dict[str, tuple[str | None, ...]] = {
    "self": (None, "abuse"),
    "others": (None, "abuse"),
    "danger": ("abuse", None),
    "medical": ("poison", None, "abuse"),
    "all": (None, "abuse", "poison"),
}


def _country(country: str | None) -> CountryResources:
    table = all_resources()
    return table.get((country or "").upper()) or table.get(country or "") or table[INTERNATIONAL]


def resources_for(country: str | None, categories: tuple[str, ...] = (),
                  kind: Situation | None = None) -> CountryResources:
    """The resources for ``country`` (falling back to international), the services that fit
    the situation first. Poison lines are listed only after an overdose or a medical
    emergency (and on the SOS screen, :func:`all_services_for`)."""
    found = _country(country)
    order = _ORDER[kind or situation(categories)]
    chosen = sorted((s for s in found.services if s.for_ in order),
                    key=lambda s: order.index(s.for_))
    return found.model_copy(update={"services": chosen})


def all_services_for(country: str | None) -> CountryResources:
    """Every service for ``country``: crisis lines first, then abuse and poison lines."""
    found = _country(country)
    order = _ORDER["all"]
    services = sorted(found.services,
                      key=lambda s: order.index(s.for_) if s.for_ in order else len(order))
    return found.model_copy(update={"services": services})


def emergency_line(found: CountryResources, kind: Situation = "self") -> str:
    """The first line of help: what to call, in words that fit the situation."""
    if kind == "medical":
        return f"Call {found.emergency} now for an ambulance."
    if kind == "danger":
        return f"If you are in danger now, call {found.emergency}."
    return f"If you are in danger or hurt, call {found.emergency} now."


def resource_lines(found: CountryResources, kind: Situation = "self") -> list[tuple[str, str]]:
    """The help, in the order every place shows it (the crisis panel, the conversation,
    the command line, the export): the emergency line, then one line per service. Each
    line is (the part to stress, the rest): the emergency line is all stress, a service
    is ("name: ", "how · hours")."""
    lines = [(emergency_line(found, kind), "")]
    for service in found.services:
        hours = f" · {service.hours}" if service.hours else ""
        lines.append((f"{service.name}: ", f"{service.how}{hours}"))
    return lines


def format_resources(found: CountryResources, kind: Situation = "self",
                     markdown: bool = False) -> str:
    """The help as text: plain for the line-mode chat and the CLI; with ``markdown``, for
    the conversation and the export (the emergency line in bold, then a list)."""
    (first, _), *services = resource_lines(found, kind)
    if markdown:
        return "\n".join([f"**{first}**", "", *(f"- {lead}{rest}" for lead, rest in services)])
    return "\n".join([first, *(f"  • {lead}{rest}" for lead, rest in services)])
