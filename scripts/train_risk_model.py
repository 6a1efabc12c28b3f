"""Train Haven's risk model: tests/data/risk (training lines only) -> app/safety/data/risk_model.npz

Usage: python scripts/train_risk_model.py [--sweep] [--oof FILE]

``--sweep`` prints the out-of-fold figures for every pair of thresholds; ``--oof FILE``
writes each training line's out-of-fold reading as JSON lines (for error analysis).

1. Every training line (scripts/risk_data.py: corpus/, extra/ and retired/ minus their
   test split) becomes feature counts exactly as ``assess_risk`` computes them; an ordinary
   line's sentence windows become ordinary rows too (see ``rows_of``).
2. Out-of-fold predictions, leaving out one writer's files at a time (two at a time, in
   forked processes: about 11 minutes on 2 cores), run through the real ``assess_risk``
   (rules + model + sentence windows). The two thresholds are chosen on these predictions
   by the policy below: never on the test split.
3. The encoder (scripts/train_risk_encoder.py) gives its own out-of-fold readings, three
   encoders each trained without a third of the writers, and is trained on every line;
   both are kept and reused while their inputs are unchanged (fine-tuning takes about 40
   minutes). The thresholds and the encoder's weight are chosen on the two readings stacked
   (app.safety.encoder.stack), by the same policy; the linear model's own thresholds are kept
   too, for a machine where the encoder cannot run.
4. The final model is fitted on every training line and written with its thresholds, the
   out-of-fold figures and a fingerprint of its inputs (a test fails when it is stale).

Deterministic: the same inputs give the same file. Needs the train extra (scikit-learn;
PyTorch, transformers and onnx only when the encoder must be fine-tuned again); Haven itself
reads the results with numpy and onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.modelhub.registry import sha256_of  # noqa: E402
from app.safety.assess import WINDOW_SENTENCES, assess_risk  # noqa: E402
from app.safety.classifier import FORMAT_VERSION, MODEL_FILE, RiskModel  # noqa: E402
from app.safety.conversation import JOINER, readings  # noqa: E402
from app.safety.encoder import ENCODER_FILE, stack  # noqa: E402
from app.safety.features import feature_counts, sentences, windows  # noqa: E402
from app.safety.rules import LEVELS, default_rules, feature_hits  # noqa: E402
from scripts.risk_data import Example, data_digest, training_examples  # noqa: E402
from scripts.train_risk_encoder import SETTINGS, encoder_readings  # noqa: E402

C = 8.0  # inverse regularisation of the logistic regressions
MIN_DF = 2  # a word or n-gram must appear in two training lines to count
GROUP_WEIGHTS = {"w": 1.0, "c": 1.0, "x": 1.0, "r": 1.0}
WINDOW_WEIGHT = 1.0  # an ordinary line's windows together weigh as much as the line
# Threshold policy, on out-of-fold predictions: the highest crisis recall (then elevated-or-
# higher recall) such that ordinary messages stay ordinary often enough.
MIN_NONE_KEPT = 0.85
MAX_NONE_AS_CRISIS = 0.04
# Ordinary sessions kept, on their own: single messages far outnumber sessions, and a
# reader that keeps more ordinary messages can hide one that flags many more ordinary
# sessions (round 16: 382 against 455 of 695 out of fold, under the two bars above). This
# is round 14's own out-of-fold figure (0.655), rounded down; measured on every ordinary
# training session, the twin-heavy files' too, since they are the sessions that open with
# a line that sounds like a crisis. Not on RETIRED's sessions (below).
MIN_SESSIONS_KEPT = 0.65
# Ordinary messages kept on every ordinary line the check was trained on before round 17,
# the twin-heavy files included: round 16b's own out-of-fold figure (0.8716) less 0.005,
# rounded up. The lines added in round 17 made the readers better at every point of the
# curve, yet under the bars above the old twin-heavy lines paid for it (decisions/round17.md);
# new writers must not cost the lines the check already held. Applies to the stacked reading
# (the linear model alone, a fallback, keeps the bars above).
MIN_HELD_KEPT = 0.867
# The bar is measured on the lines it was set on. Files written later as deliberately hard
# twins of risky lines (same words, ordinary meaning) teach the model, but would raise the
# bar by their hardness alone: on round 5's files it moved the crisis threshold up and cost
# crisis recall on unseen text (see the README); the later red-teams and twin-heavy files
# (za_ to zg_, and zk_ and zl_ of round 10) are of the same kind. Lines from files starting
# with these prefixes count for recall, not for the bar.
BAR_EXCLUDES = ("extra/y_", "extra/z_", "extra/za_", "extra/zb_", "extra/zc_", "extra/zd_",
                "extra/ze_", "extra/zf_", "extra/zg_", "extra/zk_", "extra/zl_", "retired/")
# The held-out sets trained on from round 17 were written after both bars were set, and
# are easier to keep ordinary than the lines the bars were set on (out of fold, 0.913
# against 0.865): counted in the bars, they let the thresholds fall and the old lines pay
# (round 17's first candidate, decisions/round17.md). They count for recall only.
RETIRED = "retired/"
GRID = [round(x, 3) for x in np.arange(0.05, 0.951, 0.025)]
FINE, FINE_SPAN = 0.005, 0.025  # then this step, this far either side of GRID's choice

# Display names shared with the rules (the crisis texts and resources key on them).
CATEGORY_NAMES = {
    "suicide": "suicide", "method_seeking": "suicide", "passive_ideation": "suicide",
    "self_harm": "self-harm", "harm_to_others": "harm to others",
    "danger_from_others": "abuse or violence at home", "medical_emergency": "medical emergency",
    "hopelessness": "hopelessness", "burden_entrapment": "burdensomeness",
    "past_or_resisted": "past or resisted risk", "concern_for_other": "worry about someone else",
    "substance_coping": "drinking or drugs to cope", "intrusive_thoughts": "intrusive thoughts",
}
INPUTS = ["app/safety/features.py", "app/safety/assess.py", "app/safety/normalise.py",
          "app/safety/rules.py", "app/safety/conversation.py", "app/safety/classifier.py",
          "app/safety/encoder.py", "prompts/safety/lexicon.tsv", "prompts/safety/rules.toml",
          "scripts/train_risk_model.py", "scripts/train_risk_encoder.py", "scripts/risk_data.py"]
# The encoder's share of each reading (app.safety.encoder.stack): the one of these with the
# best out-of-fold figures under the policy.
STACK_WEIGHTS = (0.3, 0.5, 0.7)


def inputs_digest() -> str:
    """A fingerprint of the data and of everything that turns it into features."""
    digest = hashlib.sha256(data_digest().encode())
    for name in INPUTS:
        digest.update(name.encode())
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def message_text(example: Example) -> str:
    """What a line is trained on: a session's messages joined as ``assess_conversation``
    joins them for its joint reading."""
    return JOINER.join(example.messages)


def counts_of(text: str) -> Counter:
    rules = default_rules()
    norm = rules.normalise(text)
    hits = feature_hits(rules.hits(norm))
    return feature_counts(norm.text, [(h.rule.id, h.level) for h in hits])


@dataclass(frozen=True)
class Row:
    """One training row: a whole line, or a window of an ordinary line."""

    counts: Counter
    label: str
    category: str
    source: str
    weight: float
    whole: bool  # False for a window


def rows_of(example: Example) -> list[Row]:
    """A line, and, for an ordinary line longer than a window, each of its windows.

    ``assess_risk`` also reads long messages a few sentences at a time; every window of an
    ordinary message is ordinary too, so the model learns that as well. A line's windows
    share the weight of one line.
    """
    rules = default_rules()
    norm = rules.normalise(message_text(example))
    hits = [(h, (h.rule.id, h.level)) for h in feature_hits(rules.hits(norm))]
    rows = [Row(feature_counts(norm.text, [k for _, k in hits]), example.label, example.category,
                example.source, 1.0, True)]
    spans = windows(sentences(norm.text), WINDOW_SENTENCES) if example.label == "none" else []
    for _, start, end in spans:
        inside = [k for h, k in hits if start <= h.start < end]
        rows.append(Row(feature_counts(norm.text[start:end], inside), "none", example.category,
                        example.source, WINDOW_WEIGHT / len(spans), False))
    return rows


def fit(rows: list[Row], thresholds: dict[str, float], with_categories: bool = True) -> RiskModel:
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    counts = [r.counts for r in rows]
    df: Counter = Counter()
    for row in rows:
        if row.whole:  # the vocabulary and idf come from whole lines
            df.update(row.counts.keys())
    n = sum(row.whole for row in rows)
    names = sorted(k for k, v in df.items() if v >= MIN_DF or k[0] in "xr")
    idf = np.array([math.log((1 + n) / (1 + df[k])) + 1 for k in names])
    meta = {"format": FORMAT_VERSION, "version": "", "group_weights": GROUP_WEIGHTS,
            "categories": ["risk"], "thresholds": thresholds}
    shell = RiskModel(meta, names, {"idf": idf, "coef": np.zeros((2, len(names))),
                                    "intercept": np.zeros(2), "category_coef": np.zeros((1, len(names))),
                                    "category_intercept": np.zeros(1)})
    row_ids, cols, vals = [], [], []
    for i, c in enumerate(counts):
        columns, values = shell.space.vector(c)
        row_ids.extend([i] * len(columns))
        cols.extend(columns.tolist())
        vals.extend(values.tolist())
    X = csr_matrix((vals, (row_ids, cols)), shape=(len(rows), len(names)))
    y = np.array([LEVELS.index(row.label) for row in rows])
    coef, intercept = [], []
    for target in (y > 0, y == 2):  # any risk; crisis
        model = LogisticRegression(C=C, max_iter=5000)
        model.fit(X, target.astype(int), sample_weight=_weights(target, rows))
        coef.append(model.coef_[0])
        intercept.append(model.intercept_[0])
    arrays = {"idf": idf, "coef": np.array(coef), "intercept": np.array(intercept),
              "category_coef": np.zeros((1, len(names))), "category_intercept": np.zeros(1)}
    if with_categories:
        risky = np.where(y > 0)[0]
        shown = [CATEGORY_NAMES.get(rows[i].category, "suicide") for i in risky]
        category_model = LogisticRegression(C=C, max_iter=5000, class_weight="balanced")
        category_model.fit(X[risky], shown)
        meta["categories"] = [str(c) for c in category_model.classes_]
        arrays.update(category_coef=category_model.coef_, category_intercept=category_model.intercept_)
    return RiskModel(meta, names, arrays)


def _weights(target: np.ndarray, rows: list[Row]) -> np.ndarray:
    """Each writer's file weighs the same, and so do the two classes (balanced)."""
    per_source: Counter = Counter()
    for row in rows:
        per_source[row.source] += row.weight
    weights = np.array([row.weight / per_source[row.source] for row in rows])
    for value in (True, False):
        chosen = target == value
        weights[chosen] *= 0.5 / weights[chosen].sum()
    return weights * len(rows)


