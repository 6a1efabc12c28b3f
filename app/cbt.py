"""The vocabulary of Haven's CBT records: thinking traps, and suggested names for emotions.

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


#: The longest name for a feeling that is kept ("a bit on edge about tomorrow" fits).
MAX_EMOTION_CHARS = 40


def normalise_emotion(name: str) -> str:
    """The person's own word (or few words) for a feeling, lowercased and trimmed.

    :data:`EMOTIONS` are suggestions, not a limit: "gutted" or "on edge" are kept as typed.
    Raises ValueError, in plain words, for a name with no letters, one with characters
    other than letters, spaces, hyphens and apostrophes, or one that is too long.
    """
    clean = " ".join(name.split()).lower()
    if not any(c.isalpha() for c in clean):
        raise ValueError(f"{name.strip()!r} is not a feeling: name it in a word or two, "
                         "e.g. anxious 60" if clean else "name the feeling in a word or two")
    if not all(c.isalpha() or c in " -'’" for c in clean):
        raise ValueError(f"{clean!r}: name a feeling in words (letters only), e.g. on edge 60")
    if len(clean) > MAX_EMOTION_CHARS:
        raise ValueError(f"{clean[:20]!r}…: a feeling's name can be up to "
                         f"{MAX_EMOTION_CHARS} characters")
    return clean
