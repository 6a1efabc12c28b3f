"""The six steps of a personal safety plan (Stanley-Brown), from
``prompts/safety/safety_plan.toml``, and how a plan reads as text."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache

from app import resources
from app.safety.rules import RulesError

STEP_KEYS = ("warning_signs", "coping", "distractions", "helpers", "professionals", "environment")


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    hint: str


@dataclass(frozen=True)
class PlanText:
    title: str
    intro: str
    steps: tuple[Step, ...]


@lru_cache(maxsize=1)
def plan_text() -> PlanText:
    path = resources.prompts_dir() / "safety" / "safety_plan.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        steps = tuple(Step(s["key"], s["title"], s["hint"]) for s in data["steps"])
        found = PlanText(title=data["title"], intro=data["intro"], steps=steps)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise RulesError(f"the safety plan steps {path} cannot be loaded: {exc}") from exc
    if tuple(s.key for s in steps) != STEP_KEYS:
        raise RulesError(f"{path}: the steps must be {', '.join(STEP_KEYS)}, in that order")
    return found


def filled_steps(plan) -> list[tuple[Step, str]]:
    """(step, what the person wrote) for every step they filled in, in order."""
    if plan is None:
        return []
    out = []
    for step in plan_text().steps:
        value = (getattr(plan, step.key, "") or "").strip()
        if value:
            out.append((step, value))
    return out


def plan_markdown(plan, heading: str = "##") -> str:
    """The plan as Markdown (the export, the conversation); '' when nothing is written."""
    steps = filled_steps(plan)
    if not steps:
        return ""
    lines = [f"{heading} {plan_text().title}", ""]
    for step, value in steps:
        lines += [f"**{step.title}**", ""]
        lines += [line if line.strip() else "" for line in value.splitlines()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def plan_plain(plan) -> str:
    """The plan as plain text for the terminal; '' when nothing is written."""
    steps = filled_steps(plan)
    if not steps:
        return ""
    lines = [plan_text().title]
    for step, value in steps:
        lines.append(f"  {step.title}")
        lines += [f"    {line}" for line in value.splitlines() if line.strip()]
    return "\n".join(lines)
