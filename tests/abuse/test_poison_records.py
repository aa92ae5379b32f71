"""Poison on every topic a platform process reads: refused onto its dead-letter topic with
the reason, and the good record right behind it still handled within a second.

The topics come from the register (`shared/topics.py`): every topic that declares a
dead-letter twin and a reader is poisoned, so a new topic is covered as soon as it is
declared. Each reader is the process the register names: the services' consumer groups
and the metrics worker as they run in the platform, and, for what the register says
agencies read, the agency package's channel reader as an agency's system runs it.

Per topic and kind of poison, as the platform team (admin) would publish it: the poison,
then at once a good record on the same key (so on the same partition, behind it). Then:

- the poison is on the twin, from every reader, with a `dlq-reason` and its own bytes;
- every reader has handled the good record within `HANDLED_WITHIN` seconds of its
  publication: its group committed past it (the group's own statement that the record
  is done; plus the commit timer's lag for the metrics worker) without dead-lettering it,
  or, for the channel reader, the agency's code was handed the event; for the topics the
  services' token verifiers follow (no group), the effect itself: a token signed with the
  good record's key is accepted, or a token of the revoked session refused.

The good record is the topic's documented example, made fresh; where that would not be
accepted it is made as its producer makes it (a text message sealed to the gateway, a
delivery of a service the agency published, a record the agency's readers can verify).
An answer can only answer a request the exchange forwarded: the well-formed answer to
none is refused by the exchange's rule, which is its observed effect.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from confluent_kafka.admin import AdminClient
from joserfc.jwk import ECKey
from panjereh_agency.channel import ChannelReader
from panjereh_agency.exchange_keys import ExchangeKeys

from infra.platform import LocalPlatform
from services.identity.settings import DEVELOPMENT_SMS_GATEWAY_PUBLIC_KEY
from shared.envelope import Envelope, Event
from shared.events.identity import SmsContent, SmsRequested
from shared.events.platform import ChannelsOpened
from shared.kafka import event_headers
from shared.kafka_access import KafkaAccess
from shared.principals import METRICS_WORKER_APP_ID, PRINCIPAL_SPECS, Principal, agency_principal
from shared.registry import example_envelopes, on_topic
from shared.sealed_box import SealingKey
from shared.topics import SPECS, TOPICS, TopicSpec, channel, dead_letter_of
from tests.abuse.conftest import CATALOG, EXCHANGE, IDENTITY
from tests.abuse.users import Tokens
from tests.groups import group_admin, is_settled, until_settled
from tests.integration.exchange.helpers import AgencySystem, ExchangeStandIn
from tests.tokens import access_claims, new_issuer_key, signed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

HANDLED_WITHIN = 1.0
#: What observing a reader through its commits adds: the metrics worker (Faust) commits
#: on a timer (`broker_commit_interval`, 1 s), and a commit in flight when the good record
#: is handled carries it only at the next tick.
COMMIT_LAG = {METRICS_WORKER_APP_ID: 2 * 1.0}
#: Topics whose good record is well formed but names something the platform does not
#: have, so the reader's judgement (not its decoding) refuses it, with this reason: an
#: answer to a request the exchange never forwarded.
JUDGED = {"agency.{agency}.answers": "unknown_transaction"}
#: How long a reader may take to deal with a poison record and the good one behind it.
REFUSED_WITHIN = 15.0
#: How long a dead letter may take to reach the suite once its reader has moved on.
LETTER_IN_TRANSIT = 2.0
#: The agency whose channel is poisoned (its systems' readers run here, as it runs them).
AGENCY = "tax"
#: The role of the agency's channel readers run here (their group's suffix).
READER_ROLE = "poison-check"


def poisoned_topics() -> list[TopicSpec]:
    """Every declared topic that a process of the platform or an agency reads and that
    has a dead-letter twin. Development-only topics are left out: only the simulator's
    phones read them, and they exist nowhere else."""
    return [
        spec
        for spec in TOPICS
        if spec.dead_letter is not None and readers_of(spec) and not spec.development_only
    ]


def readers_of(spec: TopicSpec) -> list[Principal]:
    # Analysts read with their own tools, outside the platform.
    return [principal for principal in spec.consumers if principal is not Principal.ANALYST]


def concrete(spec: TopicSpec) -> str:
    return channel(spec.name, AGENCY) if spec.per_agency else spec.name


# -- what the token verifiers follow -----------------------------------------------------

#: Topics the services read through their token verifiers (shared/auth.py), which follow
#: them without a consumer group: the good record's effect is on tokens.
ISSUER_KEYS = "identity.issuer-keys"
SESSIONS = "identity.sessions"
TOKEN_TOPICS = {ISSUER_KEYS, SESSIONS}
#: What the services' pattern consumers follow without a group (shared/channel_watch.py):
#: the good record's effect is on their groups, which take the announced channels.
CHANNELS = "platform.channels"
#: Followed without a consumer group: no commit says a record is done, its effect does.
FOLLOWED = TOKEN_TOPICS | {CHANNELS}
#: What observing an announcement through its effect adds: the group's rebalance onto
#: the channels, after the metadata refresh the announcement asked for.
REBALANCE_LAG = 2.0


# -- the good record of each topic ---------------------------------------------------------


@dataclass
class Good:
    """A good record for a topic, and what its handling changes besides offsets."""

    envelope: Envelope[Any]
    #: For topics followed by the token verifiers: True once the effect is seen.
    effect: Callable[[], Any] | None = None


def documented_payload(spec: TopicSpec, key: str) -> Event:
    """The topic's first event, as documented, made fresh where the topic is keyed by it."""
    payload: Event = example_envelopes(on_topic(spec.name)[0])[0].payload
    updates: dict[str, Any] = {}
    if payload.agency_field is not None:
        updates[payload.agency_field] = AGENCY
    if "kid" in type(payload).model_fields:
        updates["kid"] = key
    if "transaction_id" in type(payload).model_fields:
        updates["transaction_id"] = uuid.uuid4()
    return payload.model_copy(update=updates)


