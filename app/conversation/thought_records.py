"""Thought records drafted by the model from the conversation, as structured output.

The model's output is constrained by a JSON-schema grammar (llama.cpp), then validated
by pydantic and turned into a :class:`ThoughtRecord` for the person to edit. It is saved
only when they accept it. Invalid or empty output gives an empty form, never a crash.
"""

from __future__ import annotations

import json
import logging

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.cbt import EMOTIONS, Distortion
from app.llm import Engine, GenerationParams, Turn
from app.store.records import AutomaticThought, EmotionRating, ThoughtRecord

log = logging.getLogger("haven.thought_records")


class _Mood(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    intensity: int


class _Thought(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str
    hot: bool = False


class DraftRecord(BaseModel):
    """The shape the model must produce (kept small so a small model can fill it)."""

    model_config = ConfigDict(extra="ignore")
    situation: str = ""
    moods: list[_Mood] = Field(default_factory=list)
    automatic_thoughts: list[_Thought] = Field(default_factory=list)
    evidence_for: str = ""
    evidence_against: str = ""
    balanced_thought: str = ""
    distortions: list[str] = Field(default_factory=list)


def draft_schema() -> dict:
    text = {"type": "string", "maxLength": 240}
    return {
        "type": "object",
        "properties": {
            "situation": text,
            "moods": {
                "type": "array",
                "maxItems": 4,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "enum": list(EMOTIONS)},
                        "intensity": {"type": "integer"},
                    },
                    "required": ["name", "intensity"],
                },
            },
            "automatic_thoughts": {
                "type": "array",
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {"text": {"type": "string", "maxLength": 200},
                                   "hot": {"type": "boolean"}},
                    "required": ["text", "hot"],
                },
            },
            "evidence_for": text,
            "evidence_against": text,
            "balanced_thought": text,
            "distortions": {
                "type": "array",
                "maxItems": 3,
                "items": {"type": "string", "enum": [d.value for d in Distortion]},
            },
        },
        "required": ["situation", "moods", "automatic_thoughts", "evidence_for",
                     "evidence_against", "balanced_thought", "distortions"],
    }


def to_thought_record(raw: str, session_id: str | None) -> ThoughtRecord:
    """Parse the model's JSON into a ThoughtRecord; anything unusable becomes an empty form."""
    try:
        draft = DraftRecord.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        log.info("thought record draft unusable (%s); offering an empty form", type(exc).__name__)
        return ThoughtRecord(session_id=session_id)
    moods = []
    for mood in draft.moods:
        if mood.name in EMOTIONS and all(m.name != mood.name for m in moods):
            moods.append(EmotionRating(name=mood.name, intensity=max(0, min(100, mood.intensity))))
    thoughts = [AutomaticThought(text=t.text.strip(), hot=t.hot) for t in draft.automatic_thoughts
                if t.text.strip()]
    if sum(t.hot for t in thoughts) > 1:  # at most one hot thought: keep the first
        first = next(i for i, t in enumerate(thoughts) if t.hot)
        thoughts = [t.model_copy(update={"hot": i == first}) for i, t in enumerate(thoughts)]
    valid = {d.value for d in Distortion}
    distortions = list(dict.fromkeys(Distortion(d) for d in draft.distortions if d in valid))
    return ThoughtRecord(
        session_id=session_id,
        situation=draft.situation.strip(),
        moods=moods,
        automatic_thoughts=thoughts,
        evidence_for=draft.evidence_for.strip(),
        evidence_against=draft.evidence_against.strip(),
        balanced_thought=draft.balanced_thought.strip(),
        distortions=distortions,
    )


def draft_thought_record(
    engine: Engine, instruction: str, turns: list[Turn], session_id: str | None
) -> ThoughtRecord:
    """Ask the model for a draft (blocking; call from a worker). Empty form on any failure."""
    if not turns:
        return ThoughtRecord(session_id=session_id)
    request = [*turns]
    if request[-1].role == "user":
        request[-1] = Turn("user", request[-1].content + "\n\n(Now draft the thought record.)")
    else:
        request.append(Turn("user", "Please draft the thought record from our conversation."))
    try:
        raw = engine.complete(
            instruction, request, GenerationParams(temperature=0.2, max_tokens=700),
            json_schema=draft_schema(),
        ).result()
    except Exception as exc:
        log.info("thought record draft failed (%s)", type(exc).__name__)
        return ThoughtRecord(session_id=session_id)
    return to_thought_record(raw, session_id)
