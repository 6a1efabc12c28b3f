"""Days as people type them (YYYY-MM-DD, local), for the command line and the export form."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


class DayError(ValueError):
    """A day that is not a date, or a range the wrong way round (one plain sentence)."""


def parse_day(text: str) -> datetime:
    """YYYY-MM-DD (local day) -> an aware datetime at the start of that day."""
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise DayError(f"{text!r} is not a date like 2026-11-23") from exc
    return datetime(day.year, day.month, day.day).astimezone().astimezone(UTC)


def parse_day_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """From/to days (YYYY-MM-DD, both inclusive) -> [start, end) times; checks their order."""
    start = parse_day(since) if since else None
    end = parse_day(until) + timedelta(days=1) if until else None
    if start and end and start >= end:
        raise DayError("the first day must be on or before the last day")
    return start, end