def sms_payload(key: str) -> SmsRequested:
    """A text message the development gateway opens (sealed to its public key)."""
    message_id = uuid.uuid4()
    return SmsRequested.sealed_to(
        SealingKey(DEVELOPMENT_SMS_GATEWAY_PUBLIC_KEY),
        SmsContent(mobile="+989120000001", text=f"poison check {key}"),
        message_id=message_id,
        purpose="one_time_code",
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )


def metadata_client(access: KafkaAccess) -> AdminClient:
    """A client that asks the broker's metadata as `access`, for `describes`."""
    config: dict[str, str | int | float | bool] = {**access.librdkafka_config(), "log_level": 0}
    return AdminClient(config)


def describes(client: AdminClient, topics: list[str]) -> bool:
    """Whether `client` sees every one of `topics` in the broker's metadata (blocks)."""
    found = client.list_topics(timeout=5).topics
    return all(topic in found and found[topic].error is None for topic in topics)


# -- poisons ------------------------------------------------------------------------------

HUGE = "__huge_number__"


def _replace_first_number(document: dict[str, Any], marker: str) -> bool:
    for name, value in document.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            document[name] = marker
            return True
        if isinstance(value, dict) and _replace_first_number(value, marker):
            return True
    return False


def _with_huge(good: bytes, number: str) -> bytes:
    """`good` with its payload's first number (else its schema version) as `number`,
    written as JSON text: 2^64 and 1e400 are valid JSON no float or int64 carries."""
    document = json.loads(good)
    if not _replace_first_number(document["payload"], HUGE):
        document["schema_version"] = HUGE
    return json.dumps(document).replace(f'"{HUGE}"', number).encode()


def _with_wrong_types(good: bytes) -> bytes:
    document = json.loads(good)
    first = next(iter(document["payload"]))
    value = document["payload"][first]
    document["payload"][first] = "a string" if isinstance(value, int | float) else 12345
    document["occurred_at"] = 1711000000
    return json.dumps(document).encode()


def _oversized(good: bytes, spec: TopicSpec) -> bytes:
    """The largest record the topic takes, which is no valid event: its twin must still
    take it with the reason in its headers."""
    limit: int = getattr(spec, "max_record_bytes", 1_000_000)
    document = json.loads(good)
    document["padding"] = ""
    room = limit - len(json.dumps(document)) - 4096  # the batch's and the headers' share
    document["padding"] = "x" * room
    return json.dumps(document).encode()


