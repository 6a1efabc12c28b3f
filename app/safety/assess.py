"""``assess_risk``: the deterministic check every user message passes before the model.

Two halves, both independent of the chat model:

- the **rules** (``prompts/safety/rules.toml``): reviewed patterns with negation, idiom and
  past-tense handling; a match is explainable to the word;
- the **trained model** (:mod:`app.safety.classifier`): a linear model over words,
  character n-grams, lexicon constructs and the rule matches, which holds on wording
  the rules never saw.

The level is the higher of the two, except that a rule's crisis needs the model's
agreement to stay a crisis (see RULE_CRISIS_AGREEMENT). A long message is also scored in windows of a few
sentences, so one sentence of crisis inside a page of ordinary news is not diluted.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from app.safety.classifier import RiskModel, risk_model
from app.safety.features import FeatureSpace, rule_feature, sentences, windows
from app.safety.rules import LEVELS, Hit, RuleSet, default_rules, feature_hits

Level = Literal["none", "elevated", "crisis"]
MAX_CHARS = 100_000  # longer pastes are checked in full, in windows of this size
WINDOW_SENTENCES = 3  # a long message is also scored this many sentences at a time
# A rule's crisis counts as crisis when the model gives it at least this much weight;
# otherwise it is elevated (a rule's match never leaves a message at "none"). Rules marked
# firm (plain statements of intent: "I'm going to kill myself") need no agreement. Idioms the
# rules do not list ("I'm going to strangle my sister, she used my makeup") stay ordinary
# enough not to stop the conversation.
RULE_CRISIS_AGREEMENT = 0.2


@dataclass(frozen=True)
class Evidence:
    rule: str  # a rule id, or "model" for the trained check
    category: str
    level: Level
    start: int  # span in the original message
    end: int
    text: str
    features: tuple[str, ...] = ()  # for "model": the features that weighed most
    firm: bool = False  # a rule whose crisis stands whatever the model says


@dataclass(frozen=True)
class RiskAssessment:
    level: Level
    categories: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    # The model's most worrying reading over the message and its windows: the lowest
    # p(none), the highest p(elevated), the highest p(crisis).
    probabilities: tuple[float, float, float] | None = None

    @property
    def is_crisis(self) -> bool:
        return self.level == "crisis"

    @property
    def is_elevated(self) -> bool:
        return self.level == "elevated"


NO_RISK = RiskAssessment(level="none")


def _chunks(text: str) -> list[tuple[int, str]]:
    if len(text) <= MAX_CHARS:
        return [(0, text)]
    overlap = 500  # so a phrase across a chunk edge is still seen whole
    return [
        (offset, text[offset : offset + MAX_CHARS + overlap])
        for offset in range(0, len(text), MAX_CHARS)
    ]


def _model_readings(norm_text: str, hits: list[Hit], model: RiskModel):
    """The model's reading of the whole message and, if it is long, of each window of
    WINDOW_SENTENCES sentences: ((start, end) in the normalised text, Scored)."""
    spans = sentences(norm_text) or [(0, len(norm_text))]
    parts = [model.space.sentence_columns(norm_text[s:e]) for s, e in spans]
    starts = [s for s, _ in spans]
    for hit in feature_hits(hits):  # a rule's match counts in the sentence where it starts
        column = model.space.index.get(rule_feature(hit.rule.id, hit.level))
        if column is not None:
            at = max(bisect.bisect_right(starts, hit.start) - 1, 0)
            parts[at] = FeatureSpace.merge([parts[at], _one(column)])
    yield (spans[0][0], spans[-1][1]), model.score_columns(*FeatureSpace.merge(parts))
    for first, start, end in windows(spans, WINDOW_SENTENCES):
        window = FeatureSpace.merge(parts[first : first + WINDOW_SENTENCES])
        yield (start, end), model.score_columns(*window)


def _one(column: int):
    return np.array([column], dtype=np.int64), np.array([1.0])


def assess_risk(text: str, rules: RuleSet | None = None, model: RiskModel | None = None) -> RiskAssessment:
    """Return the risk level of ``text`` with the categories and spans that raised it."""
    if not text or not text.strip():
        return NO_RISK
    rules = rules or default_rules()
    model = model or risk_model()
    evidence: list[Evidence] = []
    best_p: tuple[float, float, float] | None = None
    for offset, chunk in _chunks(text):
        norm = rules.normalise(chunk)
        hits = rules.hits(norm)
        for hit in hits:
            start, end = norm.original_span(hit.start, hit.end)
            evidence.append(Evidence(hit.rule.id, hit.rule.category, hit.level,  # type: ignore[arg-type]
                                     offset + start, offset + end, chunk[start:end],
                                     firm=hit.rule.firm))
        for (s, e), scored in _model_readings(norm.text, hits, model):
            p = scored.probabilities
            best_p = p if best_p is None else (min(best_p[0], p[0]), max(best_p[1], p[1]),
                                               max(best_p[2], p[2]))
            if scored.level == "none":
                continue
            start, end = norm.original_span(s, e)
            evidence.append(Evidence("model", scored.category or "risk", scored.level,  # type: ignore[arg-type]
                                     offset + start, offset + end, chunk[start:end],
                                     scored.top_features))
    if best_p is not None and best_p[2] < RULE_CRISIS_AGREEMENT:
        evidence = [replace(e, level="elevated")
                    if e.rule != "model" and e.level == "crisis" and not e.firm else e
                    for e in evidence]
    if not evidence:
        return RiskAssessment(level="none", probabilities=best_p)
    level = max((e.level for e in evidence), key=LEVELS.index)
    top = [e for e in evidence if e.level == level]
    categories = tuple(dict.fromkeys(e.category for e in top))
    return RiskAssessment(level=level, categories=categories, evidence=tuple(evidence),
                          probabilities=best_p)
