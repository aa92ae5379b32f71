"""Every Kafka topic of the platform, declared once.

Topics are the platform's public API. This module is the single declarative source for
them: the local platform and the compose file create topics from it, the event registry
binds event types to these names, and the AsyncAPI document is generated from it.
Adding a topic means adding a `Topic` member and its `TopicSpec` here; nothing else
names a topic by string. Each topic that carries events gets a dead-letter twin,
`<name>.dlq`, declared with it.

Some topics are one per agency: its channel. What is meant for one agency travels on
topics only that agency may read, and what an agency sends, on topics only it (and the
platform's gateways acting for it) may write: `agency.<code>.requests`, `.answers` and
`.deliveries` in, `agency.<code>.forwarded` and `.outcomes` out. Their specs name the
family (`agency.{agency}.requests`); the topics themselves are made, with their ACLs,
when the catalog registers the agency. The platform learns who sent a record from the
channel it came on, never from a field the sender filled in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.principals import Principal

DAY_MS = 24 * 60 * 60 * 1000
FOREVER = None
#: An event topic's largest record. Its dead-letter twin takes a little more, so that a
#: refused record of the largest size still fits with the reason in its headers; both stay
#: within a producer's default request size (1 MiB).
MAX_RECORD_BYTES = 1_000_000
DEAD_LETTER_MAX_RECORD_BYTES = 1024 * 1024
#: How long a dead letter can be replayed: the consumers' dedup horizon must cover it.
DEAD_LETTER_RETENTION_MS = 30 * DAY_MS


@dataclass(frozen=True)
class Durability:
    """How many brokers hold each partition, and how many must have a write before it is
    acknowledged. The cluster's, not a topic's: one broker in development, three in
    production (`PANJEREH_KAFKA_REPLICATION_FACTOR`, `PANJEREH_KAFKA_MIN_INSYNC_REPLICAS`)."""

    replication_factor: int = 1
    min_insync_replicas: int = 1

    @classmethod
    def for_brokers(cls, brokers: int) -> Durability:
        """What a cluster of `brokers` gives every topic: three replicas, two in sync, once
        there are three brokers (one may then be down without refusing a write)."""
        replicas = min(brokers, 3)
        return cls(replicas, 2 if replicas == 3 else 1)

    def __post_init__(self) -> None:
        if not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise ValueError(
                f"min.insync.replicas {self.min_insync_replicas} must be between 1 and the "
                f"replication factor {self.replication_factor}"
            )


#: One broker, as the local platform and the test harness run it.
SINGLE_BROKER = Durability()


class Topic(StrEnum):
    """Names of the platform's topics (dead-letter twins aside); values are what the broker sees."""

    PLATFORM_LIFECYCLE = "platform.lifecycle"
    PLATFORM_CHANNELS = "platform.channels"
    PLATFORM_OUTBOX_PROGRESS = "platform.outbox-progress"

    CATALOG_AGENCIES = "catalog.agencies"
    CATALOG_SERVICES = "catalog.services"
    CATALOG_CHANGES = "catalog.changes"
    CATALOG_DELIVERIES = "catalog.deliveries"

    IDENTITY_CITIZENS = "identity.citizens"
    IDENTITY_AUTHENTICATIONS = "identity.authentications"
    IDENTITY_AGENCY_KEYS = "identity.agency-keys"
    IDENTITY_ISSUER_KEYS = "identity.issuer-keys"
    IDENTITY_SMS = "identity.sms"
    IDENTITY_SESSIONS = "identity.sessions"

    EXCHANGE_DATA_SERVICES = "exchange.data-services"
    EXCHANGE_ACCESS_RIGHTS = "exchange.access-rights"
    EXCHANGE_TRANSACTIONS = "exchange.transactions"
    EXCHANGE_AUDIT_CHECKPOINTS = "exchange.audit-checkpoints"

    METRICS_EXCHANGE = "metrics.exchange"
    METRICS_IDENTITY = "metrics.identity"
    METRICS_ADOPTION = "metrics.adoption"
    METRICS_DELIVERIES = "metrics.deliveries"
    METRICS_PROGRAMME = "metrics.programme"
    METRICS_EVALUATIONS = "metrics.evaluations"

    PROGRAMME_INDICATORS = "programme.indicators"
    PROGRAMME_TARGETS = "programme.targets"
    PROGRAMME_OBSERVATIONS = "programme.observations"
    PROGRAMME_PROVINCIAL_REPORTS = "programme.provincial-reports"
    PROGRAMME_REPORTS = "programme.reports"

    DEVELOPMENT_PHONES = "development.phones"

    # Each agency's channel: one topic of each family per agency (see `channel`).
    AGENCY_REQUESTS = "agency.{agency}.requests"
    AGENCY_ANSWERS = "agency.{agency}.answers"
    AGENCY_DELIVERIES = "agency.{agency}.deliveries"
    AGENCY_FORWARDED = "agency.{agency}.forwarded"
    AGENCY_OUTCOMES = "agency.{agency}.outcomes"


