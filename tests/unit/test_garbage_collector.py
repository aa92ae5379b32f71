"""Services tune the garbage collector before they serve."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.runtime import YOUNG_GENERATION_THRESHOLD, settle_garbage_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_settling_freezes_what_exists_and_collects_the_young_generation_less_often() -> None:
    long_lived = [object() for _ in range(100)]
    settle_garbage_collector()
    assert gc.get_freeze_count() >= len(long_lived)
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD > 700