POISONS: dict[str, Callable[[bytes, TopicSpec], bytes]] = {
    "malformed-json": lambda good, _: good[: len(good) // 2],
    "wrong-types": lambda good, _: _with_wrong_types(good),
    "unknown-schema-version": lambda good, _: re.sub(
        rb'"schema_version":\s*\d+', b'"schema_version": 999', good
    ),
    "oversized": _oversized,
    "integer-2-to-the-64": lambda good, _: _with_huge(good, str(2**64)),
    "number-1e400": lambda good, _: _with_huge(good, "1e400"),
    # As `wrong-types`, with no headers at all (neither event headers nor trace context);
    # the good record after it carries none either.
    "missing-headers": lambda good, _: _with_wrong_types(good),
}


# -- watching what the readers do ---------------------------------------------------------


class DeadLetters:
    """Every record that lands on the dead-letter twins of the poisoned topics from now."""

    def __init__(self, admin: KafkaAccess, topics: list[str]) -> None:
        self._admin = admin
        self._topics = topics
        self.records: list[ConsumerRecord[bytes, bytes]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self._admin.client_options(),
            enable_auto_commit=False,
            client_id=f"poison-check-{uuid.uuid4().hex[:6]}",
            fetch_max_bytes=8 * 1024 * 1024,
            max_partition_fetch_bytes=2 * 1024 * 1024,
        )
        await consumer.start()
        partitions = [TopicPartition(topic, 0) for topic in self._topics]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        self._task = asyncio.create_task(self._collect(consumer))

    async def _collect(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                for records in batches.values():
                    self.records.extend(records)
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def of(self, topic: str, partition: int, offset: int) -> dict[str, ConsumerRecord[Any, Any]]:
        """The dead letters of one record, by the consumer that refused it."""
        found = {}
        for record in self.records:
            headers = {name: value.decode() for name, value in record.headers}
            if (
                headers.get("dlq-topic") == topic
                and headers.get("dlq-partition") == str(partition)
                and headers.get("dlq-offset") == str(offset)
            ):
                found[headers.get("dlq-consumer", "")] = record
        return found


def group_of(principal: Principal) -> str:
    """The consumer group a platform process reads in, from the register of principals."""
    if principal is Principal.METRICS_WORKER:
        return METRICS_WORKER_APP_ID
    groups = PRINCIPAL_SPECS[principal].groups
    assert groups, f"{principal} reads in no declared group"
    return groups[0]


def reader_name(spec: TopicSpec, principal: Principal) -> str:
    """How a reader names itself in `dlq-consumer`."""
    if principal is Principal.AGENCY:
        return f"{agency_principal(AGENCY)}-{READER_ROLE}-{spec.name.rsplit('.', 1)[-1]}"
    return group_of(principal)


@dataclass
class AgencyReaders:
    """The agency package's channel readers, as the agency's system runs them."""

    signer: ExchangeStandIn
    taken: list[tuple[float, Event]] = field(default_factory=list)
    readers: list[ChannelReader] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, kafka: KafkaAccess, families: list[str]) -> None:
        keys = ExchangeKeys(keys=self.signer.keys())
        for family in families:
            reader = ChannelReader(
                kafka, AGENCY, family, f"{READER_ROLE}-{family.rsplit('.', 1)[-1]}", keys
            )
            self.readers.append(reader)
            self.tasks.append(asyncio.create_task(reader.run(self._take)))
        for reader in self.readers:
            await asyncio.wait_for(reader.ready.wait(), 60)

    async def _take(self, event: Event) -> None:
        self.taken.append((time.monotonic(), event))

    def took(self, payload: Event) -> bool:
        return any(event == payload for _, event in self.taken)

    async def stop(self) -> None:
        for reader in self.readers:
            await reader.stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass
class Outcome:
    """What the readers of one topic did with one poison and the good record behind it."""

    letters: dict[str, ConsumerRecord[Any, Any]]
    poison: bytes
    #: Seconds from the good record's publication until each reader had handled it;
    #: None for a reader that had not within the wait.
    handled_after: dict[str, float | None]
    #: The good record's dead letters, by reader (none, unless the topic is `JUDGED`).
    good_letters: dict[str, ConsumerRecord[Any, Any]]


@dataclass
class Bench:
    """Everything the poison cases share: publishing, watching, the agency's readers."""

    platform: LocalPlatform
    admin: KafkaAccess
    producer: AIOKafkaProducer
    offsets: AIOKafkaAdminClient
    dead_letters: DeadLetters
    agency: AgencyReaders
    issuer_key: ECKey
    issuer: str
    #: A service of the agency's, published, whose deliveries the catalog records.
    service_id: str
    outcomes: dict[tuple[str, str], Outcome] = field(default_factory=dict)
    #: Describes the services' groups (for the announcement's effect).
    groups: AdminClient | None = None

    async def publish(
        self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]]
    ) -> tuple[int, int, float]:
        sent = await self.producer.send_and_wait(
            topic, value, key=key.encode(), headers=headers or None
        )
        return sent.partition, sent.offset, time.monotonic()

    def good(self, spec: TopicSpec, key: str) -> Good:
        if spec.name == ISSUER_KEYS:
            signing, record = new_issuer_key(self.issuer, key)
            return Good(
                Envelope.wrap(record, source="identity", subject=key),
                effect=lambda: self._accepted_with(signing),
            )
        if spec.name == SESSIONS:
            return self._session_revocation(key)
        if spec.name == "identity.sms":
            return Good(Envelope.wrap(sms_payload(key), source="identity", subject=key))
        if spec.name == CHANNELS:
            return self._channels_opened(key)
        payload = documented_payload(spec, key)
        if spec.name == "agency.{agency}.deliveries":
            now = datetime.now(UTC)
            payload = payload.model_copy(
                update={
                    "report_id": uuid.uuid4(),
                    "service_id": self.service_id,
                    "channel": "online",
                    "started_at": now - timedelta(minutes=2),
                    "finished_at": now - timedelta(minutes=1),
                }
            )
        if Principal.AGENCY in spec.consumers:
            payload = self.agency.signer.signed(payload)
        return Good(Envelope.wrap(payload, source="poison-check", subject=key))

    def _session_revocation(self, key: str) -> Good:
        session_revoked = on_topic(SESSIONS)[0]
        session = uuid.uuid4()
        claims = access_claims(self.issuer, f"citizen-{key}", "", seconds=600)
        token = signed(self.issuer_key, claims | {"sid": str(session), "acr": "loa2"})
        revoked = session_revoked.model_validate(
            {
                "session": session,
                "reason": "signed_out",
                "tokens_expire_by": datetime.now(UTC) + timedelta(minutes=10),
            }
        )
        return Good(
            Envelope.wrap(revoked, source="identity", subject=str(session)),
            effect=lambda: self._refused(token),
        )

    def _channels_opened(self, key: str) -> Good:
        """An announcement of channels that `run` has the access manager open first."""
        opened = ChannelsOpened(agencies=[f"pc-{uuid.uuid4().hex[:8]}"])
        return Good(
            Envelope.wrap(opened, source="access-manager", subject=key),
            effect=lambda: self._groups_took(opened.agencies[0]),
        )

    def _channels_of(self, agency: str) -> dict[Principal, list[str]]:
        """The channels of `agency` each service that follows announcements reads."""
        return {
            principal: [
                channel(family.name, agency)
                for family in TOPICS
                if family.per_agency and principal in family.consumers
            ]
            for principal in SPECS[CHANNELS].consumers
        }

    async def _groups_took(self, agency: str) -> bool:
        if self.groups is None:
            self.groups = group_admin(self.admin)
        for principal, topics in self._channels_of(agency).items():
            if not await asyncio.to_thread(is_settled, self.groups, group_of(principal), topics):
                return False
        return True

    async def open_unannounced(self, agency: str) -> None:
        """Have the access manager make `agency`'s channels and the services' ACLs on them,
        without announcing them: the catalog records it inactive, and only active agencies
        are announced (their own principal has no ACL either way)."""
        inactive = AgencySystem(agency).recorded().model_copy(update={"active": False})
        envelope = Envelope.wrap(inactive, source="catalog", subject=agency)
        await self.producer.send_and_wait(
            envelope.destination, envelope.to_bytes(), key=agency.encode()
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REFUSED_WITHIN * 4
        for principal, topics in self._channels_of(agency).items():
            reader = metadata_client(self.platform.kafka_access(principal))
            while not await asyncio.to_thread(describes, reader, topics):
                assert loop.time() < deadline, f"{agency}'s channels never opened to {principal}"
                await asyncio.sleep(0.2)

    async def _accepted_with(self, key: ECKey) -> bool:
        claims = access_claims(self.issuer, "poison-check", "", seconds=600)
        return 401 not in await self._statuses(signed(key, claims))

    async def _refused(self, token: str) -> bool:
        return set(await self._statuses(token)) == {401}

    async def _statuses(self, token: str) -> list[int]:
        """What the catalog and the exchange answer a request with `token`."""
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(timeout=5) as http:
            answers = await asyncio.gather(
                http.get(f"{EXCHANGE}/citizens/me/data-requests", headers=headers),
                http.post(f"{CATALOG}/services/poison.check/publish", headers=headers),
            )
        return [answer.status_code for answer in answers]

    async def committed_past(self, group: str, partition: TopicPartition, offset: int) -> bool:
        committed = await self.offsets.list_consumer_group_offsets(group, partitions=[partition])
        position = committed.get(partition)
        return position is not None and position.offset > offset

    async def run(self, spec: TopicSpec, poison: str) -> Outcome:
        """Publish `poison` then the good record on `spec`'s topic; watch its readers."""
        topic = concrete(spec)
        # A second is the promise of a settled reader: a case before this one may have
        # registered an agency, whose channels make a pattern-subscribed group rebalance.
        for principal in readers_of(spec):
            if spec.name not in FOLLOWED and principal is not Principal.AGENCY:
                await until_settled(self.admin, reader_name(spec, principal), [topic])
        key = f"poison-{poison}-{uuid.uuid4().hex[:8]}"
        good = self.good(spec, key)
        good_bytes = good.envelope.to_bytes()
        headers = [] if poison == "missing-headers" else event_headers(good.envelope)
        bad = POISONS[poison](good_bytes, spec)
        if spec.name == CHANNELS:
            agency = good.envelope.payload.agencies[0]
            await self.open_unannounced(agency)
            # Only the announcement may make the services look: had a periodic refresh
            # found the channels already, the case would prove nothing.
            assert not await self._groups_took(agency), "found before any announcement"
        partition, bad_offset, _ = await self.publish(topic, key, bad, headers)
        _, good_offset, published_at = await self.publish(topic, key, good_bytes, headers)
        readers = {reader_name(spec, principal): principal for principal in readers_of(spec)}
        handled_after: dict[str, float | None] = dict.fromkeys(readers)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REFUSED_WITHIN
        tp = TopicPartition(topic, partition)
        while loop.time() < deadline:
            for name, principal in readers.items():
                if handled_after[name] is None and await self._handled(
                    spec, principal, name, good, tp, good_offset
                ):
                    handled_after[name] = time.monotonic() - published_at
            if all(after is not None for after in handled_after.values()):
                # Readers go in partition order: whoever handled the good record has
                # dealt with the poison before it, and its letter is on the way; so is
                # the good record's own, where the reader's judgement refuses it.
                deadline = min(deadline, loop.time() + LETTER_IN_TRANSIT)
                lettered = set(self.dead_letters.of(topic, partition, bad_offset))
                good_lettered = set(self.dead_letters.of(topic, partition, good_offset))
                if lettered >= set(readers) and (
                    spec.name not in JUDGED or good_lettered >= set(readers)
                ):
                    break
            await asyncio.sleep(0.05)
        return Outcome(
            letters=self.dead_letters.of(topic, partition, bad_offset),
            poison=bad,
            handled_after=handled_after,
            # Only the readers named here: an agency's other systems trust other keys.
            good_letters={
                name: letter
                for name, letter in self.dead_letters.of(topic, partition, good_offset).items()
                if name in readers
            },
        )

    async def _handled(
        self,
        spec: TopicSpec,
        principal: Principal,
        name: str,
        good: Good,
        tp: TopicPartition,
        offset: int,
    ) -> bool:
        if spec.name in FOLLOWED:
            assert good.effect is not None
            return bool(await good.effect())
        if principal is Principal.AGENCY:
            return self.agency.took(good.envelope.payload)
        return await self.committed_past(name, tp, offset)


@pytest.fixture(scope="module")
async def bench(platform: LocalPlatform, tokens: Tokens) -> AsyncIterator[Bench]:
    admin = platform.kafka_admin
    producer = AIOKafkaProducer(
        **admin.client_options(), acks="all", max_request_size=2 * 1024 * 1024
    )
    offsets = AIOKafkaAdminClient(**admin.client_options())
    specs = poisoned_topics()
    dead_letters = DeadLetters(admin, sorted({dead_letter_of(concrete(s)) for s in specs}))
    agency = AgencyReaders(ExchangeStandIn())
    await producer.start()
    await offsets.start()
    await dead_letters.start()
    await agency.start(
        await _agency_access(platform),
        [s.name for s in specs if Principal.AGENCY in s.consumers],
    )
    issuer = IDENTITY
    issuer_key, record = new_issuer_key(issuer, f"poison-check-{uuid.uuid4().hex[:8]}")
    await producer.send_and_wait(
        ISSUER_KEYS,
        Envelope.wrap(record, source="identity", subject=record.kid).to_bytes(),
        key=record.kid.encode(),
    )
    try:
        yield Bench(
            platform,
            admin,
            producer,
            offsets,
            dead_letters,
            agency,
            issuer_key,
            issuer,
            await published_service(tokens),
        )
    finally:
        await agency.stop()
        await dead_letters.stop()
        await offsets.close()
        await producer.stop()


async def published_service(tokens: Tokens) -> str:
    """A service the agency drafts and publishes through the catalog's API."""
    service_id = f"{AGENCY}.poison-check-{uuid.uuid4().hex[:8]}"
    writer = {"authorization": f"Bearer {tokens.agency}"}
    async with httpx.AsyncClient(base_url=CATALOG, timeout=10) as catalog:
        drafted = await catalog.post(
            "/services",
            json={
                "service_id": service_id,
                "title_fa": "بررسی رکورد مسموم",
                "title_en": "Poison record check",
                "description_fa": "خدمتی برای آزمودن گزارش ارائه خدمت.",
                "description_en": "A service to test delivery reports with.",
                "category": "tax",
                "audiences": ["citizens"],
                "channels": ["online"],
                "maturity": 4,
                "data_needs": [],
            },
            headers=writer,
        )
        assert drafted.status_code == 201, drafted.text
        published = await catalog.post(f"/services/{service_id}/publish", headers=writer)
        assert published.status_code == 200, published.text
    return service_id


async def _agency_access(platform: LocalPlatform) -> KafkaAccess:
    """The agency's own credentials, once the access manager has issued them."""
    path = platform.credentials_file(agency_principal(AGENCY))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 180
    while not path.exists():
        assert loop.time() < deadline, f"no credentials issued to {AGENCY}"
        await asyncio.sleep(0.5)
    return KafkaAccess.read(path)


async def outcome_of(bench: Bench, spec: TopicSpec, poison: str) -> Outcome:
    """Each case is published once; both of its tests read the same outcome."""
    case = (spec.name, poison)
    if case not in bench.outcomes:
        bench.outcomes[case] = await bench.run(spec, poison)
    return bench.outcomes[case]


def cases() -> Iterator[Any]:
    for spec in poisoned_topics():
        for poison in POISONS:
            yield pytest.param(spec, poison, id=f"{spec.name}-{poison}")


@pytest.mark.allows_error_logs
@pytest.mark.parametrize(("spec", "poison"), list(cases()))
async def test_a_poison_record_goes_to_the_dead_letter_topic_with_its_reason(
    bench: Bench, spec: TopicSpec, poison: str
) -> None:
    outcome = await outcome_of(bench, spec, poison)
    readers = sorted(reader_name(spec, principal) for principal in readers_of(spec))
    # Others may read the topic too (an agency's other systems): each says so itself.
    assert set(readers) <= set(outcome.letters), (
        f"dead-lettered by {sorted(outcome.letters)}, read by {readers}"
    )
    for reader in readers:
        letter = outcome.letters[reader]
        reason = dict(letter.headers).get("dlq-reason", b"").decode()
        assert reason, f"{reader} gave no reason"
        assert letter.value == outcome.poison, f"{reader} did not keep the record as it came"


@pytest.mark.allows_error_logs
@pytest.mark.parametrize(("spec", "poison"), list(cases()))
async def test_the_good_record_behind_a_poison_record_is_handled_within_a_second(
    bench: Bench, spec: TopicSpec, poison: str
) -> None:
    outcome = await outcome_of(bench, spec, poison)
    if spec.name in JUDGED:
        reasons = [
            dict(letter.headers)["dlq-reason"].decode() for letter in outcome.good_letters.values()
        ]
        assert reasons, f"the good record was not refused (handled: {outcome.handled_after})"
        assert all(JUDGED[spec.name] in reason for reason in reasons), reasons
    else:
        assert not outcome.good_letters, f"the good record was refused by {outcome.good_letters}"
    allowed = HANDLED_WITHIN + (REBALANCE_LAG if spec.name == CHANNELS else 0.0)
    slow = {
        reader: after
        for reader, after in outcome.handled_after.items()
        if after is None or after > allowed + COMMIT_LAG.get(reader, 0.0)
    }
    assert not slow, f"seconds until handled (None: not within {REFUSED_WITHIN} s): {slow}"


def test_every_topic_a_process_reads_is_poisoned() -> None:
    # The register drives the cases: this pins that it yields the topics we know of.
    names = {spec.name for spec in poisoned_topics()}
    assert {
        "platform.lifecycle",
        "platform.channels",
        "catalog.agencies",
        "identity.sms",
        "identity.issuer-keys",
        "agency.{agency}.requests",
        "agency.{agency}.forwarded",
        "metrics.exchange",
    } <= names
