"""Pausing Python's cyclic garbage collector while a bulk job runs.

A file import keeps hundreds of thousands of objects alive until it ends (rows, warnings,
results, the report). Each one counts towards the collector's thresholds, so the collector ran
full collections again and again during a 100,000-row import, each walking every live object and
freeing almost nothing: about 3 of its 11 CPU seconds. Reference counting still frees everything
that is not part of a cycle while the collector is paused; it resumes when the last bulk job ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False  # the collector's state when the outermost pause began


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block; nested and concurrent pauses end with the last one,
    which restores the collector as it was before the first."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
