"""Pydantic models for every record the journal keeps. Nothing else leaves the store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError, field_validator

from app.cbt import Distortion, normalise_emotion

Role = Literal["user", "assistant", "system"]
MessageStatus = Literal["complete", "partial", "cancelled"]
RiskLevel = Literal["none", "elevated", "crisis"]


def new_id() -> str:
    return uuid.uuid4().hex


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """One fixed, sortable text form for every stored time (so ranges compare as text)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Timestamp = Annotated[datetime, PlainSerializer(iso_utc, return_type=str, when_used="json")]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    id: str = Field(default_factory=new_id)


class EmotionRating(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    intensity: int = Field(ge=0, le=100)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return normalise_emotion(value)


#: How strong a feeling named without a number is taken to be (said on screen, never silent).
DEFAULT_INTENSITY = 50


def parse_emotion(text: str, default: int | None = DEFAULT_INTENSITY) -> EmotionRating:
    """One feeling in the person's own words, with how strong it is (0-100) after it:
    'gutted 80%', 'on edge 70', 'anxious=60'. Without a number it is ``default`` (None: a
    number must be given). ValueError with one plain line when it cannot be read.

    The one reading of a named feeling: the mood screen, the thought record and
    ``haven mood add --emotion`` all use it."""
    words = text.replace("=", " ").split()
    intensity = default
    if len(words) > 1:
        if words[-1].removesuffix("%").isdigit():
            intensity = int(words[-1].removesuffix("%"))
            words = words[:-1]
        elif any(c.isdigit() for c in words[-1]):
            raise ValueError(f"{text.strip()!r}: give how strong as a number 0-100")
    if intensity is None:
        raise ValueError(f"{text.strip()!r}: give how strong as a number 0-100 after the "
                         "feeling (e.g. anxious=60)")
    if not 0 <= intensity <= 100:
        raise ValueError(f"{text.strip()!r}: how strong is a number from 0 to 100, "
                         f"not {intensity}")
    try:
        return EmotionRating(name=" ".join(words), intensity=intensity)
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from exc


def parse_emotions(text: str, default: int | None = DEFAULT_INTENSITY) -> list[EmotionRating]:
    """'gutted, anxious 60' (feelings separated by commas or semicolons) -> ratings; see
    :func:`parse_emotion`."""
    return [parse_emotion(part, default) for part in text.replace(";", ",").split(",")
            if part.split()]


class Session(Record):
    started: Timestamp = Field(default_factory=now_utc)
    ended: Timestamp | None = None
    title: str | None = None
    summary: str | None = None
    running_summary: str | None = None
    mood_before: int | None = Field(None, ge=0, le=10)
    mood_after: int | None = Field(None, ge=0, le=10)
    model: str | None = None
    next_step: str | None = None
    folded_until: str | None = Field(None, description="last message folded into running_summary")


class Message(Record):
    session_id: str
    role: Role
    content: str
    created: Timestamp = Field(default_factory=now_utc)
    status: MessageStatus = "complete"
    risk_level: RiskLevel = "none"


class MoodEntry(Record):
    created: Timestamp = Field(default_factory=now_utc)
    score: int = Field(ge=0, le=10)
    emotions: list[EmotionRating] = []
    note: str | None = None
    session_id: str | None = None


class AutomaticThought(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    hot: bool = False
    belief: int | None = Field(
        None, ge=0, le=100, description="how much the person believed this thought, 0-100")


class ThoughtRecord(Record):
    created: Timestamp = Field(default_factory=now_utc)
    updated: Timestamp = Field(default_factory=now_utc)
    session_id: str | None = None
    situation: str = ""
    moods: list[EmotionRating] = []
    automatic_thoughts: list[AutomaticThought] = []
    evidence_for: str = ""
    evidence_against: str = ""
    balanced_thought: str = ""
    balanced_belief: int | None = Field(None, ge=0, le=100)
    moods_after: list[EmotionRating] = []
    distortions: list[Distortion] = []

    @property
    def hot_thought(self) -> str | None:
        hot = [t.text for t in self.automatic_thoughts if t.hot]
        return hot[0] if hot else None


class Note(Record):
    created: Timestamp = Field(default_factory=now_utc)
    updated: Timestamp = Field(default_factory=now_utc)
    body: str = Field(min_length=1)

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a note cannot be empty")
        return value


class SafetyPlan(Record):
    """The person's own safety plan: the six steps of the Stanley-Brown intervention."""

    created: Timestamp = Field(default_factory=now_utc)
    updated: Timestamp = Field(default_factory=now_utc)
    warning_signs: str = ""
    coping: str = Field("", description="things I can do on my own")
    distractions: str = Field("", description="people and places that distract me")
    helpers: str = Field("", description="people I can ask for help")
    professionals: str = Field("", description="professionals and crisis lines")
    environment: str = Field("", description="making my surroundings safer")

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, k).strip() for k in
                       ("warning_signs", "coping", "distractions", "helpers", "professionals",
                        "environment"))


ScreenerAnswerKind = Literal["yes", "no", "not_sure", "declined", "unclear"]


class ScreenerAnswer(Record):
    """One of Haven's direct safety questions in a session, and the answer once given."""

    session_id: str
    round: int = Field(1, ge=1, description="the how-many-th time the questions were asked")
    question: str = Field(description="question id from prompts/safety/screener.toml")
    asked: Timestamp = Field(default_factory=now_utc)
    answer: ScreenerAnswerKind | None = None
    answered: Timestamp | None = None
    message_id: str | None = Field(None, description="the person's message that answered it")


SearchKind = Literal["message", "note", "thought_record", "mood", "session"]


class SearchHit(BaseModel):
    """One full-text match. ``snippet`` marks matches with \\x02 ... \\x03."""

    kind: SearchKind
    ref_id: str
    created: Timestamp
    snippet: str
    session_id: str | None = None

    MARK_START: ClassVar[str] = "\x02"
    MARK_END: ClassVar[str] = "\x03"

    def snippet_with(self, start: str, end: str) -> str:
        return self.snippet.replace(self.MARK_START, start).replace(self.MARK_END, end)

    def segments(self) -> list[tuple[str, bool]]:
        """The snippet as (text, is_match) pieces, for highlighting without markup."""
        out: list[tuple[str, bool]] = []
        rest = self.snippet
        while rest:
            start = rest.find(self.MARK_START)
            if start < 0:
                out.append((rest, False))
                break
            if start:
                out.append((rest[:start], False))
            end = rest.find(self.MARK_END, start)
            end = len(rest) if end < 0 else end
            out.append((rest[start + 1 : end], True))
            rest = rest[end + 1 :]
        return out


RecallKind = Literal["thought_record", "session", "note", "mood"]


class RecallHit(BaseModel):
    """One earlier item that recall found for a message (see :meth:`Journal.recall`).

    ``score`` is FTS5's BM25 (lower is more relevant); ``shared`` how many of the
    message's meaningful words the item has; ``record`` the item itself."""

    kind: RecallKind
    ref_id: str
    created: Timestamp
    session_id: str | None = None
    score: float
    shared: int
    record: ThoughtRecord | Session | Note | MoodEntry


class SessionStart(BaseModel):
    """How a session began: Haven's opening words, and whether the person wrote in it."""

    session_id: str
    started: Timestamp
    opening: str | None = Field(None, description="Haven's first message, if the session began with one")
    person_wrote: bool = False