class TopicSpec(BaseModel):
    """What a topic is for, who writes and reads it, and how the broker keeps it."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    key: str = Field(description="What the record key is; it decides the partition.")
    producers: tuple[Principal, ...] = Field(
        description="The principals that write it; the broker lets no one else."
    )
    consumers: tuple[Principal, ...] = Field(
        description="The principals that read it; the broker lets no one else."
    )
    partitions: int = Field(ge=1)
    cleanup_policy: Literal["delete", "compact"] = "delete"
    # None keeps records forever (compacted state topics, audit-grade streams).
    retention_ms: int | None = 7 * DAY_MS
    dead_letter: str | None = Field(
        default=None, description="Where consumers send what they cannot decode or accept."
    )
    internal: bool = Field(
        default=False, description="Plumbing of the platform, not part of its public API."
    )
    sensitive: bool = Field(
        default=False,
        description="Carries personal data in the clear: readable only by its named consumers.",
    )
    per_agency: bool = Field(
        default=False,
        description=(
            "A family of topics, one per agency (`{agency}` in the name is its code); "
            "`Principal.AGENCY` among producers or consumers means that agency."
        ),
    )
    development_only: bool = Field(
        default=False,
        description="Exists only where the platform runs for development: outside it the "
        "topic is not created and no ACL names it.",
    )
    max_record_bytes: int = Field(
        default=MAX_RECORD_BYTES,
        description="The largest record (as a batch of one, headers included) the broker "
        "takes; services refuse a larger event before it reaches their outbox.",
    )
    broker_timestamps: bool = Field(
        default=False,
        description="Each record's timestamp is when the broker took it (LogAppendTime), "
        "not what its producer wrote: the platform judges deadlines by it.",
    )

    def broker_config(self, durability: Durability = SINGLE_BROKER) -> dict[str, str]:
        """Topic-level broker configuration for creating or altering this topic."""
        config = {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms if self.retention_ms is not None else -1),
            "min.insync.replicas": str(durability.min_insync_replicas),
            "max.message.bytes": str(self.max_record_bytes),
        }
        if self.broker_timestamps:
            config["message.timestamp.type"] = "LogAppendTime"
        return config


def _with_dead_letter(spec: TopicSpec) -> tuple[TopicSpec, TopicSpec]:
    """The spec, pointing at its dead-letter twin, and the twin's own spec."""
    twin = TopicSpec(
        name=f"{spec.name}.dlq",
        description=(
            f"Records from `{spec.name}` that a consumer could not decode or accept: the "
            "original bytes as the value, the reason and origin in headers."
        ),
        key="the original record's key",
        # Whoever consumes a topic refuses its records onto it (analysts, who only read,
        # refuse nothing); the platform team reads them as the admin, whom no ACL names.
        # An agency may read why its own records were refused.
        producers=tuple(c for c in spec.consumers if c is not Principal.ANALYST),
        consumers=(Principal.AGENCY,) if spec.per_agency else (),
        partitions=1,
        retention_ms=DEAD_LETTER_RETENTION_MS,
        sensitive=spec.sensitive,
        per_agency=spec.per_agency,
        development_only=spec.development_only,
        max_record_bytes=DEAD_LETTER_MAX_RECORD_BYTES,
    )
    return spec.model_copy(update={"dead_letter": twin.name}), twin


