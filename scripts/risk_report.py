"""Print how Haven's risk check does on the labelled set in tests/data/risk_cases.toml.

Usage: python scripts/risk_report.py [--show-misses]
"""

from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.safety import assess_risk  # noqa: E402

LEVELS = ("none", "elevated", "crisis")


def evaluate(path: Path = ROOT / "tests" / "data" / "risk_cases.toml") -> dict:
    cases = tomllib.loads(path.read_text(encoding="utf-8"))
    confusion = {(t, p): 0 for t in LEVELS for p in LEVELS}
    misses: list[tuple[str, str, str]] = []
    for truth in LEVELS:
        for text in cases[truth]:
            got = assess_risk(text).level
            confusion[(truth, got)] += 1
            if got != truth:
                misses.append((truth, got, text))
    n = {t: len(cases[t]) for t in LEVELS}
    predicted_none = sum(confusion[(t, "none")] for t in LEVELS)
    return {
        "messages": sum(n.values()),
        "per_level": n,
        "crisis_recall": confusion[("crisis", "crisis")] / n["crisis"],
        "elevated_or_higher_recall": sum(
            confusion[(t, p)] for t in ("elevated", "crisis") for p in ("elevated", "crisis")
        ) / (n["elevated"] + n["crisis"]),
        "none_precision": confusion[("none", "none")] / predicted_none if predicted_none else 1.0,
        "none_specificity": confusion[("none", "none")] / n["none"],
        "accuracy": sum(confusion[(t, t)] for t in LEVELS) / sum(n.values()),
        "confusion": confusion,
        "misses": misses,
    }


def main() -> int:
    report = evaluate()
    sample = "I have been feeling low and tired for weeks, and work is hard. " * 32
    start = time.perf_counter()
    for _ in range(100):
        assess_risk(sample[:2000])
    per_message_ms = (time.perf_counter() - start) / 100 * 1000
    print(f"messages:                 {report['messages']} {report['per_level']}")
    print(f"crisis recall:            {report['crisis_recall']:.3f}  (target >= 0.98)")
    print(f"none precision:           {report['none_precision']:.3f}  (target >= 0.95)")
    print(f"elevated-or-higher recall:{report['elevated_or_higher_recall']:.3f}")
    print(f"none specificity:         {report['none_specificity']:.3f}")
    print(f"exact-level accuracy:     {report['accuracy']:.3f}")
    print(f"time per 2,000 chars:     {per_message_ms:.2f} ms")
    print("confusion (truth -> predicted):")
    for truth in LEVELS:
        row = "  ".join(f"{p}={report['confusion'][(truth, p)]:>3}" for p in LEVELS)
        print(f"  {truth:<9} {row}")
    if "--show-misses" in sys.argv:
        for truth, got, text in report["misses"]:
            print(f"  MISS truth={truth:<8} got={got:<8} {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
