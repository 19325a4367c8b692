"""A settable clock for tests of time-based code (lockouts, budgets, alerts): ``clock()`` is ``clock.now``."""

from __future__ import annotations


class Clock:
    """Returns ``now`` when called; tests move it by assigning ``now`` or calling :meth:`advance`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
