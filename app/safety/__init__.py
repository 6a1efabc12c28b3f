"""Safety, independent of the model: the risk check, crisis resources, the reply check.

Contract: ``app.safety.assess_risk(text)`` returns an object whose ``.level`` is one of
``"none"``, ``"elevated"``, ``"crisis"``; ``assess_conversation(messages)`` returns the same
type for a whole session (the person's messages, oldest first).
"""

from app.safety.assess import Evidence, RiskAssessment, assess_risk
from app.safety.conversation import assess_conversation
from app.safety.output_check import ReplyCheck, check_reply
from app.safety.prepare import prepare_risk_check
from app.safety.resources import CrisisService, resources_for

__all__ = [
    "CrisisService",
    "Evidence",
    "ReplyCheck",
    "RiskAssessment",
    "assess_conversation",
    "assess_risk",
    "check_reply",
    "prepare_risk_check",
    "resources_for",
]
