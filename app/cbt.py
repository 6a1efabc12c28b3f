"""The fixed vocabulary of Haven's CBT records: thinking traps and named emotions.

Keys here are what the journal stores; the plain-language definitions and examples
a person reads live in ``prompts/techniques/distortions.toml`` (a test keeps the two
in step).
"""

from __future__ import annotations

from enum import StrEnum


class Distortion(StrEnum):
    """Burns' list of thinking traps (cognitive distortions)."""

    ALL_OR_NOTHING = "all_or_nothing"
    OVERGENERALISATION = "overgeneralisation"
    MENTAL_FILTER = "mental_filter"
    DISQUALIFYING_THE_POSITIVE = "disqualifying_the_positive"
    MIND_READING = "mind_reading"
    FORTUNE_TELLING = "fortune_telling"
    CATASTROPHISING = "catastrophising"
    EMOTIONAL_REASONING = "emotional_reasoning"
    SHOULD_STATEMENTS = "should_statements"
    LABELLING = "labelling"
    PERSONALISATION_AND_BLAME = "personalisation_and_blame"


EMOTIONS: tuple[str, ...] = (
    "afraid", "angry", "annoyed", "anxious", "ashamed", "bored", "calm", "confident",
    "content", "disappointed", "embarrassed", "empty", "excited", "frustrated", "grateful",
    "guilty", "happy", "hopeful", "hopeless", "hurt", "irritable", "jealous", "lonely",
    "loved", "nervous", "numb", "overwhelmed", "panicky", "proud", "relieved", "resentful",
    "restless", "sad", "scared", "stressed", "tense", "tired", "worried",
)


def normalise_emotion(name: str) -> str:
    """Lowercase and trim; raises ValueError for a name not in :data:`EMOTIONS`."""
    clean = name.strip().lower()
    if clean not in EMOTIONS:
        raise ValueError(
            f"unknown emotion {name!r}; try one of: {', '.join(EMOTIONS)}"
        )
    return clean
