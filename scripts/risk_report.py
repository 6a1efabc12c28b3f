"""How Haven's risk check does on held-out text: lines training and tuning never read.

Usage: python scripts/risk_report.py [--misses N] [--json] [--all]

The held-out lines are the test split of the training folders (one line in five, chosen by
its own text, see scripts/risk_data.py) and every file in tests/data/risk/heldout/ (written
by writers whose text training never saw). A single message is judged with ``assess_risk``; a
sequence (several messages of one session) with ``assess_conversation``. ``--all`` also
prints the figures per source file.

The list of worst misses shows text only from sets already read or trained on (the test
split, ``retired/`` included). A set in ``heldout/`` is kept unread, so that it can still
decide a later round: its misses are counted, never printed.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.safety import assess_conversation, assess_risk  # noqa: E402
from app.safety.classifier import RiskModel  # noqa: E402
from app.safety.encoder import RiskEncoder  # noqa: E402
from scripts.risk_data import LEVELS, Example, held_out_examples  # noqa: E402


def readable(source: str) -> bool:
    """May a line from this source be printed? Not from a held-out set (h1 to h16, read
    or decided earlier, were moved to retired/ in round 18 and trained on)."""
    return not source.startswith("heldout/")


TARGETS = {  # issue 11: what the check must reach on text it has never seen
    "crisis_recall": 0.95, "crisis_flagged": 0.99, "elevated_or_higher": 0.90,
    "none_kept": 0.95, "sequence_crisis_recall": 0.90,
}


def judge(example: Example, model: RiskModel | None = None, encoder: RiskEncoder | None = None) -> str:
    """The level Haven gives a line (the shipped model and encoder unless given)."""
    if example.is_sequence:
        return assess_conversation(example.messages, model=model, encoder=encoder).level
    return assess_risk(example.text, model=model, encoder=encoder).level


def _share(pairs: list[tuple[str, str]], truth: str, ok: set[str]) -> tuple[float, int]:
    picked = [p for t, p in pairs if t == truth]
    return (sum(p in ok for p in picked) / len(picked) if picked else float("nan")), len(picked)


def summarise(pairs: list[tuple[str, str]]) -> dict:
    return {
        "crisis_recall": _share(pairs, "crisis", {"crisis"}),
        "crisis_flagged": _share(pairs, "crisis", {"crisis", "elevated"}),
        "elevated_or_higher": _share(pairs, "elevated", {"crisis", "elevated"}),
        "none_kept": _share(pairs, "none", {"none"}),
        "none_as_crisis": _share(pairs, "none", {"crisis"}),
    }


def evaluate(examples: list[Example] | None = None) -> dict:
    examples = examples if examples is not None else held_out_examples()
    results = [(e, judge(e)) for e in examples]
    singles = [(e.label, p) for e, p in results if not e.is_sequence]
    sequences = [(e.label, p) for e, p in results if e.is_sequence]
    per_category: dict[str, list[tuple[str, str]]] = defaultdict(list)
    per_source: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e, p in results:
        per_category[f"{e.label}/{e.category}"].append((e.label, p))
        per_source[e.source].append((e.label, p))
    misses = [(e, p) for e, p in results if p != e.label]
    # worst first: a crisis seen as none, then a crisis seen as elevated, an elevated seen
    # as none, then ordinary text flagged crisis, then the rest
    badness = {("crisis", "none"): 0, ("crisis", "elevated"): 1, ("elevated", "none"): 2,
               ("none", "crisis"): 3}
    misses.sort(key=lambda m: (badness.get((m[0].label, m[1]), 4), len(m[0].text)))
    return {
        "lines": len(results),
        "per_label": {label: sum(e.label == label for e, _ in results) for label in LEVELS},
        "singles": summarise(singles),
        "sequences": summarise(sequences),
        "sequence_crisis_recall": _share(sequences, "crisis", {"crisis"}),
        "per_category": {
            key: _share(pairs, key.split("/")[0],
                        {"none"} if key.startswith("none") else
                        {"crisis"} if key.startswith("crisis") else {"elevated", "crisis"})
            for key, pairs in sorted(per_category.items())
        },
        "per_source": {source: summarise(pairs) for source, pairs in sorted(per_source.items())},
        "misses": misses,
    }


def slowest(examples: list[Example]) -> tuple[float, int, float]:
    """(slowest ms, its length, ms for a 2,000-character message)."""
    worst = (0.0, 0)
    for e in examples:
        if e.is_sequence:
            continue
        start = time.perf_counter()
        assess_risk(e.text)
        took = (time.perf_counter() - start) * 1000
        worst = max(worst, (took, len(e.text)))
    sample = ("I have been feeling low and tired for weeks, and work is hard. "
              "My sister says I should rest. ") * 30
    start = time.perf_counter()
    for _ in range(50):
        assess_risk(sample[:2000])
    return worst[0], worst[1], (time.perf_counter() - start) / 50 * 1000


def _fmt(value: tuple[float, int]) -> str:
    share, n = value
    return f"{share:.3f} (n={n})"


def main() -> int:
    args = sys.argv[1:]
    n_misses = int(args[args.index("--misses") + 1]) if "--misses" in args else 20
    examples = held_out_examples()
    report = evaluate(examples)
    slow_ms, slow_len, per_2000 = slowest(examples)
    if "--json" in args:
        out = {k: v for k, v in report.items() if k != "misses"}
        out.update(slowest_ms=slow_ms, slowest_chars=slow_len, ms_per_2000_chars=per_2000)
        print(json.dumps(out, indent=2, default=list))
        return 0
    print(f"held-out lines: {report['lines']} {report['per_label']}")
    print("single messages (assess_risk):")
    for key, value in report["singles"].items():
        target = f"  target >= {TARGETS[key]}" if key in TARGETS else ""
        print(f"  {key:<22}{_fmt(value)}{target}")
    print("sequences (assess_conversation):")
    for key, value in report["sequences"].items():
        print(f"  {key:<22}{_fmt(value)}")
    print("per category (share judged right; for elevated, elevated or higher):")
    for key, value in report["per_category"].items():
        print(f"  {key:<34}{_fmt(value)}")
    if "--all" in args:
        print("per source file:")
        for source, figures in report["per_source"].items():
            print(f"  {source}: " + ", ".join(f"{k} {v[0]:.2f}" for k, v in figures.items()))
    print(f"slowest message: {slow_ms:.1f} ms ({slow_len:,} characters); "
          f"a 2,000-character message: {per_2000:.2f} ms (target < 10)")
    if n_misses:
        shown = [m for m in report["misses"] if readable(m[0].source)]
        print(f"the {n_misses} worst misses in text already read (truth -> judged); "
              f"{len(report['misses']) - len(shown)} misses in unread sets are counted only:")
        for example, got in shown[:n_misses]:
            text = example.text if len(example.text) <= 160 else example.text[:157] + "..."
            print(f"  {example.label:>8} -> {got:<8} [{example.source}] {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
