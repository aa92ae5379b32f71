"""Batches of events, handled whole or not at all, and table writes on the right partition."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event

from services.metrics.worker.exits import EXIT_BATCH_FAILED, end_worker
from shared.failpoints import failpoint
from shared.logging import get_logger

log = get_logger(__name__)

BATCH_SIZE = 1000
BATCH_WITHIN_SECONDS = 0.1


@contextmanager
def whole_batch_or_none() -> Iterator[None]:
    """Count a batch (or one event) whole, or end the worker before anything of it is
    acknowledged.

    Faust acknowledges the events it handed an agent whatever the agent did with them:
    `take_events` acks its batch on the way out, an exception too. A batch that failed
    halfway would then be lost (its staged counts never written) or, written in part,
    counted in part. So a failure ends the process on the spot, as SIGKILL would, whose
    exactness the counters are built for (see the module's docstring): nothing after the
    last commit was acknowledged, and the worker started again counts it all, once.
    """
    try:
        failpoint("metrics.batch_begun")
        yield
    except Exception as error:
        end_worker(
            EXIT_BATCH_FAILED,
            "a batch failed; the worker stops before acknowledging it",
            error=repr(error),
        )


@contextmanager
def processing(event: Any) -> Iterator[None]:
    """Make `event` Faust's current event, so a table write goes to its partition's changelog.

    Agents take events in batches and write each counter once per batch; Faust picks the
    changelog partition of a write from the current event, which must be the event (of the
    right partition) that the write accounts for.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
