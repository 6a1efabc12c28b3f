"""What the companion tells the UI while it handles a message."""

from __future__ import annotations

from dataclasses import dataclass

from app.insights.recall import RecalledItem
from app.safety import RiskAssessment
from app.safety.resources import CountryResources, Situation
from app.store.records import Message, SafetyPlan


@dataclass(frozen=True)
class UserSaved:
    """The user's message is committed to the journal (with its risk level)."""

    message: Message
    risk: RiskAssessment


@dataclass(frozen=True)
class Crisis:
    """Crisis language (in the message, across the session, or in an answer to Haven's
    questions): show the services, the person's safety plan and these words at once. The
    model is not asked, and is not asked again in this session.

    ``text`` is what is stored in the conversation (the words with the services in them);
    ``words`` is the same without the services, for a panel that shows them on their own.
    """

    text: str
    resources: CountryResources
    assessment: RiskAssessment
    kind: Situation = "self"
    words: str = ""
    plan: SafetyPlan | None = None


@dataclass(frozen=True)
class FollowUp:
    """A message in a session that has reached crisis: Haven answers, not the model, with
    the services in view, and asks whether the person is safe."""

    text: str
    resources: CountryResources
    words: str = ""
    plan: SafetyPlan | None = None
    kind: Situation = "self"


@dataclass(frozen=True)
class ScreenerQuestion:
    """One of Haven's direct safety questions: show it with the answers Yes / No / Not sure
    (the person may also answer in their own words)."""

    question: str  # its id in prompts/safety/screener.toml
    text: str
    message: Message
    round: int = 1


@dataclass(frozen=True)
class ScreenerOver:
    """Haven's questions are over for now ("done" or "paused"): hide the answer buttons."""

    text: str
    outcome: str  # done | paused
    resources: CountryResources | None = None


@dataclass(frozen=True)
class CheckIn:
    """Softer signs: a caring check-in with the services, before Haven's direct questions.
    ``words`` is ``text`` without the services."""

    text: str
    resources: CountryResources
    assessment: RiskAssessment
    words: str = ""


@dataclass(frozen=True)
class NoModel:
    text: str


@dataclass(frozen=True)
class Recalled:
    """Earlier items from the journal were given to the model for this reply (issue 15).
    Show ``line`` quietly under the reply ("Haven remembered: your thought record of
    3 March"); each item has its ``kind``, ``ref_id`` and ``label``."""

    items: tuple[RecalledItem, ...]
    line: str


@dataclass(frozen=True)
class ReplyStarted:
    message: Message


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class ReplyReplaced:
    """The reply failed the safety check: show ``text`` instead of anything streamed.
    ``kind`` is "harm" (encouraged harm, or gave a method or dose: the services are shown)
    or "identity" (it claimed to be a person or a clinician)."""

    text: str
    resources: CountryResources
    categories: tuple[str, ...]
    kind: str = "harm"


@dataclass(frozen=True)
class ReplyDone:
    message: Message
    status: str  # complete | cancelled | replaced | error | crashed (the model is restarting)
    error: str | None = None


Event = (UserSaved | Crisis | FollowUp | CheckIn | ScreenerQuestion | ScreenerOver | NoModel
         | Recalled | ReplyStarted | Token | ReplyReplaced | ReplyDone)
