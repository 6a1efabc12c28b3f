"""Locate the data shipped with Haven: the model catalog and the prompts.

In a wheel they sit in ``app/_data``; in a source checkout (and an editable
install) they are the repository's top-level ``models/`` and ``prompts/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    bundled = _PACKAGE / "_data" / name
    if bundled.is_dir():
        return bundled
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"Haven's {name}/ folder is missing from this installation")


def models_dir() -> Path:
    return _shipped("models")


def prompts_dir() -> Path:
    return _shipped("prompts")