def left_out_together(source: str) -> str:
    """The unit out-of-fold leaves out at once: a source file, with a writer's messages,
    sessions and questions files (``h4a_messages``, ``h4a_sequences`` …) counted as one."""
    return re.sub(r"_(messages|sequences|questions)(?=\.tsv$)", "", source)


_FOLD_INPUTS: tuple[list[Example], list[Row]] = ([], [])  # read by the forked workers


def _fold_readings(unit: str) -> list[tuple[int, list[tuple[str, tuple]]]]:
    from threadpoolctl import threadpool_limits

    examples, rows = _FOLD_INPUTS
    never = {"crisis": 2.0, "elevated": 2.0}  # the fold models report probabilities only
    with threadpool_limits(1):
        model = fit([r for r in rows if left_out_together(r.source) != unit], never,
                    with_categories=False)
    out = []
    for i, example in enumerate(examples):
        if left_out_together(example.source) == unit:
            found = (readings(example.messages, model) if example.is_sequence
                     else [assess_risk(example.text, model=model)])
            out.append((i, [(r.level, r.probabilities) for r in found]))
    return out


def out_of_fold(examples: list[Example], rows: list[Row], jobs: int = 2) -> list[list[tuple[str, tuple]]]:
    """Each line's readings (rule-only level, model probabilities), from a model that never
    saw its writer's file: one for a message, several for a session (as
    ``assess_conversation``). The folds run ``jobs`` at a time, in forked processes."""
    global _FOLD_INPUTS
    _FOLD_INPUTS = (examples, rows)
    units = sorted({left_out_together(e.source) for e in examples})
    out: list = [None] * len(examples)
    with get_context("fork").Pool(jobs) as pool:
        for found in pool.imap_unordered(_fold_readings, units):
            for i, reading in found:
                out[i] = reading
    return out


