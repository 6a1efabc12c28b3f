"""Normalise a message for the risk rules while remembering where each character came from.

The rules match lowercase, apostrophe-free, typo-corrected text ("im gonna kil myslef"
becomes "i am going to kill myself"). Evidence is reported as spans of the *original*
message, so every substitution keeps a map from normalised offsets back to original ones.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Normalised:
    text: str
    origin: list[int]  # origin[i] = index in the original text of normalised char i

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        if not self.origin:
            return 0, 0
        first = self.origin[min(start, len(self.origin) - 1)]
        last = self.origin[min(max(end - 1, start), len(self.origin) - 1)]
        return first, last + 1


def _substitute(text: str, origin: list[int], pattern: re.Pattern, repl: str, literal: bool):
    out: list[str] = []
    out_origin: list[int] = []
    last = 0
    for match in pattern.finditer(text):
        start, end = match.span()
        out.append(text[last:start])
        out_origin.extend(origin[last:start])
        replacement = repl if literal else match.expand(repl)
        out.append(replacement)
        if end > start:
            # map replacement char j to matched char j (the last one for longer replacements)
            span = origin[start:end]
            out_origin.extend(span[min(j, len(span) - 1)] for j in range(len(replacement)))
        else:
            anchor = origin[start] if start < len(origin) else (origin[-1] if origin else 0)
            out_origin.extend([anchor] * len(replacement))
        last = end
    if last == 0 and not out:
        return text, origin
    out.append(text[last:])
    out_origin.extend(origin[last:])
    return "".join(out), out_origin


class Normaliser:
    def __init__(self, steps: list[tuple[str, str]]) -> None:
        self._steps = [(re.compile(p), r, "\\" not in r) for p, r in steps]

    def __call__(self, raw: str) -> Normalised:
        # NFKC folds look-alike characters (full-width letters, ligatures) to plain ones;
        # lower() keeps lengths for the text people type (we map per character anyway).
        if raw.isascii():
            text, origin = raw.lower(), list(range(len(raw)))
        else:
            text_chars: list[str] = []
            origin = []
            for index, char in enumerate(raw):
                folded = unicodedata.normalize("NFKC", char).lower()
                text_chars.append(folded)
                origin.extend([index] * len(folded))
            text = "".join(text_chars)
        for pattern, repl, literal in self._steps:
            text, origin = _substitute(text, origin, pattern, repl, literal)
        return Normalised(text=text, origin=origin)
