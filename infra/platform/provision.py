"""What `panjereh init` does: declared topics, users and ACLs, database roles and every
service's migrations.

This is the one code path that prepares an already-running Kafka and PostgreSQL, used both
by the local platform (`LocalPlatform.start_infrastructure`) and by the compose file's
one-shot `init` service, so the two cannot prepare different things. Idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shared.kafka_access import KafkaAccess
from shared.topics import SINGLE_BROKER, Durability

if TYPE_CHECKING:
    from shared.topics import TopicSpec

log = logging.getLogger("panjereh.init")

_TOPIC_ALREADY_EXISTS = 36


@dataclass
class InitReport:
    """What an init run changed."""

    topics_created: list[str] = field(default_factory=list)
    topics_altered: list[str] = field(default_factory=list)
    topics_grown: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    migrations: dict[str, list[str]] = field(default_factory=dict)
    access: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary, one line per fact."""
        out = [f"topic created: {name}" for name in self.topics_created]
        out += [f"topic config updated: {name}" for name in self.topics_altered]
        out += [f"topic partitions added: {change}" for change in self.topics_grown]
        out += [f"access: {change}" for change in self.access]
        for service, applied in self.migrations.items():
            out.append(f"migrations {service}: {', '.join(applied) or 'up to date'}")
        out += [f"warning: {text}" for text in self.warnings]
        return out


class Passwords(Protocol):
    """Where each principal's SCRAM password comes from (the home's store, or variables)."""

    def get(self, name: str, /) -> str: ...


async def _admin(kafka: KafkaAccess, within: float) -> Any:
    """A started admin client, retrying until the broker answers or `within` seconds pass."""
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + within
    while True:
        admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=10000)
        try:
            await admin.start()
            return admin
        except Exception:
            await admin.close()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


#: Topics created per request: each is at most a few dozen metadata records.
TOPICS_PER_CREATE = 100


async def ensure_topics(
    kafka: KafkaAccess,
    report: InitReport,
    within: float = 60.0,
    *,
    agencies: Iterable[str] = (),
    development: bool = True,
    durability: Durability = SINGLE_BROKER,
) -> None:
    """Create every declared topic that is missing (and every channel topic of
    `agencies`), replicated as `durability` says; align configs of existing ones. Outside
    development, development-only topics are left out.

    Config alignment is best effort (a warning, not a failure): a broker may forbid some
    changes, and existing data must never be put at risk by init.
    """
    from aiokafka.admin import NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from shared.topics import TOPICS, channel

    declared = {
        spec.name: spec
        for spec in TOPICS
        if not spec.per_agency and (development or not spec.development_only)
    }
    for agency in agencies:
        declared |= {channel(s.name, agency): s for s in TOPICS if s.per_agency}
    admin = await _admin(kafka, within)
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in declared if name not in existing]
        # A controller refuses an operation of more than 10,000 metadata records, and a
        # whole register's channels at once (a topic, its partitions and its configs, for
        # 1,500 topics) is more: they go in slices.
        for start in range(0, len(missing), TOPICS_PER_CREATE):
            response = await admin.create_topics(
                [
                    NewTopic(
                        name,
                        declared[name].partitions,
                        durability.replication_factor,
                        topic_configs=declared[name].broker_config(durability),
                    )
                    for name in missing[start : start + TOPICS_PER_CREATE]
                ],
                timeout_ms=30000,
            )
            for name, code, message in _topic_errors(response):
                if code == 0:
                    report.topics_created.append(name)
                elif code != _TOPIC_ALREADY_EXISTS:  # a concurrent init won the race
                    raise RuntimeError(f"cannot create topic {name}: error {code} {message}")
        # New topics, and every topic of a broker just restarted, wait for leaders.
        partitions = await until_led(admin, list(declared), within)
        present = [name for name in declared if name not in missing]
        if not present:
            return
        await _grow(admin, declared, partitions, report)
        wanted = {name: declared[name].broker_config(durability) for name in present}
        try:
            differing = _differing(await _topic_configs(admin, wanted), wanted)
            if differing:
                # AlterConfigs replaces a topic's dynamic config: send the full declared set.
                responses = await admin.alter_configs(
                    [
                        ConfigResource(ConfigResourceType.TOPIC, name, configs=wanted[name])
                        for name in differing
                    ]
                )
                refused = {
                    str(resource[3]): f"error {resource[0]} {resource[1]}"
                    for response in responses
                    for resource in response.resources
                    if resource[0] != 0
                }
                if refused:
                    report.warnings.append(f"topic configs refused: {refused}")
                altered = [name for name in differing if name not in refused]
                report.topics_altered.extend(altered)
                late = await _until_configured(
                    admin, {name: wanted[name] for name in altered}, within
                )
                if late:
                    report.warnings.append(f"topic configs not in force after {within} s: {late}")
        except Exception as exc:
            report.warnings.append(f"could not align topic configs: {exc!r}")
    finally:
        await admin.close()


async def _grow(
    admin: Any,
    declared: Mapping[str, TopicSpec],
    partitions: Mapping[str, int],
    report: InitReport,
) -> None:
    """Give existing topics the partitions their spec gained (a topic never loses any).

    Records of a key go to another partition once a topic grows, so a compacted topic,
    whose latest record per key is its value, is left as it is, with a warning."""
    from aiokafka.admin import NewPartitions

    short = {
        name: spec.partitions
        for name, spec in declared.items()
        if partitions.get(name, spec.partitions) < spec.partitions
    }
    compacted = sorted(name for name in short if declared[name].cleanup_policy == "compact")
    if compacted:
        report.warnings.append(f"compacted topics keep fewer partitions than declared: {compacted}")
    growing = {name: count for name, count in short.items() if name not in compacted}
    if not growing:
        return
    response = await admin.create_partitions(
        {name: NewPartitions(count) for name, count in growing.items()}, timeout_ms=30000
    )
    for name, code, message in _topic_errors(response):
        if code != 0:
            raise RuntimeError(f"cannot add partitions to topic {name}: error {code} {message}")
        report.topics_grown.append(f"{name} ({partitions[name]} -> {growing[name]})")
    await until_led(admin, list(growing), 30.0)


