"""``load_once``: a cached loader that two threads asking at the same time run once.

The risk check's model and encoder take a few hundred milliseconds to read. The app reads
them early, in a thread (:mod:`app.safety.prepare`), and a first message may ask for them
before that is done: ``functools.lru_cache`` alone would then read them twice, and keep two
copies in memory for a moment. The lock makes the second caller wait for the first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, TypeVar

T = TypeVar("T")


def load_once(loader: Callable[..., T]) -> Callable[..., T]:
    """``lru_cache(maxsize=1)`` with a lock; ``cache_clear`` and ``cache_info`` as usual."""
    cached = lru_cache(maxsize=1)(loader)
    lock = threading.Lock()

    @wraps(loader)
    def load(*args: Any) -> T:
        with lock:
            return cached(*args)

    load.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    load.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return load
