"""Bulk ingestion without the cyclic garbage collector's pauses.

Parsing, validating, pricing and encoding a batch of 10,000 records allocates hundreds of
thousands of objects, none in a reference cycle (refcounting frees them all), yet each
allocation burst triggers collections that walk the whole heap: about a third of an
in-process ingestion's time here. While any batch is being ingested the collector is off;
it is back on (as it was) when the last one ends. Under overlapping batches that never
leave it off for long: a batch ending after a long pause runs one young collection.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: a pause held (by overlapping batches) longer than this gets a young collection at the next batch's end
LONGEST_PAUSE_SECONDS = 5.0

_lock = threading.Lock()
_holders = 0
_was_enabled = True
_paused_since = 0.0


@contextmanager
def collection_paused() -> Iterator[None]:
    global _holders, _was_enabled, _paused_since
    with _lock:
        if _holders == 0:
            _was_enabled, _paused_since = gc.isenabled(), time.monotonic()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                if _was_enabled:
                    gc.enable()
            elif time.monotonic() - _paused_since > LONGEST_PAUSE_SECONDS:
                gc.collect(0)
                _paused_since = time.monotonic()


def paused(fn: Callable[P, T]) -> Callable[P, T]:
    """`fn` runs with the collector paused (see the module's note)."""

    @wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        with collection_paused():
            return fn(*args, **kwargs)

    return run
