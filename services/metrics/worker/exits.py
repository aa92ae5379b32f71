"""The worker ends itself, as SIGKILL would, when it cannot go on safely; whatever runs it
starts it again (compose: `restart: unless-stopped`). The counters are built to be exact
across exactly that (see `counters.py`): nothing after the last commit was acknowledged,
and the worker started again counts it all, once."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, NoReturn

from shared.logging import get_logger

log = get_logger(__name__)

#: A batch failed (`batches.whole_batch_or_none`).
EXIT_BATCH_FAILED = 70
#: The consumer's group coordination failed (`exit_if_coordination_failed`).
EXIT_CONSUMER_FAILED = 71


def end_worker(status: int, why: str, **details: Any) -> NoReturn:
    """Log `why` and end the process on the spot, with `status`."""
    log.critical(why, **details)
    logging.shutdown()
    os._exit(status)


def exit_if_coordination_failed(coordination: asyncio.Future[Any]) -> None:
    """aiokafka runs a consumer's group coordination as one task. Should it end with an
    error (an assignment it refuses, say), the consumer would be left without partitions
    and the worker idle for ever: end it instead."""
    if coordination.cancelled() or coordination.exception() is None:
        return  # the consumer stopped
    end_worker(
        EXIT_CONSUMER_FAILED,
        "the consumer's group coordination failed; the worker stops",
        error=repr(coordination.exception()),
    )
