"""The unit tier: each test starts without directories pinned by earlier tests of its process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_pins_from_earlier_tests() -> Iterator[None]:
    """Forget the directories other tests pinned (:func:`sci_ext.core.trust.pin_private_dir`).

    The registry is per process, and a worker runs tests of every tier: a server test that
    swaps its metrics directory on purpose (still pinned by the server it started) would
    otherwise fail the ``private_dirs`` health check of every unit test after it.
    """
    from sci_ext.core import trust

    trust._PINNED.clear()
    yield
