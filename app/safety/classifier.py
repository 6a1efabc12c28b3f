"""The trained half of the risk check: a linear model over :mod:`app.safety.features`.

The model ships in ``app/safety/data/risk_model.npz``, written by
``scripts/train_risk_model.py`` from the labelled data in ``tests/data/risk/``. It gives
the probability that a message is none / elevated / crisis and, for risky messages, its
most likely category; the encoder's reading of the same text (:mod:`app.safety.encoder`) is
averaged in with the weight recorded in the file, and two thresholds (chosen at training
time on the two together, also recorded) turn probabilities into a level. Scoring is a
sparse dot product: deterministic, no model runtime, well under a millisecond.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.safety.encoder import stack
from app.safety.features import FeatureSpace
from app.safety.once import load_once

MODEL_FILE = Path(__file__).resolve().parent / "data" / "risk_model.npz"
FORMAT_VERSION = 2  # 2: two binary models (risk, crisis)
LEVELS = ("none", "elevated", "crisis")


class ModelFileError(Exception):
    """The shipped risk model is missing or damaged (a start-up error, never ignored)."""


@dataclass(frozen=True)
class Scored:
    level: str
    probabilities: tuple[float, float, float]  # none, elevated, crisis
    category: str | None
    top_features: tuple[str, ...]  # the features that pushed hardest towards the level
    linear: tuple[float, float, float]  # the linear model's own probabilities, before the encoder


class RiskModel:
    ARRAYS = ("idf", "coef", "intercept", "category_coef", "category_intercept")

    def __init__(self, meta: dict, names: list[str], arrays: dict[str, np.ndarray]) -> None:
        if meta.get("format") != FORMAT_VERSION:
            raise ModelFileError(f"the risk model has format {meta.get('format')}, "
                                 f"this Haven reads {FORMAT_VERSION}")
        self.meta = meta
        self.space = FeatureSpace(names, arrays["idf"], meta["group_weights"])
        self.coef = arrays["coef"].astype(np.float64)
        self.intercept = arrays["intercept"].astype(np.float64)
        self.category_coef = arrays["category_coef"].astype(np.float64)
        self.category_intercept = arrays["category_intercept"].astype(np.float64)
        self.categories: list[str] = meta["categories"]
        self.crisis_threshold = float(meta["thresholds"]["crisis"])
        self.elevated_threshold = float(meta["thresholds"]["elevated"])
        # The encoder's share of a reading (app.safety.encoder.stack); 0 = the linear model alone.
        self.stack_weight = float(meta.get("encoder", {}).get("weight", 0.0))
        self.encoder_tokens = int(meta.get("encoder", {}).get("tokens", 64))

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> RiskModel:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                names = str(data["names"]).split("\n")
                arrays = {key: data[key] for key in cls.ARRAYS}
        except (OSError, KeyError, ValueError) as exc:
            raise ModelFileError(f"the risk model {path} cannot be loaded: {exc}") from exc
        return cls(meta, names, arrays)

    def save(self, path: Path) -> None:
        arrays = {
            "idf": self.space.idf.astype(np.float32),
            "coef": self.coef.astype(np.float32),
            "intercept": self.intercept.astype(np.float32),
            "category_coef": self.category_coef.astype(np.float32),
            "category_intercept": self.category_intercept.astype(np.float32),
        }
        np.savez_compressed(path, meta=np.array(json.dumps(self.meta, sort_keys=True)),
                            names=np.array("\n".join(self.space.names)), **arrays)

    def without_encoder(self) -> RiskModel:
        """The linear model alone, at the thresholds the policy chose for it alone: what the
        check falls back to when the encoder cannot run (a little less sharp, never off)."""
        alone = copy.copy(self)
        alone.stack_weight = 0.0
        chosen = self.meta.get("thresholds_linear_alone", self.meta["thresholds"])
        alone.crisis_threshold = float(chosen["crisis"])
        alone.elevated_threshold = float(chosen["elevated"])
        return alone

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    def level_of(self, p) -> str:
        """crisis when p(crisis) reaches its threshold; elevated when 1 - p(none) reaches its own."""
        if p[2] >= self.crisis_threshold:
            return "crisis"
        if 1.0 - p[0] >= self.elevated_threshold:
            return "elevated"
        return "none"

    def score_columns(self, cols: np.ndarray, counts: np.ndarray,
                      encoded: tuple[float, float] | None = None) -> Scored:
        """Score a message given as distinct feature columns and their counts.

        Two logistic models: p(risk) (elevated or crisis, against none) and p(crisis);
        p(crisis) is capped by p(risk) so the three probabilities stay ordered. With the
        encoder's reading of the whole text (``encoded``), the two are averaged in.
        """
        values = self.space.weigh(cols, counts)
        z = self.coef[:, cols] @ values + self.intercept
        p_risk, p_crisis = 1.0 / (1.0 + np.exp(-z))
        p_crisis = min(p_crisis, p_risk)
        p = linear = (1.0 - p_risk, p_risk - p_crisis, p_crisis)
        if encoded is not None and self.stack_weight > 0:
            p = stack(p, encoded, self.stack_weight)
        level = self.level_of(p)
        category = None
        top: tuple[str, ...] = ()
        if level != "none" and len(cols):
            category_scores = self.category_coef[:, cols] @ values + self.category_intercept
            category = self.categories[int(np.argmax(category_scores))]
            push = self.coef[1 if level == "crisis" else 0, cols] * values
            order = np.argsort(-push)[:5]
            top = tuple(self.space.names[cols[i]] for i in order if push[i] > 0)
        return Scored(level, (float(p[0]), float(p[1]), float(p[2])), category, top,
                      (float(linear[0]), float(linear[1]), float(linear[2])))

    def score(self, counts: Counter) -> Scored:
        """Score a message given as named feature counts."""
        return self.score_columns(*self.space.columns(counts))


@load_once
def risk_model() -> RiskModel:
    return RiskModel.load()
