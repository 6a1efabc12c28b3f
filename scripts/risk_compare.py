"""Compare two risk models line by line on held-out text: rules 2 and 3 of "How a new model
is decided" in tests/data/risk/README.md.

Usage: python scripts/risk_compare.py (BASE.npz | --base-tree DIR) [CANDIDATE.npz] [--only PREFIX ...]

BASE is the model to beat, e.g. ``git show HEAD:app/safety/data/risk_model.npz > base.npz``
before retraining; CANDIDATE defaults to the model in this tree. A model that reads with an
encoder reads with the ONNX file beside it (``base.onnx`` beside ``base.npz``: ``git show
HEAD:app/safety/data/risk_encoder.onnx > base.onnx``), else with this tree's, and only if
that is the file it was fitted with (its sha256 is in the model). Both are read with this
tree's rules and features, so this compares models whose code is the same (a change of data
or settings). When the check's code changes too (a rule, a constant in ``assess.py``), the
base must be read by its own code: ``--base-tree DIR`` reads each line with the shipped model
of another checkout (``git worktree add DIR HEAD`` before the change), in a process of its
own, and pairs its levels with the candidate's by file and text; a line only one side holds
as held-out (say, one the candidate trains on) is left out. ``--only heldout/h14
heldout/h10`` restricts the lines to the pool. Prints counts and z only, never a line's
text, so a fresh set stays unread.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.modelhub.registry import sha256_of  # noqa: E402
from app.safety.classifier import MODEL_FILE, RiskModel  # noqa: E402
from app.safety.encoder import ENCODER_FILE, TOKENIZER_FILE, RiskEncoder  # noqa: E402
from scripts.risk_data import held_out_examples  # noqa: E402
from scripts.risk_report import judge  # noqa: E402

# measure -> (label of its lines, levels that count as right), for single messages and sessions
MEASURES = {
    "crisis recall": ("crisis", {"crisis"}, False),
    "crisis flagged": ("crisis", {"crisis", "elevated"}, False),
    "elevated+": ("elevated", {"crisis", "elevated"}, False),
    "ordinary kept": ("none", {"none"}, False),
    "sessions: crisis recognised": ("crisis", {"crisis"}, True),
    "ordinary sessions kept": ("none", {"none"}, True),
}
NO_HARM, GAIN = -1.0, 1.645  # rule 2: every z >= NO_HARM; rule 3: one of the first three >= GAIN


def paired(base: list[str], cand: list[str], ok: set[str]) -> tuple[int, int, int, int, float]:
    """(base right, candidate right, b = only the candidate right, c = only the base right, z)."""
    pairs = list(zip(base, cand, strict=True))
    b = sum(new in ok and old not in ok for old, new in pairs)
    c = sum(old in ok and new not in ok for old, new in pairs)
    z = (b - c) / math.sqrt(b + c) if b + c else 0.0
    return sum(old in ok for old in base), sum(new in ok for new in cand), b, c, z


def encoder_for(model: RiskModel, path: Path) -> RiskEncoder | None:
    """The encoder ``model`` was fitted with: the ONNX file beside it, else this tree's."""
    if model.stack_weight == 0:
        return None
    beside = path.with_suffix(".onnx")
    found = beside if beside.exists() else ENCODER_FILE
    if sha256_of(found) != model.meta["encoder"]["sha256"]:
        raise SystemExit(f"{path.name} was fitted with another encoder than {found}: "
                         f"put its own as {beside}")
    return RiskEncoder(found, TOKENIZER_FILE, model.encoder_tokens)


# Run in the base tree's own process: its code, its shipped model and encoder.
_TREE_LEVELS = """
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
from app.safety.classifier import risk_model
from scripts.risk_data import held_out_examples
from scripts.risk_report import judge
only = tuple(sys.argv[2:]) or ("",)
levels = {e.source + "\t" + hashlib.sha256(e.text.encode()).hexdigest(): judge(e)
          for e in held_out_examples() if e.source.startswith(only)}
print(json.dumps({"version": risk_model().version, "levels": levels}))
"""


def key(example) -> str:
    return example.source + "\t" + hashlib.sha256(example.text.encode()).hexdigest()


def tree_levels(tree: Path, only: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """(model version, level by line) of every held-out line, read by ``tree``'s code and model."""
    done = subprocess.run([sys.executable, "-c", _TREE_LEVELS, str(tree.resolve()), *only],
                          cwd=tree, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{tree} could not read its held-out lines:\n{done.stderr[-2000:]}")
    found = json.loads(done.stdout)
    return found["version"], found["levels"]


def main(argv: list[str]) -> int:
    only = tuple(argv[argv.index("--only") + 1:]) if "--only" in argv else ("",)
    paths = argv[: argv.index("--only")] if "--only" in argv else list(argv)
    tree = None
    if "--base-tree" in paths:
        at = paths.index("--base-tree")
        tree = Path(paths[at + 1]) if at + 1 < len(paths) else None
        paths = paths[:at] + paths[at + 2:]
    if (tree is None and not 1 <= len(paths) <= 2) or (tree is not None and len(paths) > 1):
        print(next(line for line in __doc__.splitlines() if line.startswith("Usage")),
              file=sys.stderr)
        return 2
    cand_path = Path(paths[-1]) if len(paths) == (1 if tree else 2) else MODEL_FILE
    cand = RiskModel.load(cand_path)
    cand_encoder = encoder_for(cand, cand_path)
    examples = [e for e in held_out_examples() if e.source.startswith(only)]
    if tree is not None:
        base_version, base_levels = tree_levels(tree, only)
        examples = [e for e in examples if key(e) in base_levels]
        levels = [(e, base_levels[key(e)], judge(e, cand, cand_encoder)) for e in examples]
        base_version += f" read by {tree}"
    else:
        base_path = Path(paths[0])
        base = RiskModel.load(base_path)
        base_encoder = encoder_for(base, base_path)
        levels = [(e, judge(e, base, base_encoder), judge(e, cand, cand_encoder)) for e in examples]
        base_version = base.version
    print(f"{base_version} (base) against {cand.version} (candidate), {len(examples)} lines")
    z_of = {}
    for name, (label, ok, sessions) in MEASURES.items():
        picked = [(old, new) for e, old, new in levels
                  if e.label == label and e.is_sequence == sessions]
        n = len(picked)
        right_base, right_cand, b, c, z = paired([old for old, _ in picked],
                                                 [new for _, new in picked], ok)
        z_of[name] = z
        print(f"{name:28s} n={n:5d}  base {right_base:5d}  candidate {right_cand:5d}  "
              f"b={b:4d} c={c:4d}  z={z:+.2f}")
    no_harm = all(z >= NO_HARM for z in z_of.values())
    gain = any(z_of[name] >= GAIN for name in ("crisis recall", "crisis flagged", "elevated+"))
    print(f"rule 2 (no measure below z {NO_HARM}): {'met' if no_harm else 'NOT met'}; "
          f"rule 3 (a gain of z >= {GAIN}): {'met' if gain else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