def decide(reading_list: list[tuple[str, tuple]], crisis: float, elevated: float) -> str:
    """The level the app would give, for thresholds (crisis, elevated)."""
    level = 0
    for rule_level, p in reading_list:
        level = max(level, LEVELS.index(rule_level))
        if p is None:
            continue
        if p[2] >= crisis:
            level = 2
        elif 1.0 - p[0] >= elevated:
            level = max(level, 1)
    return LEVELS[level]


def figures(labels: list[str], predicted: list[str]) -> dict[str, float]:
    def share(truth: str, ok: set[str]) -> float:
        picked = [p for t, p in zip(labels, predicted, strict=True) if t == truth]
        return sum(p in ok for p in picked) / max(len(picked), 1)

    return {
        "crisis_recall": share("crisis", {"crisis"}),
        "crisis_flagged": share("crisis", {"crisis", "elevated"}),
        "elevated_or_higher": share("elevated", {"crisis", "elevated"}),
        "none_kept": share("none", {"none"}),
        "none_as_crisis": share("none", {"crisis"}),
    }


def choose_thresholds(labels: list[str], oof: list, show: bool = False,
                      on_bar: list[bool] | None = None, sessions: list[bool] | None = None,
                      held: list[bool] | None = None):
    """The policy on GRID, then again in FINE steps around the pair it chose: the bar sits
    so close to the figures that a whole GRID step can cost a point of crisis recall."""
    coarse, _ = _best_on(labels, oof, GRID, GRID, show, on_bar, sessions, held)
    near = [round(x, 3) for x in np.arange(-FINE_SPAN, FINE_SPAN + 1e-9, FINE)]
    return _best_on(labels, oof, [round(coarse["crisis"] + d, 3) for d in near],
                    [round(coarse["elevated"] + d, 3) for d in near], False, on_bar, sessions, held)


