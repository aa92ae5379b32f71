"""Dead letters as a tool for the platform team: count them, show one, send them back.

Every consumer of the platform sends what it cannot decode or accept to its topic's
dead-letter twin (`<topic>.dlq`): the record as it came, with why, where from and by whom
in its `dlq-*` headers (`shared/kafka.py`). Here the platform team, as `admin`, counts them
by topic and reason, shows one with its original bytes, and replays the originals to
their topic once the cause is fixed.

Replaying is safe to repeat: the platform's consumers drop an event they have handled
(by its id: the services' inboxes, the metrics worker's counters), so a record replayed
twice counts once; one that fails again goes back to the dead-letter topic with its new
reason. The inboxes remember an event for the dedup horizon only
(`PANJEREH_DEDUP_HORIZON_DAYS`), and a replay reaches every consumer of the topic, those
that handled the original too: a letter whose original is older than the horizon is
refused, never replayed. A replayed record carries `replayed-from`
(`<dlq topic>:<partition>:<offset>`) besides its original headers.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from fastapi import APIRouter, Depends, Header
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.http import ProblemError
from shared.kafka import new_producer, partitions_of, read_to_end
from shared.kafka_access import KafkaAccess
from shared.topics import SPECS, resolve

#: Kept with the original headers when a replayed record is refused again.
REPLAYED_FROM = "replayed-from"


def dead_letter_topics() -> list[str]:
    """Every dead-letter topic of the shared register (agencies' channels have their own)."""
    return sorted(
        spec.dead_letter
        for spec in SPECS.values()
        if spec.dead_letter is not None and not spec.per_agency
    )


@dataclass(frozen=True)
class DeadLetter:
    """One refused record: where it lies, why, and the original as it came."""

    topic: str
    partition: int
    offset: int
    #: When it was dead-lettered.
    at: datetime
    #: When the original reached the broker (None in letters written before it was kept).
    original_at: datetime | None
    reason: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    consumer: str
    key: bytes | None
    value: bytes
    original_headers: tuple[tuple[str, bytes], ...]

    @property
    def address(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    def summary(self) -> dict[str, object]:
        """What `dlq show` prints: everything but the bytes, which are given apart."""
        return {
            "dead_letter": self.address,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "from": f"{self.source_topic}:{self.source_partition}:{self.source_offset}",
            "consumer": self.consumer,
            "key": self.key.decode(errors="replace") if self.key is not None else None,
            "headers": {k: v.decode(errors="replace") for k, v in self.original_headers},
            "bytes": len(self.value),
        }


def _letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    headers = dict(record.headers)

    def text(name: str, default: str = "") -> str:
        return headers[name].decode(errors="replace") if name in headers else default

    def number(name: str) -> int | None:
        try:
            return int(text(name))
        except ValueError:
            return None

    def moment(name: str) -> datetime | None:
        try:
            return datetime.fromisoformat(text(name))
        except ValueError:
            return None

    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        original_at=moment("dlq-original-at"),
        reason=text("dlq-reason", "(no reason given)"),
        source_topic=text("dlq-topic", record.topic.removesuffix(".dlq")),
        source_partition=number("dlq-partition"),
        source_offset=number("dlq-offset"),
        consumer=text("dlq-consumer"),
        key=record.key,
        value=record.value or b"",
        original_headers=tuple((k, v) for k, v in record.headers if not k.startswith("dlq-")),
    )


async def read_dead_letters(admin: KafkaAccess, topics: Sequence[str]) -> list[DeadLetter]:
    """Every dead letter on `topics`, from their beginning to their end now."""
    records = await read_to_end(admin, topics, client_id="panjereh-dlq")
    return [_letter(record) for record in records]


async def find_dead_letter(
    admin: KafkaAccess, topic: str, partition: int, offset: int
) -> DeadLetter | None:
    """The dead letter at `topic`:`partition`:`offset`, read there alone; None if there is
    none (never written, or gone with retention)."""
    consumer = AIOKafkaConsumer(
        **admin.client_options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id="panjereh-dlq",
    )
    await consumer.start()
    try:
        where = TopicPartition(topic, partition)
        if partition not in await partitions_of(admin, topic):
            return None
        consumer.assign([where])
        first = (await consumer.beginning_offsets([where]))[where]
        end = (await consumer.end_offsets([where]))[where]
        if not first <= offset < end:
            return None
        consumer.seek(where, offset)
        batch = await consumer.getmany(where, timeout_ms=5000, max_records=1)
        for record in batch.get(where, []):
            if record.offset == offset:
                return _letter(record)
        return None
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Count:
    """`dlq list`: how many letters of one reason on one topic, and how old."""

    topic: str
    reason: str
    count: int
    oldest: datetime
    newest: datetime


def counts(letters: Iterable[DeadLetter]) -> list[Count]:
    grouped: dict[tuple[str, str], list[DeadLetter]] = defaultdict(list)
    for letter in letters:
        grouped[(letter.topic, letter.reason)].append(letter)
    return [
        Count(
            topic,
            reason,
            len(group),
            min(letter.at for letter in group),
            max(letter.at for letter in group),
        )
        for (topic, reason), group in sorted(grouped.items())
    ]


def chosen(
    letters: Iterable[DeadLetter], *, reason: str | None = None, since: datetime | None = None
) -> list[DeadLetter]:
    """Those whose reason contains `reason` and that were dead-lettered at `since` or later."""
    return [
        letter
        for letter in letters
        if (reason is None or reason in letter.reason) and (since is None or letter.at >= since)
    ]


def past_horizon(
    letters: Iterable[DeadLetter], horizon: timedelta, now: datetime | None = None
) -> tuple[list[DeadLetter], list[DeadLetter]]:
    """(those that may be replayed, those whose original is older than `horizon`).

    A letter's age is its original's, or, for a letter that does not say, the time it was
    dead-lettered (the original came before it: such a letter may be let through a little
    past the horizon, never held back inside it).
    """
    cutoff = (now or datetime.now(UTC)) - horizon
    replayable: list[DeadLetter] = []
    too_old: list[DeadLetter] = []
    for letter in letters:
        born = letter.original_at or letter.at
        (replayable if born >= cutoff else too_old).append(letter)
    return replayable, too_old


async def replay(admin: KafkaAccess, letters: Sequence[DeadLetter]) -> int:
    """Send each letter's original back to its topic (key, bytes and headers as they came,
    plus where it was replayed from); the number sent."""
    producer = new_producer(admin, client_id="panjereh-dlq-replay")
    await producer.start()
    try:
        sends = [
            await producer.send(
                letter.source_topic,
                letter.value,
                key=letter.key,
                headers=[*letter.original_headers, (REPLAYED_FROM, letter.address.encode())],
            )
            for letter in letters
        ]
        await asyncio.gather(*sends)
        return len(sends)
    finally:
        await producer.stop()


def dead_letter_topics_named(topic: str | None) -> list[str]:
    """The one dead-letter topic `topic` names, or every shared one when it names none;
    ValueError for a name that is not one."""
    return [known_dead_letter_topic(topic)] if topic else dead_letter_topics()


def known_dead_letter_topic(topic: str) -> str:
    """`topic` if it is a dead-letter topic of the register, an agency's channel's included
    (the name of the topic it is the twin of is taken too); else ValueError."""
    name = topic if topic.endswith(".dlq") else f"{topic}.dlq"
    try:
        spec, _ = resolve(name)
    except KeyError:
        raise ValueError(
            f"{topic!r} is not a dead-letter topic; known: {', '.join(dead_letter_topics())}"
            " and each agency's agency.<code>.<channel>.dlq"
        ) from None
    if spec.dead_letter is not None:  # a topic with a twin, not a twin
        raise ValueError(f"{topic!r} is not a dead-letter topic")
    return name


class Replay(BaseModel):
    """Which dead letters of a topic to replay: all, or those of a reason, or since."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)
    since: AwareDatetime | None = None


def operator_routes(admin: KafkaAccess, operator_token: str, horizon: timedelta) -> APIRouter:
    """The same operations over HTTP, for the platform team's tools: each request needs
    the operators' bearer secret (the one identity's operator endpoints take). Letters
    older than the dedup `horizon` are not replayed."""

    def operator(authorization: str | None = Header(default=None)) -> None:
        given = (authorization or "").removeprefix("Bearer ").encode()
        if not authorization or not hmac.compare_digest(given, operator_token.encode()):
            raise ProblemError(
                401,
                "unauthenticated",
                "the operators' bearer secret is needed",
                headers={"WWW-Authenticate": "Bearer"},
            )

    routes = APIRouter(prefix="/operator/dead-letters", dependencies=[Depends(operator)])

    def topics_of(topic: str | None) -> list[str]:
        try:
            return dead_letter_topics_named(topic)
        except ValueError as error:
            raise ProblemError(404, "not_found", str(error)) from None

    @routes.get("")
    async def listed(topic: str | None = None) -> list[dict[str, object]]:
        letters = await read_dead_letters(admin, topics_of(topic))
        return [
            {
                "topic": row.topic,
                "reason": row.reason,
                "count": row.count,
                "oldest": row.oldest.isoformat(),
                "newest": row.newest.isoformat(),
            }
            for row in counts(letters)
        ]

    @routes.get("/{topic}/{partition}/{offset}")
    async def shown(topic: str, partition: int, offset: int) -> dict[str, object]:
        (name,) = topics_of(topic)
        letter = await find_dead_letter(admin, name, partition, offset)
        if letter is None:
            raise ProblemError(404, "not_found", f"no dead letter at {name}:{partition}:{offset}")
        return {**letter.summary(), "value_base64": base64.b64encode(letter.value).decode()}

    @routes.post("/{topic}/replay")
    async def replayed(topic: str, body: Replay) -> dict[str, object]:
        (name,) = topics_of(topic)
        letters, too_old = past_horizon(
            chosen(await read_dead_letters(admin, [name]), reason=body.reason, since=body.since),
            horizon,
        )
        return {
            "topic": name,
            "replayed": await replay(admin, letters),
            "refused_past_dedup_horizon": len(too_old),
        }

    return routes