_EVENT_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        name=Topic.PLATFORM_LIFECYCLE,
        description="Each service announces here that it started, with its release.",
        key="the service name",
        producers=(Principal.IDENTITY, Principal.CATALOG, Principal.EXCHANGE, Principal.METRICS),
        consumers=(Principal.METRICS_WORKER,),
        partitions=3,
    ),
    TopicSpec(
        name=Topic.PLATFORM_CHANNELS,
        description=(
            "The access manager (working as the platform's admin) announces here the "
            "agencies whose channels it has made and opened with their ACLs. The services "
            "that read a family of channels by pattern refresh the broker's metadata on "
            "each announcement, so they read a new agency's channel at once; they need not "
            "ask for the metadata of every topic every few seconds to find it."
        ),
        key="the access manager",
        # Only the admin writes it, and the admin needs no ACL.
        producers=(),
        consumers=(Principal.CATALOG, Principal.EXCHANGE),
        partitions=1,
        retention_ms=1 * DAY_MS,
        internal=True,
    ),
    # The catalog: the register of agencies and services, and every service delivery.
    TopicSpec(
        name=Topic.CATALOG_AGENCIES,
        description=(
            "The register of agencies: one record per agency with its current state "
            "(names, ministry, scope, connection to the window and the exchange). Any "
            "service rebuilds its projection of agencies from this topic alone."
        ),
        key="the agency code",
        producers=(Principal.CATALOG,),
        consumers=(Principal.IDENTITY, Principal.EXCHANGE, Principal.METRICS_WORKER),
        partitions=3,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.CATALOG_SERVICES,
        description=(
            "The national services window: one record per service with its current state "
            "(owner, titles, channels, maturity, status)."
        ),
        key="the service id",
        producers=(Principal.CATALOG,),
        consumers=(Principal.METRICS_WORKER,),
        partitions=6,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.CATALOG_CHANGES,
        description="Every change to the register, as it happened: the register's history.",
        key="the agency code or service id changed",
        producers=(Principal.CATALOG,),
        # The register's history, for the platform team; no service reads it.
        consumers=(),
        partitions=3,
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.CATALOG_DELIVERIES,
        description=(
            "Service deliveries the catalog validated against the register; each report "
            "appears once, however often it was delivered."
        ),
        key="the service id",
        producers=(Principal.CATALOG,),
        consumers=(Principal.METRICS_WORKER,),
        partitions=6,
        retention_ms=90 * DAY_MS,
    ),
    # Identity: citizens, authentications, and the keys agencies sign with.
    TopicSpec(
        name=Topic.IDENTITY_CITIZENS,
        description=(
            "Citizens registered in the window, by pseudonymous id: never the national ID "
            "or mobile."
        ),
        key="the citizen's pseudonymous id",
        producers=(Principal.IDENTITY,),
        consumers=(Principal.METRICS_WORKER,),
        partitions=6,
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.IDENTITY_AUTHENTICATIONS,
        description="Sign-ins, failed sign-ins and lockouts, by pseudonymous id.",
        key="the citizen's pseudonymous id (the client address for unknown citizens)",
        producers=(Principal.IDENTITY,),
        consumers=(Principal.METRICS_WORKER,),
        partitions=6,
        retention_ms=90 * DAY_MS,
    ),
    TopicSpec(
        name=Topic.IDENTITY_AGENCY_KEYS,
        description=(
            "The public keys agencies' systems sign with: one record per key id, its latest "
            "state (published or revoked). The exchange verifies signatures from this alone."
        ),
        key="the key id (kid)",
        producers=(Principal.IDENTITY,),
        consumers=(Principal.EXCHANGE,),
        partitions=3,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.IDENTITY_ISSUER_KEYS,
        description=(
            "The public keys identity signs access tokens with: one record per key id, its "
            "latest state. Every service verifies tokens with these alone, never by calling "
            "identity."
        ),
        key="the key id (kid)",
        producers=(Principal.IDENTITY,),
        consumers=(Principal.CATALOG, Principal.EXCHANGE, Principal.METRICS),
        partitions=1,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.IDENTITY_SESSIONS,
        description=(
            "Citizens' sessions that ended before their time (signed out, or a refresh "
            "token replayed). Every service that verifies tokens follows it and refuses "
            "the session's access tokens within seconds; a record matters only until the "
            "session's last access token expires (at most an hour), so a day is kept."
        ),
        key="the session id (the tokens' `sid`)",
        producers=(Principal.IDENTITY,),
        consumers=(Principal.CATALOG, Principal.EXCHANGE, Principal.METRICS),
        partitions=3,
        retention_ms=1 * DAY_MS,
    ),
    TopicSpec(
        name=Topic.IDENTITY_SMS,
        description=(
            "Text messages for the SMS gateway to send (one-time sign-in codes). The mobile "
            "number and the text are sealed to the gateway's public key, so only the gateway "
            "opens them, and only the gateway may read the topic; kept one day."
        ),
        key="the message id",
        producers=(Principal.IDENTITY,),
        consumers=(Principal.SMS_GATEWAY,),
        partitions=3,
        retention_ms=1 * DAY_MS,
        internal=True,
        sensitive=True,
    ),
    # The exchange: data services, rights, and every transaction between agencies.
    TopicSpec(
        name=Topic.EXCHANGE_DATA_SERVICES,
        description=(
            "Data services providers registered on the exchange: one record per data "
            "service with its schemas, timeout and purposes."
        ),
        key="the data service id",
        producers=(Principal.EXCHANGE,),
        # The exchange keeps its own tables; the topic is the register's public state.
        consumers=(),
        partitions=3,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.EXCHANGE_ACCESS_RIGHTS,
        description=(
            "Which consumer agency may call which data service, for which purposes, on "
            "which legal basis, from when until when: one record per right, latest state."
        ),
        key="the right id",
        producers=(Principal.EXCHANGE,),
        consumers=(),
        partitions=3,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.EXCHANGE_TRANSACTIONS,
        description=(
            "Operational monitoring: one record per finished transaction (parties, data "
            "service, purpose, outcome, sizes, the exchange's and the provider's time)."
        ),
        key="the transaction id",
        producers=(Principal.EXCHANGE,),
        consumers=(Principal.METRICS_WORKER,),
        partitions=6,
        retention_ms=365 * DAY_MS,
    ),
    TopicSpec(
        name=Topic.EXCHANGE_AUDIT_CHECKPOINTS,
        description=(
            "The audit log's anchors outside the database: every few seconds or records, "
            "the exchange signs where its hash chain stands (the last record's seq and hash, "
            "the hash of each record since the previous checkpoint, the time). `panjereh "
            "audit verify` checks the log against them; analysts may keep their own copy."
        ),
        key="the checkpoint's last seq and hash, `<seq>:<hash>`",
        producers=(Principal.EXCHANGE,),
        # No personal data, only hashes: anyone outside the platform team who keeps a copy
        # makes the anchors harder to take back.
        consumers=(Principal.ANALYST,),
        partitions=1,
        # Compaction drops only a checkpoint published twice: a different head for the
        # same seq (a rewritten history) has another key and stays.
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    # Each agency's channel. In: what the agency sends (and what the platform's HTTP
    # gateways received from it, authenticated by its token). Out: what only it may read.
    # The platform's groups read every agency's "in" topics, one partition each. The
    # broker works on every partition of a fetch session on every fetch, though idle ones
    # wait in a watch of their own (`shared/fetch_sessions.py`); with four partitions each
    # the exchange's round trip at 100/s was longer, not shorter, with 153 agencies
    # (services/exchange/README.md). The groups scale out across agencies' topics. "Out"
    # topics keep two, for an agency running two workers.
    TopicSpec(
        name=Topic.AGENCY_REQUESTS,
        description=(
            "The agency's signed data requests to the exchange, as the consumer: from its "
            "systems (exchange client) or through the exchange's HTTP gateway."
        ),
        key="the transaction id",
        producers=(Principal.AGENCY, Principal.EXCHANGE),
        consumers=(Principal.EXCHANGE,),
        partitions=1,
        per_agency=True,
        # A request's deadline runs from when the broker took it.
        broker_timestamps=True,
    ),
    TopicSpec(
        name=Topic.AGENCY_ANSWERS,
        description="The agency's signed answers and refusals, as a data provider.",
        key="the transaction id",
        producers=(Principal.AGENCY,),
        consumers=(Principal.EXCHANGE,),
        partitions=1,
        per_agency=True,
        # An answer is on time if the broker took it before the deadline, however late
        # the exchange reads it (after a restart, a restore).
        broker_timestamps=True,
    ),
    TopicSpec(
        name=Topic.AGENCY_DELIVERIES,
        description=(
            "Every service request the agency served and its outcome, from its systems or "
            "through the catalog's HTTP ingestion. Unvalidated: the catalog checks each "
            "against the register."
        ),
        key="the service id",
        producers=(Principal.AGENCY, Principal.CATALOG),
        consumers=(Principal.CATALOG,),
        partitions=1,
        per_agency=True,
    ),
    TopicSpec(
        name=Topic.AGENCY_FORWARDED,
        description=(
            "Requests the exchange authorised for one of the agency's data services, "
            "signed by the exchange, for the agency's systems to answer."
        ),
        key="the transaction id",
        producers=(Principal.EXCHANGE,),
        consumers=(Principal.AGENCY,),
        partitions=2,
        per_agency=True,
        sensitive=True,
    ),
    TopicSpec(
        name=Topic.AGENCY_OUTCOMES,
        description=(
            "The final outcome of each of the agency's requests, signed by the exchange: "
            "answered (with the data), denied, refused, timed out or failed."
        ),
        key="the transaction id",
        producers=(Principal.EXCHANGE,),
        consumers=(Principal.AGENCY,),
        partitions=2,
        per_agency=True,
        sensitive=True,
    ),
    # Metrics: the programme's figures, for analysts.
    *(
        TopicSpec(
            name=name,
            description=(
                f"Live figures about {subject}: one record per metric, dimension and window, "
                "its latest value. Consume with any Kafka client."
            ),
            key="the metric name, its dimensions and its window",
            producers=(Principal.METRICS_WORKER,),
            consumers=(Principal.METRICS, Principal.ANALYST),
            partitions=3,
            cleanup_policy="compact",
            retention_ms=FOREVER,
        )
        for name, subject in (
            (Topic.METRICS_EXCHANGE, "the national information exchange"),
            (Topic.METRICS_IDENTITY, "sign-ins and the people authenticated"),
            (Topic.METRICS_ADOPTION, "the window's services, agencies and their maturity"),
            (Topic.METRICS_DELIVERIES, "service deliveries, channels and digital take-up"),
        )
    ),
    TopicSpec(
        name=Topic.METRICS_PROGRAMME,
        description=(
            "Where each target of the programme stands: the indicator's current value, "
            "progress from baseline to target, trend, value projected at the deadline and "
            "status (on track, at risk, behind), with the series behind them; one record per "
            "target, its latest state. Consume with any Kafka client."
        ),
        key="the target id",
        producers=(Principal.METRICS_WORKER,),
        consumers=(Principal.METRICS, Principal.ANALYST),
        partitions=1,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.METRICS_EVALUATIONS,
        description=(
            "The quarterly evaluation of agencies: one record per agency and Jalali quarter, "
            "its latest scorecard (each indicator's figure, its 0-100 score and weight), the "
            "weighted score, the rank among the quarter's agencies and the change since the "
            "previous quarter. Consume with any Kafka client."
        ),
        key="the agency and the quarter, `tax|1405-Q3`",
        producers=(Principal.METRICS_WORKER,),
        consumers=(Principal.METRICS, Principal.ANALYST),
        partitions=1,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    # The programme register, kept by the metrics service: indicators, targets and the
    # figures reported for them. Small, so one partition each: the worker reads them whole.
    TopicSpec(
        name=Topic.PROGRAMME_INDICATORS,
        description=(
            "The indicators the programme is monitored by: one record per indicator, its "
            "latest definition (names, unit, direction, live or reported, evaluation weight)."
        ),
        key="the indicator code",
        producers=(Principal.METRICS,),
        consumers=(Principal.METRICS_WORKER, Principal.ANALYST),
        partitions=1,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.PROGRAMME_TARGETS,
        description=(
            "The programme's targets: one record per target, its latest state (indicator, "
            "national, provincial or agency scope, baseline, value, Jalali deadline, and the "
            "plan or law that sets it)."
        ),
        key="the target id",
        producers=(Principal.METRICS,),
        consumers=(Principal.METRICS_WORKER, Principal.ANALYST),
        partitions=1,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.PROGRAMME_OBSERVATIONS,
        description=(
            "Figures reported for the programme's indicators (historical baselines, the "
            "operator's and the provinces' reports): one record per indicator, scope and "
            "day, its latest revision; a correction supersedes the earlier figure."
        ),
        key="the indicator, the scope and the Jalali day",
        producers=(Principal.METRICS,),
        consumers=(Principal.METRICS_WORKER, Principal.ANALYST),
        partitions=1,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.PROGRAMME_PROVINCIAL_REPORTS,
        description=(
            "The provincial ICT directorates' weekly reports, as accepted: one record per "
            "province and Jalali week, its latest revision (figures, projects' progress, "
            "reasons for falls, whether it came late). Each figure is also a reported "
            "figure on `programme.observations`."
        ),
        key="the province and the week, `IR-15|1405-W36`",
        producers=(Principal.METRICS,),
        consumers=(Principal.ANALYST,),
        partitions=1,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    TopicSpec(
        name=Topic.PROGRAMME_REPORTS,
        description=(
            "Each report file the metrics service generated (a province's weekly report, "
            "the national weekly summary, the quarterly evaluation of agencies), as HTML, PDF "
            "or CSV: its kind, period, format, revision, SHA-256, size and the path it is "
            "served at; a regenerated file (a late report, a correction) is the next revision."
        ),
        key="the kind, period, subject and format, `province-week|1405-W36|IR-15|pdf`",
        producers=(Principal.METRICS,),
        consumers=(Principal.ANALYST,),
        partitions=1,
        cleanup_policy="compact",
        retention_ms=FOREVER,
    ),
    # Development only: what the development SMS gateway "delivers" to the simulated phones.
    TopicSpec(
        name=Topic.DEVELOPMENT_PHONES,
        description=(
            "Development only: each text message the development SMS gateway opened, as a "
            "phone would show it (mobile and text in the clear), for the simulator's "
            "citizens. Not created, and readable by no one, in production."
        ),
        key="the message id",
        producers=(Principal.SMS_GATEWAY,),
        consumers=(Principal.SIMULATOR,),
        partitions=3,
        retention_ms=1 * DAY_MS,
        internal=True,
        sensitive=True,
        development_only=True,
    ),
)

_PLUMBING_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        name=Topic.PLATFORM_OUTBOX_PROGRESS,
        description=(
            "Each outbox relay writes, in the same Kafka transaction as the events it "
            "publishes, which outbox rows that transaction carried; after a crash the relay "
            "reads its last marker to learn what is already published."
        ),
        key="the relay's transactional id",
        producers=(Principal.IDENTITY, Principal.CATALOG, Principal.EXCHANGE, Principal.METRICS),
        # Each relay reads its own last marker back after a restart.
        consumers=(Principal.IDENTITY, Principal.CATALOG, Principal.EXCHANGE, Principal.METRICS),
        partitions=1,
        cleanup_policy="compact",
        retention_ms=FOREVER,
        internal=True,
    ),
)

