"""Helpers for the progress generators of data building and rendering: relay their items as events, or run one
to its end for its result."""

from __future__ import annotations


def relay(gen, to_event):
    """Yield `to_event(item)` for each item `gen` yields; return `gen`'s result (for `x = yield from relay(...)`)."""
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value
        yield to_event(item)


def finish(gen):
    """Run a render generator (as `render_cameras` returns) to its end, dropping its progress events; its result."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
