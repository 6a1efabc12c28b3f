"""``assess_risk``: the deterministic check every user message passes before the model.

Three readers, none of them the chat model:

- the **rules** (``prompts/safety/rules.toml``): reviewed patterns with negation, idiom and
  past-tense handling; a match is explainable to the word;
- the **linear model** (:mod:`app.safety.classifier`): words, character n-grams, lexicon
  constructs and the rule matches;
- the **encoder** (:mod:`app.safety.encoder`): a small fine-tuned sentence encoder that
  reads meaning, so a crisis in words nobody wrote down is still seen. Its reading is
  averaged into the linear model's; it never decides alone.

The level is the highest of what they find, except that a rule's crisis needs the linear
model's agreement to stay a crisis (see RULE_CRISIS_AGREEMENT). A long message is also read
in windows of a few sentences, so one sentence of crisis inside a page of ordinary news is
not diluted.
"""

from __future__ import annotations

import bisect
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from app.safety.classifier import RiskModel, risk_model
from app.safety.encoder import RiskEncoder, encoder_reading
from app.safety.features import FeatureSpace, rule_feature, sentences, windows
from app.safety.normalise import Normalised
from app.safety.rules import LEVELS, Hit, RuleSet, default_rules, feature_hits

Level = Literal["none", "elevated", "crisis"]
MAX_CHARS = 100_000  # longer pastes are checked in full, in windows of this size
WINDOW_SENTENCES = 3  # a long message is also scored this many sentences at a time
# A rule's crisis counts as crisis when the model gives it at least this much weight;
# otherwise it is elevated (a rule's match never leaves a message at "none"). Rules marked
# firm (plain statements of intent: "I'm going to kill myself") need no agreement. Idioms the
# rules do not list ("I'm going to strangle my sister, she used my makeup") stay ordinary
# enough not to stop the conversation. 0.08 since round 18 (0.2 before): a linear model
# trained on more writers is less sure of plain crises ("I feel suicidal" at 0.09 to 0.13),
# and 0.2 lowered them (decisions/round17.md).
RULE_CRISIS_AGREEMENT = 0.08


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


def _model_vectors(norm_text: str, hits: list[Hit], model: RiskModel):
    """What the linear model reads: the whole message and, if it is long, each window of
    WINDOW_SENTENCES sentences, as ((start, end) in the normalised text, columns, counts)."""
    spans = sentences(norm_text) or [(0, len(norm_text))]
    parts = [model.space.sentence_columns(norm_text[s:e]) for s, e in spans]
    starts = [s for s, _ in spans]
    for hit in feature_hits(hits):  # a rule's match counts in the sentence where it starts
        column = model.space.index.get(rule_feature(hit.rule.id, hit.level))
        if column is not None:
            at = max(bisect.bisect_right(starts, hit.start) - 1, 0)
            parts[at] = FeatureSpace.merge([parts[at], _one(column)])
    found = [((spans[0][0], spans[-1][1]), *FeatureSpace.merge(parts))]
    for first, start, end in windows(spans, WINDOW_SENTENCES):
        found.append(((start, end), *FeatureSpace.merge(parts[first : first + WINDOW_SENTENCES])))
    return found


def _one(column: int):
    return np.array([column], dtype=np.int64), np.array([1.0])


def _read_text(text: str, rules: RuleSet, model: RiskModel):
    """The rules' evidence, and what the linear model reads, chunk by chunk."""
    evidence: list[Evidence] = []
    read: list[tuple[int, str, Normalised, list]] = []
    for offset, chunk in _chunks(text):
        norm = rules.normalise(chunk)
        hits = rules.hits(norm)
        for hit in hits:
            start, end = norm.original_span(hit.start, hit.end)
            evidence.append(Evidence(hit.rule.id, hit.rule.category, hit.level,  # type: ignore[arg-type]
                                     offset + start, offset + end, chunk[start:end],
                                     firm=hit.rule.firm))
        read.append((offset, chunk, norm, _model_vectors(norm.text, hits, model)))
    return evidence, read


_SECOND_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="haven-risk-check")


def assess_risk(text: str, rules: RuleSet | None = None, model: RiskModel | None = None,
                encoder: RiskEncoder | None = None) -> RiskAssessment:
    """Return the risk level of ``text`` with the categories and spans that raised it."""
    if not text or not text.strip():
        return NO_RISK
    rules = rules or default_rules()
    if rules.is_closing(text):  # "bye haven, see you tomorrow" and nothing else
        return NO_RISK
    model = model or risk_model()
    # The encoder reads the whole text once; each of the linear model's readings (the
    # text, its windows) is then averaged with it. The rules and the linear model's
    # features are worked out in a second thread meanwhile: onnxruntime lets go of the GIL
    # while it runs, so the two overlap and a person waits for the slower one only.
    # A model trained without the encoder never asks for it.
    if model.stack_weight > 0:
        pending = _SECOND_THREAD.submit(_read_text, text, rules, model)
        encoded = encoder_reading(text, model.encoder_tokens, encoder)
        evidence, read = pending.result()
    else:
        encoded = None
        evidence, read = _read_text(text, rules, model)
    if encoded is None and model.stack_weight > 0:
        model = model.without_encoder()
    best_p: tuple[float, float, float] | None = None
    agreement = 0.0  # the linear model's own highest p(crisis), for RULE_CRISIS_AGREEMENT
    for offset, chunk, norm, vectors in read:
        for (s, e), cols, counts in vectors:
            scored = model.score_columns(cols, counts, encoded)
            p = scored.probabilities
            agreement = max(agreement, scored.linear[2])
            best_p = p if best_p is None else (min(best_p[0], p[0]), max(best_p[1], p[1]),
                                               max(best_p[2], p[2]))
            if scored.level == "none":
                continue
            start, end = norm.original_span(s, e)
            evidence.append(Evidence("model", scored.category or "risk", scored.level,  # type: ignore[arg-type]
                                     offset + start, offset + end, chunk[start:end],
                                     scored.top_features))
    if best_p is not None and agreement < RULE_CRISIS_AGREEMENT:
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