async def until_led(admin: Any, topics: list[str], within: float) -> dict[str, int]:
    """Wait until every partition of `topics` has a leader: a client that reads a topic
    the moment it is created otherwise retries, logging an error each time. Returns each
    topic's partition count."""
    deadline = time.monotonic() + within
    while True:
        described = await admin.describe_topics(topics)
        if all(
            topic.get("error_code", 0) == 0
            and topic["partitions"]
            and all(partition["leader"] >= 0 for partition in topic["partitions"])
            for topic in described
        ):
            return {topic["topic"]: len(topic["partitions"]) for topic in described}
        if time.monotonic() > deadline:
            raise RuntimeError(f"topics without a leader after {within} s: {topics}")
        await asyncio.sleep(0.2)


async def _until_configured(
    admin: Any, wanted: Mapping[str, Mapping[str, str]], within: float
) -> list[str]:
    """Wait until the broker describes each topic with its `wanted` configs: a broker
    applies an accepted change as it replays the metadata log, a busy one a while later,
    and a record produced meanwhile is written under the old config. Returns the topics
    still differing when `within` ran out."""
    if not wanted:
        return []
    deadline = time.monotonic() + within
    while True:
        differing = _differing(await _topic_configs(admin, wanted), wanted)
        if not differing or time.monotonic() > deadline:
            return differing
        await asyncio.sleep(0.2)


async def _topic_configs(admin: Any, names: Iterable[str]) -> dict[str, dict[str, str]]:
    """{topic: {config: value}} of `names`, as the broker describes them now."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    )
    return _described_configs(responses)


def _differing(
    current: Mapping[str, Mapping[str, str]], wanted: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """The topics whose `current` configs differ from their `wanted` ones."""
    return [
        name
        for name, config in wanted.items()
        if any(current.get(name, {}).get(key) != value for key, value in config.items())
    ]


def _topic_errors(response: Any) -> Iterable[tuple[str, int, str | None]]:
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        yield str(name), int(code), message


def _described_configs(responses: Iterable[Any]) -> dict[str, dict[str, str]]:
    """{topic: {config: value}} from DescribeConfigs responses."""
    result: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            name, entries = resource[3], resource[4]
            result[str(name)] = {str(e[0]): str(e[1]) for e in entries}
    return result


async def ensure_coordinators(kafka: KafkaAccess, within: float = 60.0) -> None:
    """Wait until the broker can coordinate consumer groups and transactions.

    A fresh broker creates its offsets and transaction-state topics on the first request
    for a coordinator; until then every client logs errors and retries. Asking here means
    the services (and tests) start against a broker that is ready for them.
    """
    admin = await _admin(kafka, within)
    try:
        deadline = time.monotonic() + within
        for coordinator_type in (0, 1):  # 0: consumer groups, 1: transactions
            while True:
                try:
                    await admin.find_coordinator("panjereh-init", coordinator_type)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def apply_all_migrations(
    admin_url: str,
    report: InitReport,
    passwords: Mapping[str, str | None] | None = None,
) -> None:
    """Align every service's role and schema (`roles.ensure_roles`), then apply each
    service's migrations into its own schema as its role (`shared.db.apply_migrations`).

    `admin_url` is a superuser's DSN; `passwords` (service -> password) are set on the
    services' roles; a service not named keeps its role's password.
    """
    from infra.platform.roles import ensure_roles
    from shared.db import SERVICES, apply_migrations

    report.warnings += await ensure_roles(admin_url, passwords or {})
    for service in SERVICES:
        report.migrations[service] = list(await apply_migrations(admin_url, service))


async def ensure_access(
    admin: KafkaAccess,
    passwords: Passwords,
    report: InitReport,
    *,
    development: bool,
    agencies: Mapping[str, bool] | None = None,
) -> None:
    """Make the broker's users and ACLs equal to the registers and the agencies (code →
    active) (infra/platform/access.py)."""
    from infra.platform.access import BrokerAccess

    def apply() -> list[str]:
        plan = BrokerAccess(admin, passwords).apply(development=development, agencies=agencies)
        return [] if plan.empty else plan.lines()

    report.access.extend(await asyncio.to_thread(apply))


async def init_platform(
    admin: KafkaAccess,
    database_url: str,
    passwords: Passwords,
    *,
    development: bool = True,
    within: float = 60.0,
    database_passwords: Mapping[str, str | None] | None = None,
    durability: Durability = SINGLE_BROKER,
) -> InitReport:
    """Create declared topics, users and ACLs, the services' database roles, and apply
    every service's migrations. Idempotent.

    Works as the broker's super user (`admin`) and the database's administrator
    (`database_url`, a superuser); `database_passwords` are the services' roles' (see
    `apply_all_migrations`). Waits up to `within` seconds for the broker to answer
    (compose starts us early).
    """
    from infra.access.agencies import read_agencies

    report = InitReport()
    await ensure_topics(admin, report, within, development=development, durability=durability)
    # Agencies the catalog already recorded keep their channels, users and ACLs.
    agencies = await read_agencies(admin)
    await ensure_topics(
        admin, report, within, agencies=agencies, development=development, durability=durability
    )
    await ensure_access(admin, passwords, report, development=development, agencies=agencies)
    await ensure_coordinators(admin, within)
    await apply_all_migrations(database_url, report, database_passwords)
    return report
