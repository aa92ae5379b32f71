"""How large a record each topic takes, and the refusal of an event too large for it.

The broker refuses a record larger than its topic's `max.message.bytes` (declared in
`shared.topics`). An event that large must be refused where it is made, in the request or
the handling that causes it (a 413 to an HTTP client, a dead letter for a consumed event),
because once in the outbox nothing can ever publish it.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from shared.errors import DomainError
from shared.kafka import Rejected
from shared.topics import MAX_RECORD_BYTES, resolve


def record_size(key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> int:
    """An upper bound of the record's size as the broker measures it (a batch of one)."""
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers))
    return size


def max_record_bytes(topic: str) -> int:
    """The largest record `topic` takes (an agency's channel: its family's)."""
    try:
        return resolve(topic)[0].max_record_bytes
    except KeyError:
        return MAX_RECORD_BYTES


def oversize(
    topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
) -> str | None:
    """Why the broker would refuse this record for its size, or None if it fits."""
    size, limit = record_size(key, value, headers), max_record_bytes(topic)
    if size <= limit:
        return None
    return f"the record is {size} bytes; {topic} takes at most {limit}"


class EventTooLarge(DomainError, Rejected, status=413):
    """An event larger than its topic takes: the request that causes it is refused (413),
    and a consumed event that causes it is dead-lettered with this reason."""

    def __init__(self, event_type: str, reason: str) -> None:
        super().__init__("event_too_large", f"{event_type}: {reason}")
