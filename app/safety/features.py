"""What the trained risk check sees in a message: the same features at training and at run time.

A message (already normalised by the rules' normaliser: lowercase, contractions spelled
out, common misspellings fixed) becomes named feature counts in four groups:

- ``w:`` words and word pairs ("kill myself", "took 40");
- ``c:`` character 3-5-grams inside words (typos, slang, word stems: "suicid", "overdo");
- ``x:`` constructs of the Suicide Risk Lexicon (``prompts/safety/lexicon.tsv``): how many
  terms of, say, "lethal means" or "burdensomeness" appear, whatever the exact words;
- ``r:`` which of Haven's reviewed rules matched, and at which level.

``scripts/train_risk_model.py`` calls :func:`feature_counts` to train; the shipped model
keeps, per group, the vocabulary and idf weights it learned, and :class:`FeatureSpace`
turns counts into the weighted, normalised vector the linear model scores. Pure Python
and numpy, deterministic.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache

import numpy as np

from app import resources

GROUPS = ("w", "c", "x", "r")
CHAR_NGRAMS = (3, 5)
_WORD = re.compile(r"[^\W_]+|\d+", re.UNICODE)
_SENTENCE = re.compile(r"[^.!?;\n]+[.!?;\n]*")


@lru_cache(maxsize=20_000)
def _char_ngrams(word: str) -> tuple[str, ...]:
    padded = f" {word} "
    low, high = CHAR_NGRAMS
    out = []
    for n in range(low, high + 1):
        if n > len(padded):
            break
        out.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return tuple(out)


class Lexicon:
    """Lexicon terms matched as whole words on normalised text."""

    def __init__(self, rows: Iterable[tuple[str, str]]) -> None:
        self._terms: dict[tuple[str, ...], list[str]] = defaultdict(list)
        self._lengths: dict[str, set[int]] = defaultdict(set)
        for construct, term in rows:
            words = tuple(_WORD.findall(term.lower()))
            if words and construct not in self._terms[words]:
                self._terms[words].append(construct)
                self._lengths[words[0]].add(len(words))

    def constructs(self, words: list[str]) -> Counter:
        found: Counter = Counter()
        for i, word in enumerate(words):
            for length in self._lengths.get(word, ()):
                for construct in self._terms.get(tuple(words[i : i + length]), ()):
                    found[construct] += 1
        return found


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    path = resources.prompts_dir() / "safety" / "lexicon.tsv"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            construct, _, term = line.partition("\t")
            rows.append((construct, term))
    return Lexicon(rows)


def sentences(normalised: str) -> list[tuple[int, int]]:
    """Spans of the sentences of a normalised message (word pairs never cross them)."""
    return [m.span() for m in _SENTENCE.finditer(normalised) if m.group().strip()]


def windows(spans: list[tuple[int, int]], size: int) -> list[tuple[int, int, int]]:
    """(first sentence, start, end) of each run of ``size`` consecutive sentences, when a
    message has more sentences than that (a shorter one is read only whole)."""
    if len(spans) <= size:
        return []
    return [(i, spans[i][0], spans[i + size - 1][1]) for i in range(len(spans) - size + 1)]


def sentence_counts(sentence: str) -> Counter:
    """The w:, c: and x: feature counts of one normalised sentence."""
    counts: Counter = Counter()
    words = _WORD.findall(sentence)
    for i, word in enumerate(words):
        counts["w:" + word] += 1
        if i:
            counts["w:" + words[i - 1] + " " + word] += 1
        for gram in _char_ngrams(word):
            counts["c:" + gram] += 1
    for construct, n in lexicon().constructs(words).items():
        counts["x:" + construct] += n
    return counts


def rule_feature(rule_id: str, level: str) -> str:
    return f"r:{rule_id}:{level}"


def feature_counts(normalised: str, rule_hits: Iterable[tuple[str, str]] = ()) -> Counter:
    """Named feature counts of a normalised message; ``rule_hits`` are (rule id, level).

    The sum of its sentences' counts, plus one per rule match: what training sees,
    and what :meth:`FeatureSpace.merge` rebuilds at run time from the same sentences.
    """
    counts: Counter = Counter()
    for start, end in sentences(normalised):
        counts.update(sentence_counts(normalised[start:end]))
    for rule_id, level in rule_hits:
        counts[rule_feature(rule_id, level)] += 1
    return counts


class FeatureSpace:
    """A trained vocabulary: feature name -> column, with idf weights and group weights.

    A message's vector: for each feature, (1 + log count) x idf, L2-normalised within its
    group and multiplied by the group's weight (sublinear tf-idf, as in scikit-learn).
    """

    def __init__(self, names: list[str], idf: np.ndarray, group_weights: dict[str, float]) -> None:
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}
        self.idf = idf.astype(np.float64)
        self.group_weights = group_weights
        self._groups = "".join(dict.fromkeys(name[0] for name in names)) or "w"
        self._group_of = np.array([self._groups.index(name[0]) for name in names], dtype=np.int64)
        self._group_weight = np.array([group_weights.get(g, 1.0) for g in self._groups])
        self._word_cache: dict[str, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self.names)

    def columns(self, counts: Counter) -> tuple[np.ndarray, np.ndarray]:
        """(columns, counts) of the known features in ``counts``."""
        pairs = [(self.index[name], n) for name, n in counts.items() if name in self.index]
        if not pairs:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        cols, ns = zip(*pairs, strict=True)
        return np.asarray(cols, dtype=np.int64), np.asarray(ns, dtype=np.float64)

    @staticmethod
    def merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Add up several (columns, counts), e.g. the sentences of a window."""
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        cols = np.concatenate([c for c, _ in parts])
        ns = np.concatenate([n for _, n in parts])
        unique, inverse = np.unique(cols, return_inverse=True)
        return unique, np.bincount(inverse, weights=ns)

    def weigh(self, cols: np.ndarray, ns: np.ndarray) -> np.ndarray:
        """The vector's values at ``cols`` (distinct columns) for counts ``ns``."""
        if not len(cols):
            return np.zeros(0)
        values = (1.0 + np.log(ns)) * self.idf[cols]
        groups = self._group_of[cols]
        norms = np.sqrt(np.bincount(groups, weights=values * values, minlength=len(self._groups)))
        norms[norms == 0] = 1.0
        return values * (self._group_weight[groups] / norms[groups])

    def sentence_columns(self, sentence: str) -> tuple[np.ndarray, np.ndarray]:
        """``columns(sentence_counts(sentence))``, faster: each word's columns are cached."""
        words = _WORD.findall(sentence)
        cols: list[int] = []
        index = self.index
        for i, word in enumerate(words):
            cols.extend(self._word_columns(word))
            if i:
                pair = index.get("w:" + words[i - 1] + " " + word)
                if pair is not None:
                    cols.append(pair)
        for construct, n in lexicon().constructs(words).items():
            column = index.get("x:" + construct)
            if column is not None:
                cols.extend([column] * n)
        if not cols:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        unique, counts = np.unique(np.asarray(cols, dtype=np.int64), return_counts=True)
        return unique, counts.astype(np.float64)

    def _word_columns(self, word: str) -> tuple[int, ...]:
        found = self._word_cache.get(word)
        if found is None:
            names = ["w:" + word] + ["c:" + gram for gram in _char_ngrams(word)]
            found = tuple(self.index[n] for n in names if n in self.index)
            if len(self._word_cache) < 50_000:
                self._word_cache[word] = found
        return found

    def vector(self, counts: Counter) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of the sparse feature vector of named ``counts``."""
        cols, ns = self.columns(counts)
        return cols, self.weigh(cols, ns)