def _best_on(labels, oof, crisis_grid, elevated_grid, show, on_bar, sessions=None, held=None):
    best = None
    held_ordinary = [r for r, label, old in zip(oof, labels, held or [False] * len(labels), strict=True)
                     if old and label == "none"]
    on_bar = on_bar or [True] * len(labels)
    ordinary_sessions = [r for r, label, session in zip(oof, labels, sessions or [False] * len(labels),
                                                        strict=True) if session and label == "none"]
    bar_labels = [label for label, counts in zip(labels, on_bar, strict=True) if counts]
    bar_oof = [r for r, counts in zip(oof, on_bar, strict=True) if counts]
    for crisis in crisis_grid:
        for elevated in elevated_grid:
            if elevated > crisis:
                continue
            f = figures(labels, [decide(r, crisis, elevated) for r in oof])
            bar = figures(bar_labels, [decide(r, crisis, elevated) for r in bar_oof])
            if show:
                print(crisis, elevated, {k: round(v, 3) for k, v in f.items()})
            if bar["none_kept"] < MIN_NONE_KEPT or bar["none_as_crisis"] > MAX_NONE_AS_CRISIS:
                continue
            if ordinary_sessions and sum(decide(r, crisis, elevated) == "none" for r in ordinary_sessions
                                         ) / len(ordinary_sessions) < MIN_SESSIONS_KEPT:
                continue
            if held_ordinary and sum(decide(r, crisis, elevated) == "none" for r in held_ordinary
                                     ) / len(held_ordinary) < MIN_HELD_KEPT:
                continue
            key = (round(f["crisis_recall"], 3), round(f["crisis_flagged"], 3),
                   round(f["elevated_or_higher"], 3), round(f["none_kept"], 3))
            if best is None or key > best[0]:
                best = (key, {"crisis": crisis, "elevated": elevated}, f)
    if best is None:
        raise SystemExit("no thresholds meet the policy; see --sweep")
    return best[1], best[2]


