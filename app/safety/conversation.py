"""``assess_conversation``: risk judged across a session, not only per message.

"I've been saving them." … "about 60 now." … "friday" is a crisis although no single
message is. The session's level is at least the highest level of any one message (a later
"forget it, I'm fine" never lowers an earlier current plan), and the messages are also
judged together, so a plan told in pieces is seen whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from app.safety.assess import NO_RISK, RiskAssessment, assess_risk
from app.safety.classifier import RiskModel
from app.safety.encoder import RiskEncoder
from app.safety.rules import LEVELS

JOINER = "\n"
JOINT_CHARS = 6_000  # the joint reading covers the latest messages up to about this much text


@lru_cache(maxsize=1024)
def _assess_one(text: str) -> RiskAssessment:
    """assess_risk is deterministic, and a session is re-judged at every new message."""
    return assess_risk(text)


def _higher(a: RiskAssessment, b: RiskAssessment) -> RiskAssessment:
    return b if LEVELS.index(b.level) > LEVELS.index(a.level) else a


def recent_messages(messages: Sequence[str]) -> list[str]:
    """The latest messages, up to about JOINT_CHARS of text (always the last one)."""
    recent: list[str] = []
    size = 0
    for text in reversed(messages):
        if recent and size + len(text) > JOINT_CHARS:
            break
        recent.insert(0, text)
        size += len(text) + 1
    return recent


def reading_texts(messages: Sequence[str]) -> list[str]:
    """What :func:`readings` reads: each message, then the latest ones (up to JOINT_CHARS)
    joined, when there are several (the risk encoder is trained on the same texts)."""
    recent = recent_messages(messages)
    return [*messages, *([JOINER.join(recent)] if len(recent) > 1 else [])]


def readings(messages: Sequence[str], model: RiskModel | None = None,
             encoder: RiskEncoder | None = None) -> list[RiskAssessment]:
    """Each message judged alone, then the latest ones judged together."""
    shipped = model is None and encoder is None  # only the shipped check's readings are kept
    found = [_assess_one(text) if shipped else assess_risk(text, model=model, encoder=encoder)
             for text in messages]
    joint = reading_texts(messages)[len(messages):]  # the latest messages together, if several
    return found + [assess_risk(text, model=model, encoder=encoder) for text in joint]


def assess_conversation(messages: Sequence[str], model: RiskModel | None = None,
                        encoder: RiskEncoder | None = None) -> RiskAssessment:
    """The risk of a session from the person's messages in order (oldest first): the
    highest of its :func:`readings`, so each message's own level always counts and pieces
    of a plan add up."""
    found = NO_RISK
    for reading in readings(messages, model, encoder):
        found = _higher(found, reading)
    return found
