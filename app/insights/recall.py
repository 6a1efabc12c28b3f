"""Recall: the few earlier journal items that may help with what the person just wrote,
as a budgeted "from earlier" block for the model's prompt and labels the person sees.

:meth:`app.store.Journal.recall` finds the items (BM25 in the encrypted journal; never
from the current session or a session that reached crisis; an unrelated message finds
nothing). This module adds what is Haven's to decide: nothing is recalled for a message
at crisis level, an item whose own words are at crisis level is left out, each item gets
a short human label ("your thought record of 3 March"), and the block, written with the
words of ``prompts/insights.toml`` and ``prompts/memory_recall.md``, stays within a token
budget. Everything happens in memory; nothing is written anywhere.

The service calls :func:`recall` only when the ``recall`` setting is on, after the risk
check, and places :attr:`Recall.block` after the prompt's stable prefix.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from app.cbt import Distortion
from app.insights.words import RECALL_BLOCK, Words, words
from app.safety import assess_risk
from app.store.records import MoodEntry, Note, RecallHit, RecallKind, Session, ThoughtRecord

log = logging.getLogger(__name__)

#: Tokens the "from earlier" block may take in the prompt, by default (by the estimate,
#: which over-counts: about 290 real tokens, 7% of the default 4096-token context).
DEFAULT_BUDGET = 384
#: Items recalled at most, by default.
DEFAULT_LIMIT = 3
#: The longest a single field of an item may be in the prompt (characters), before clipping.
FIELD_CHARS = 280
_SMALLEST_FIELD = 40


def estimate_tokens(text: str) -> int:
    """A safe over-estimate of the tokens ``text`` takes: one per 3 bytes of UTF-8.

    Real tokenizers (Gemma, Llama, Qwen) spend about one token per 4 characters of
    English; a test checks the estimate against the real Gemma tokenizer."""
    return math.ceil(len(text.encode("utf-8")) / 3)


@dataclass(frozen=True)
class RecalledItem:
    kind: RecallKind
    ref_id: str
    created: datetime
    label: str
    """A short human label, e.g. "your thought record of 3 March"."""
    text: str
    """How the item is written into the prompt (inside :attr:`Recall.block`)."""


@dataclass(frozen=True)
class Recall:
    items: tuple[RecalledItem, ...] = ()
    block: str = ""
    """The "from earlier" text for the prompt; empty when nothing was recalled."""
    tokens: int = 0
    """:attr:`block`'s size by the token counter used (the estimate by default)."""
    budget: int = DEFAULT_BUDGET
    _words: Words | None = field(default=None, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def labels(self) -> list[str]:
        return [item.label for item in self.items]

    def note_line(self) -> str:
        """The quiet line under a reply: "Haven remembered: your thought record of 3 March"
        (empty when nothing was recalled)."""
        if not self.items:
            return ""
        w = self._words or words()
        labels = self.labels
        joined = labels[0] if len(labels) == 1 else (
            ", ".join(labels[:-1]) + w("recall.and") + labels[-1])
        return w("recall.remembered", items=joined)

    def prompt_text(self, message: str) -> str:
        """The person's newest turn as the model sees it: what they have just written,
        then the "from earlier" block. Unchanged when nothing was recalled.

        This is the only place recall touches the prompt. The system prompt and every
        earlier turn stay exactly as they were, and the block comes after the person's
        words, so the next request (where this turn is plain history) shares everything
        up to the block with this one: the model's cache of that prefix holds."""
        if not self.items:
            return message
        return f"{message}\n\n{self.block}"


def day_label(moment: datetime, tz: tzinfo | None = None, today: date | None = None) -> str:
    """ "3 March", or "3 March 2025" when not this year (in the person's time zone)."""
    local = moment.astimezone(tz)
    today = today or datetime.now(tz).date()
    text = f"{local.day} {local.strftime('%B')}"
    return text if local.year == today.year else f"{text} {local.year}"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:") + "…"


def _item_lines(w: Words, hit: RecallHit, trap_names: dict[Distortion, str], limit: int) -> list[str]:
    record = hit.record
    lines: list[str] = []

    def add(key: str, text: str | None, suffix: str = "", **values: object) -> None:
        if text and text.strip():
            lines.append(w(f"recall.prompt.{key}", text=_clip(text, limit), **values) + suffix)

    if isinstance(record, ThoughtRecord):
        hot = next((t for t in record.automatic_thoughts if t.hot), None)
        add("situation", record.situation)
        if hot is not None:
            add("hot", hot.text, w("recall.prompt.hot_belief", value=hot.belief)
                if hot.belief is not None else "")
        add("balanced", record.balanced_thought,
            w("recall.prompt.balanced_belief", value=record.balanced_belief)
            if record.balanced_belief is not None else "")
        add("traps", ", ".join(trap_names[d].lower() for d in record.distortions))
    elif isinstance(record, Session):
        add("summary", record.summary)
        add("step", record.next_step)
    elif isinstance(record, Note):
        add("note", record.body)
    elif isinstance(record, MoodEntry):
        add("mood", record.note, score=record.score)
    return lines


def _own_words(hit: RecallHit) -> str:
    """The person's (or the closing summary's) words an item would bring into the prompt."""
    record = hit.record
    if isinstance(record, ThoughtRecord):
        return "\n".join((record.situation, *(t.text for t in record.automatic_thoughts),
                          record.balanced_thought))
    if isinstance(record, Session):
        return "\n".join((record.summary or "", record.next_step or ""))
    if isinstance(record, Note):
        return record.body
    if isinstance(record, MoodEntry):
        return record.note or ""
    return ""


_LEVELS: dict[bytes, str] = {}
_LEVELS_KEPT = 1024


def _level(text: str) -> str:
    """The risk check's level for an item's words, remembered for the life of the process
    by a digest of the words (never the words themselves). The same words always get the
    same level, and an edited item has new words, so nothing here can go stale; the same
    few items come back turn after turn on a theme, and each check costs a few
    milliseconds."""
    key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
    level = _LEVELS.get(key)
    if level is None:
        level = assess_risk(text).level
        if len(_LEVELS) >= _LEVELS_KEPT:
            _LEVELS.clear()
        _LEVELS[key] = level
    return level


def recall(
    journal,
    message: str,
    *,
    session_id: str | None = None,
    risk_level: str | None = None,
    exclude_ids: Iterable[str] = (),
    budget: int = DEFAULT_BUDGET,
    limit: int = DEFAULT_LIMIT,
    count_tokens: Callable[[str], int] = estimate_tokens,
    tz: tzinfo | None = None,
    today: date | None = None,
    vocabulary: Words | None = None,
) -> Recall:
    """What to bring back from the journal for ``message`` (the person's latest message).

    ``session_id`` is the current session (never recalled from). ``risk_level`` is the
    risk check's level for ``message`` if the caller has it (``"crisis"`` recalls
    nothing; when not given, the message is checked here). ``exclude_ids`` are items
    already in the prompt (say, the last session, whose summary the prompt carries).
    The block, as measured by ``count_tokens``, never exceeds ``budget``; items that do
    not fit are clipped or left out, best first.
    """
    w = vocabulary or words()
    empty = Recall(budget=budget, _words=w)
    level = risk_level if risk_level is not None else assess_risk(message).level
    if level == "crisis" or budget <= 0:
        return empty
    hits = journal.recall(message, session_id=session_id, exclude_ids=set(exclude_ids),
                          limit=limit + 2)
    frame = w(RECALL_BLOCK, items="")
    used = count_tokens(frame)
    items: list[RecalledItem] = []
    chunks: list[str] = []
    for hit in hits:
        if len(items) >= limit:
            break
        if _level(_own_words(hit)) == "crisis":
            continue  # the person's own words at crisis level never go back into a prompt
        label = w(f"recall.{hit.kind}", date=day_label(hit.created, tz, today))
        heading = w("recall.prompt.heading", label=label)
        cap = FIELD_CHARS
        while cap >= _SMALLEST_FIELD:
            lines = _item_lines(w, hit, w.trap_names, cap)
            text = "\n".join([heading, *lines])
            cost = count_tokens("\n" + text)
            if lines and used + cost <= budget:
                break
            cap //= 2
        else:
            continue
        used += cost
        chunks.append(text)
        items.append(RecalledItem(kind=hit.kind, ref_id=hit.ref_id, created=hit.created,
                                  label=label, text=text))
    while items:
        block = w(RECALL_BLOCK, items="\n".join(chunks))
        tokens = count_tokens(block)
        if tokens <= budget:  # (a real tokenizer may count the whole a little differently)
            return Recall(items=tuple(items), block=block, tokens=tokens, budget=budget, _words=w)
        items.pop()
        chunks.pop()
    return empty


def for_reply(journal, settings, session_id: str | None, message: str) -> Recall:
    """Recall for the model's next reply, as the companion asks for it: nothing when the
    person turned recall off (``settings.recall``), never from the current session, and
    not the last ended session (the prompt's memory already carries its summary and step).

    A failure here never stops a reply: it is logged (without any of the person's words)
    and the reply goes ahead without recall."""
    if not getattr(settings, "recall", True):
        return Recall()
    try:
        last = journal.last_ended_session()
        exclude = {last.id} if last is not None else set()
        return recall(journal, message, session_id=session_id, exclude_ids=exclude)
    except Exception as exc:  # noqa: BLE001 - recall is a help, never a reason not to reply
        log.warning("recall failed (%s); replying without it", type(exc).__name__)
        return Recall()