def stacked(oof: list, encoded: list, weight: float) -> list:
    """Each reading's linear probabilities with the encoder's reading of the same text (a
    text the readers do not read, an everyday goodbye, stays without probabilities)."""
    return [[(level, None if p is None else stack(p, e, weight))
             for (level, p), e in zip(line, enc, strict=True)]
            for line, enc in zip(oof, encoded, strict=True)]


def choose_weight(labels: list[str], oof: list, encoded: list, on_bar: list[bool], sessions: list[bool],
                  held: list[bool], show: bool = False):
    """(weight, thresholds, figures) of the STACK_WEIGHTS with the best policy figures;
    ``show`` prints each weight's sweep over the thresholds as it goes."""
    best = None
    for weight in STACK_WEIGHTS:
        if show:
            print(f"sweep, encoder weight {weight}:")
        thresholds, found = choose_thresholds(labels, stacked(oof, encoded, weight), show=show,
                                              on_bar=on_bar, sessions=sessions, held=held)
        key = tuple(round(found[k], 3) for k in ("crisis_recall", "crisis_flagged",
                                                  "elevated_or_higher", "none_kept"))
        print(f"encoder weight {weight}: {thresholds}", {k: round(v, 4) for k, v in found.items()})
        if best is None or key > best[0]:
            best = (key, weight, thresholds, found)
    return best[1:]


def main() -> int:
    examples = training_examples()
    rows = [row for e in examples for row in rows_of(e)]
    labels = [e.label for e in examples]
    on_bar = [not e.source.startswith(BAR_EXCLUDES) for e in examples]
    sessions = [e.is_sequence and not e.source.startswith(RETIRED) for e in examples]  # for the bar
    encoded = encoder_readings(examples)  # first: reused in seconds, or 40 minutes
    oof = out_of_fold(examples, rows)
    linear_thresholds, linear_figures = choose_thresholds(labels, oof, on_bar=on_bar, sessions=sessions)
    held = [not e.source.startswith(RETIRED) for e in examples]  # for MIN_HELD_KEPT
    weight, thresholds, oof_figures = choose_weight(labels, oof, encoded, on_bar, sessions, held,
                                                    show="--sweep" in sys.argv)
    if "--oof" in sys.argv:
        with open(sys.argv[sys.argv.index("--oof") + 1], "w", encoding="utf-8") as out:
            for example, found, enc in zip(examples, oof, encoded, strict=True):
                out.write(json.dumps({"source": example.source, "label": example.label,
                                      "readings": found, "encoder": enc, "text": example.text}) + "\n")
    model = fit(rows, thresholds)
    digest = inputs_digest()
    model.meta.update({
        "version": digest[:12],
        "inputs_digest": digest,
        "training_lines": dict(sorted(Counter(labels).items())),
        "training_windows": sum(not r.whole for r in rows),
        "out_of_fold": {k: round(v, 4) for k, v in oof_figures.items()},
        "out_of_fold_linear_alone": {k: round(v, 4) for k, v in linear_figures.items()},
        "thresholds_linear_alone": linear_thresholds,  # if the encoder cannot run
        "encoder": {"weight": weight, "sha256": sha256_of(ENCODER_FILE), **SETTINGS},
        "policy": {"min_none_kept": MIN_NONE_KEPT, "max_none_as_crisis": MAX_NONE_AS_CRISIS,
                   "min_sessions_kept": MIN_SESSIONS_KEPT, "sessions_bar_excludes": [RETIRED],
                   "min_held_kept": MIN_HELD_KEPT,
                   "bar_excludes": list(BAR_EXCLUDES), "fine_step": FINE},
    })
    MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
    model.save(MODEL_FILE)
    print(f"wrote {MODEL_FILE.relative_to(ROOT)} ({MODEL_FILE.stat().st_size // 1024} KiB, "
          f"{len(model.space):,} features, version {model.version})")
    print(f"thresholds: {thresholds}")
    print(f"encoder: weight {weight}, {ENCODER_FILE.stat().st_size // 1024} KiB")
    print("out-of-fold (one writer's files left out at a time; the encoder "
          f"one of {SETTINGS['folds']} groups of writers at a time):",
          {k: round(v, 3) for k, v in oof_figures.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
