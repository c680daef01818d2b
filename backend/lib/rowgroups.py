"""Reorder rows so that rows sharing a key are next to each other, window by window.

A department's file names the same person in many rows, scattered through it. Imported in
order, chunk by chunk, each later chunk that names the person again must update the task an
earlier chunk opened: another rewrite of the task's row and its indexes, and another message to
the worker's phone. Brought together, the person's rows land in one chunk and open the task once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def grouped(rows: Iterable[T], keys: Callable[[T], Iterable[Hashable]], window: int) -> Iterator[T]:
    """``rows`` again, each run of ``window`` rows reordered so that rows sharing any key (directly
    or through other rows) are contiguous. Groups come in the order of their first row, and rows
    within a group keep their order: whatever must happen in file order for one key (the first
    row with a record id is the one kept) still does. At most ``window`` rows are held at once."""
    source = iter(rows)
    while batch := _next_window(source, keys, window):
        yield from batch


async def grouped_in_thread(
    rows: Iterable[T], keys: Callable[[T], Iterable[Hashable]], window: int
) -> AsyncIterator[T]:
    """``grouped``, each window read and reordered in a worker thread: a window is a file's first
    100,000 rows, and the event loop stays free meanwhile (the file import loads the grid index
    then). ``rows`` is only ever read from one thread at a time."""
    source = iter(rows)
    while batch := await asyncio.to_thread(_next_window, source, keys, window):
        for row in batch:
            yield row


def _next_window(source: Iterator[T], keys: Callable[[T], Iterable[Hashable]], window: int) -> list[T]:
    return _in_groups(list(islice(source, window)), keys)


def _in_groups(batch: list[T], keys: Callable[[T], Iterable[Hashable]]) -> list[T]:
    # Union-find over row positions; a group's root is its first row, so sorting by root orders
    # groups by their first row, and the sort is stable within a group.
    parent = list(range(len(batch)))

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    first: dict[Hashable, int] = {}
    for position, row in enumerate(batch):
        for key in keys(row):
            earlier = first.setdefault(key, position)
            if earlier != position:
                a, b = root(earlier), root(position)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    roots = [root(n) for n in range(len(batch))]
    return [batch[n] for n in sorted(range(len(batch)), key=roots.__getitem__)]
