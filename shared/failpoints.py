"""Named points where a test can make the process fail on the spot.

`PANJEREH_FAILPOINTS=outbox.after_kafka_commit` makes the process kill itself with
SIGKILL when it reaches that point: the way to prove, against the real broker and
database, that a crash at the worst moment loses and duplicates nothing. A name armed as
`NAME:raise` raises `InjectedFailure` there instead: code that fails without dying.
Unset (always, outside such tests), a failpoint is one set lookup.
"""

from __future__ import annotations

import os
import signal

_ARMED = frozenset(filter(None, os.environ.get("PANJEREH_FAILPOINTS", "").split(",")))


class InjectedFailure(Exception):
    """What an armed `NAME:raise` failpoint raises."""


def failpoint(name: str) -> None:
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
    if f"{name}:raise" in _ARMED:
        raise InjectedFailure(f"failpoint {name}")
