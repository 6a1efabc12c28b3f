"""The words of a message that recall looks for, and the FTS5 query made of them.

Recall (issue 15) finds earlier items that share *meaningful* words with what the person
just wrote. Everyday words ("the", "feel", "today") would match nearly everything in a
CBT journal, so they are left out; what is left is matched with FTS5's porter stemmer
(so "worried" finds "worry") and ranked with BM25 in :meth:`Journal.recall`. An item
counts as relevant only if it shares enough of those words (:func:`enough_shared`):
one shared word is a coincidence in a long message, not a theme.
"""

from __future__ import annotations

import re
from functools import lru_cache

#: Words too common to say what a message is about (English function words, and the
#: words every entry in a CBT journal uses). Lowercase, apostrophes removed.
_STOPWORDS = """
a about above after again against ago all almost also always am an and any anyone anything
are around as at away back bad be because been before being below best better between big
bit both but by can cant could couldnt day days did didnt do does doesnt doing done dont down
during each else even ever every everyone everything feel feeling feelings feels felt few
for from get gets getting give go goes going gone good got great had hadnt has hasnt have help
helped helpful helping helps
havent having he hed hell her here hers herself hes him himself his how i id if ill im in
into is isnt it its itself ive just keep kind know last least less let like little lot lots
made make makes making many may me maybe mean might mine more most much must my myself need
needs never new next no nor not nothing now of off oh ok okay on once one only or other
others our ours ourselves out over own pretty quite rather really right said same say says
see seem seems she shes should shouldnt since so some someone something sometimes soon still
such sure take talk talked talking tell than thank thanks that thats the their theirs them
themselves then there theres these they theyd theyll theyre theyve thing things think
thinking thought thoughts this those though through time times to today too tried try
trying under until up us very want wanted wants was wasnt way we week wed well went were
werent weve what whats when where which while who whole whom whos why will with without
wont would wouldnt yeah yes yesterday yet you youd youll your youre yours yourself youve
"""
STOPWORDS = frozenset(_STOPWORDS.split())

#: At most this many words of a message are looked for (the longest: usually the most telling).
MAX_TERMS = 24

_WORD = re.compile(r"[^\W\d_](?:[^\W_]|['’])*", flags=re.UNICODE)


@lru_cache(maxsize=8192)  # recall stems every word of each candidate item, every turn
def _stem(word: str) -> str:
    """A crude stem, only to count "worried" and "worry" as one shared word (FTS5's
    porter stemmer does the matching itself)."""
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", ""),
                         ("ly", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: len(word) - len(suffix)] + repl
    return word


def terms(text: str) -> list[str]:
    """The meaningful words of ``text``, one per stem, longest first, at most :data:`MAX_TERMS`."""
    seen: dict[str, str] = {}
    for match in _WORD.finditer(text.lower()):
        word = match.group().replace("'", "").replace("’", "")
        if len(word) < 3 or word in STOPWORDS:
            continue
        seen.setdefault(_stem(word), word)
    words = sorted(seen.values(), key=len, reverse=True)[:MAX_TERMS]
    return words


def shared(words: list[str], text: str) -> int:
    """How many of ``words`` (from :func:`terms`) ``text`` has, by their crude stems."""
    stems = {_stem(w.replace("'", "").replace("’", "")) for w in _WORD.findall(text.lower())}
    return sum(1 for w in words if _stem(w) in stems)


def quoted(word: str) -> str:
    """One word as an FTS5 string (never FTS5 syntax)."""
    return '"' + word.replace('"', '""') + '"'


def any_of(words: list[str]) -> str:
    """An FTS5 query matching items with any of ``words``."""
    return " OR ".join(quoted(w) for w in words)


def enough_shared(shared: int, message_terms: int) -> bool:
    """Whether an item sharing ``shared`` meaningful words with a message of
    ``message_terms`` such words is about the same thing: two words, or one when the
    message has no more than two."""
    if shared <= 0:
        return False
    return shared >= 2 or message_terms <= 2