TOPICS: tuple[TopicSpec, ...] = (
    *(half for spec in _EVENT_TOPICS for half in _with_dead_letter(spec)),
    *_PLUMBING_TOPICS,
)

SPECS: dict[str, TopicSpec] = {spec.name: spec for spec in TOPICS}


AGENCY_PLACEHOLDER = "{agency}"
_AGENCY_CODE = r"[a-z][a-z0-9-]{1,39}"


def channel(family: str, agency: str) -> str:
    """The topic of `agency` in a per-agency family, e.g. `agency.tax.requests`."""
    if not SPECS[family].per_agency:
        raise ValueError(f"{family} is not a per-agency topic")
    if not re.fullmatch(_AGENCY_CODE, agency):
        raise ValueError(f"{agency!r} is not an agency code")
    return family.replace(AGENCY_PLACEHOLDER, agency)


def _family_regex(family: str) -> str:
    before, after = family.split(AGENCY_PLACEHOLDER)
    return re.escape(before) + f"({_AGENCY_CODE})" + re.escape(after)


_FAMILIES = [(re.compile(_family_regex(spec.name)), spec) for spec in TOPICS if spec.per_agency]


def resolve(topic: str) -> tuple[TopicSpec, str | None]:
    """The spec a concrete topic name belongs to, and the agency whose channel it is.

    KeyError for a topic no spec declares.
    """
    declared = SPECS.get(topic)
    if declared is not None and not declared.per_agency:
        return declared, None
    for pattern, family in _FAMILIES:
        match = pattern.fullmatch(topic)
        if match is not None:
            return family, match.group(1)
    raise KeyError(topic)


def subscription_pattern(topics: list[str]) -> str:
    """A regular expression matching these topics, every agency's for a per-agency family."""
    alternatives = [
        _family_regex(name) if SPECS[name].per_agency else re.escape(name) for name in topics
    ]
    return "^(?:" + "|".join(alternatives) + ")$"


def spec(topic: str) -> TopicSpec:
    """The spec of a declared topic (dead-letter twins and agencies' channels included)."""
    return resolve(topic)[0]


def dead_letter_of(topic: str) -> str:
    """The dead-letter topic of a topic that carries events (of an agency's, its own)."""
    declared, agency = resolve(topic)
    target = declared.dead_letter
    if target is None:
        raise ValueError(f"topic {topic} has no dead-letter topic")
    return target if agency is None else channel(target, agency)
