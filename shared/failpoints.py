"""Named points where a test can make the process die on the spot.

`PANJEREH_FAILPOINTS=outbox.after_kafka_commit` makes the process kill itself with
SIGKILL when it reaches that point: the way to prove, against the real broker and
database, that a crash at the worst moment loses and duplicates nothing. Unset (always,
outside such tests), a failpoint is one set lookup.
"""

from __future__ import annotations

import os
import signal

_ARMED = frozenset(filter(None, os.environ.get("PANJEREH_FAILPOINTS", "").split(",")))


def failpoint(name: str) -> None:
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
