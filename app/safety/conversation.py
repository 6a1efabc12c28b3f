"""``assess_conversation``: risk judged across a session, not only per message.

"I've been saving them." … "about 60 now." … "friday" is a crisis although no single
message is. The session's level is at least the highest level of any one message (a later
"forget it, I'm fine" never lowers an earlier current plan), and the messages are also
judged together, so a plan told in pieces is seen whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.safety.assess import NO_RISK, RiskAssessment, assess_risk
from app.safety.rules import LEVELS

JOINER = "\n"


def _higher(a: RiskAssessment, b: RiskAssessment) -> RiskAssessment:
    return b if LEVELS.index(b.level) > LEVELS.index(a.level) else a


def assess_conversation(messages: Sequence[str]) -> RiskAssessment:
    """The risk of a session from the person's messages in order (oldest first)."""
    found = NO_RISK
    for text in messages:
        found = _higher(found, assess_risk(text))
        if found.level == "crisis":
            return found
    if len(messages) > 1:
        found = _higher(found, assess_risk(JOINER.join(messages)))
    return found
