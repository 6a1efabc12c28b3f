"""What the companion tells the UI while it handles a message."""

from __future__ import annotations

from dataclasses import dataclass

from app.safety import RiskAssessment
from app.safety.resources import CountryResources
from app.store.records import Message


@dataclass(frozen=True)
class UserSaved:
    """The user's message is committed to the journal (with its risk level)."""

    message: Message
    risk: RiskAssessment


@dataclass(frozen=True)
class Crisis:
    """Crisis language: show this text and these resources at once. The model is not asked."""

    text: str
    resources: CountryResources
    assessment: RiskAssessment


@dataclass(frozen=True)
class CheckIn:
    """Softer signs: a caring check-in with resources, shown before the model's reply."""

    text: str
    resources: CountryResources
    assessment: RiskAssessment


@dataclass(frozen=True)
class NoModel:
    text: str


@dataclass(frozen=True)
class ReplyStarted:
    message: Message


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class ReplyReplaced:
    """The reply failed the safety check: show ``text`` instead of anything streamed."""

    text: str
    resources: CountryResources
    categories: tuple[str, ...]


@dataclass(frozen=True)
class ReplyDone:
    message: Message
    status: str  # complete | cancelled | replaced | error | crashed (the model is restarting)
    error: str | None = None


Event = UserSaved | Crisis | CheckIn | NoModel | ReplyStarted | Token | ReplyReplaced | ReplyDone
