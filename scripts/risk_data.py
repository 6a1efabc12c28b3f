"""The labelled risk data and its fixed split, shared by training and the report.

Files are ``label<TAB>category<TAB>text`` (see tests/data/risk/README.md). A line whose
text holds " ||| " is a sequence: several messages from one person in one session, the
label being their state after the last one.

The split never changes: a line whose text's sha256 is divisible by five is a test line,
whatever else is in its file. Training and threshold tuning never read the
test lines; ``heldout/`` (written by writers whose text training never saw) is test only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "risk"
LEVELS = ("none", "elevated", "crisis")
SEQUENCE_SEPARATOR = " ||| "
TEST_EVERY = 5


@dataclass(frozen=True)
class Example:
    label: str
    category: str
    text: str
    source: str  # the file it came from, e.g. "corpus/a_young.tsv"

    @property
    def messages(self) -> list[str]:
        return [m.strip() for m in self.text.split(SEQUENCE_SEPARATOR) if m.strip()]

    @property
    def is_sequence(self) -> bool:
        return len(self.messages) > 1


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_file(path: Path) -> list[Example]:
    source = path.relative_to(DATA).as_posix()
    out: list[Example] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3 or parts[0] not in LEVELS:
            raise ValueError(f"{source}:{number}: expected label<TAB>category<TAB>text")
        out.append(Example(parts[0], parts[1], parts[2].strip(), source))
    return out


def _files(folder: str) -> list[Path]:
    return sorted((DATA / folder).glob("*.tsv"))


def is_test_line(text: str) -> bool:
    """A line is a test line when the sha256 of its text is divisible by TEST_EVERY: about
    one in five, decided by the line alone, so adding or removing other lines never moves it."""
    return int(_digest(text), 16) % TEST_EVERY == 0


def split(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    """(train, test) by :func:`is_test_line`."""
    train = [e for e in examples if not is_test_line(e.text)]
    test = [e for e in examples if is_test_line(e.text)]
    return train, test


def training_examples() -> list[Example]:
    """Everything training may read: ``corpus/``, ``extra/`` and ``retired/`` minus their test lines."""
    train: list[Example] = []
    for path in _files("corpus") + _files("extra") + _files("retired"):
        train.extend(split(read_file(path))[0])
    return _dedupe(train)


def held_out_examples() -> list[Example]:
    """The held-out lines: the test split of the training folders and every file in ``heldout/``."""
    test: list[Example] = []
    for path in _files("corpus") + _files("extra") + _files("retired"):
        test.extend(split(read_file(path))[1])
    for path in _files("heldout"):
        test.extend(read_file(path))
    seen = {_norm(e.text) for e in training_examples()}
    return [e for e in _dedupe(test) if _norm(e.text) not in seen]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _dedupe(examples: list[Example]) -> list[Example]:
    seen: set[str] = set()
    out = []
    for example in examples:
        key = _norm(example.text)
        if key not in seen:
            seen.add(key)
            out.append(example)
    return out


def data_digest() -> str:
    """A fingerprint of every file training reads (the trained model records it)."""
    digest = hashlib.sha256()
    for path in _files("corpus") + _files("extra") + _files("retired"):
        digest.update(path.relative_to(DATA).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
