"""Who may connect to the broker: one principal per platform process, and the analysts.

Every Kafka client authenticates as one of these (SASL/SCRAM). What each may do is not
written anywhere by hand: `shared/topics.py` names, for every topic, the principals that
produce and consume it, and the ACLs are derived from that register and this one
(`shared/acl.py`). Anything the registers do not name is refused by the broker.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Principal(StrEnum):
    """The platform's principals; values are the SCRAM user names the broker sees."""

    IDENTITY = "identity"
    CATALOG = "catalog"
    EXCHANGE = "exchange"
    METRICS = "metrics"
    METRICS_WORKER = "metrics-worker"
    SMS_GATEWAY = "sms-gateway"
    SIMULATOR = "simulator"
    ANALYST = "analyst"
    #: In a per-agency topic's spec: the agency whose channel it is. Not a user itself:
    #: each agency connects as `agency_principal(code)`.
    AGENCY = "agency"


#: The super user `infra/` works as; never a service's principal, never in an ACL.
ADMIN = "admin"
AGENCY_PREFIX = "agency-"


def agency_principal(code: str) -> str:
    """The principal an agency's systems connect as; also the prefix of its groups."""
    return f"{AGENCY_PREFIX}{code}"


class PrincipalSpec(BaseModel):
    """One principal: who it is, and the broker resources it owns besides topics."""

    model_config = ConfigDict(frozen=True)

    name: Principal
    description: str
    groups: tuple[str, ...] = Field(
        default=(), description="Consumer groups it joins and commits offsets for."
    )
    group_prefixes: tuple[str, ...] = Field(
        default=(), description="Prefixes of further consumer groups it may use."
    )
    transactional_ids: tuple[str, ...] = Field(
        default=(), description="Transactional ids its producers use (the outbox relay's)."
    )
    owned_topic_prefix: str | None = Field(
        default=None,
        description="Topics under this prefix are its own, created and managed by itself.",
    )
    development_only: bool = Field(
        default=False, description="Exists only where the platform runs for development."
    )


def outbox_relay_id(service: str) -> str:
    """The transactional id of a service's outbox relay."""
    return f"{service}-outbox-relay"


#: The Faust application id of the metrics worker (its group and its tables' prefix).
METRICS_WORKER_APP_ID = "panjereh-metrics"

PRINCIPALS: tuple[PrincipalSpec, ...] = (
    PrincipalSpec(
        name=Principal.IDENTITY,
        description="The identity service: citizens, agencies' clients and keys, tokens.",
        groups=("identity",),
        transactional_ids=(outbox_relay_id("identity"),),
    ),
    PrincipalSpec(
        name=Principal.CATALOG,
        description="The catalog service: the register of agencies and services, deliveries.",
        groups=("catalog",),
        transactional_ids=(outbox_relay_id("catalog"),),
    ),
    PrincipalSpec(
        name=Principal.EXCHANGE,
        description="The exchange service: data requests between agencies, their audit.",
        groups=("exchange",),
        transactional_ids=(outbox_relay_id("exchange"),),
    ),
    PrincipalSpec(
        name=Principal.METRICS,
        description="The metrics service: the figures' HTTP API and dashboard.",
        groups=("metrics",),
        transactional_ids=(outbox_relay_id("metrics"),),
    ),
    PrincipalSpec(
        name=Principal.METRICS_WORKER,
        description="The Faust stream processor that computes the programme's figures.",
        # Every worker deployment's application id starts with the same name: its group
        # and its tables' changelog topics are its own.
        group_prefixes=(METRICS_WORKER_APP_ID,),
        owned_topic_prefix=METRICS_WORKER_APP_ID,
    ),
    PrincipalSpec(
        name=Principal.SMS_GATEWAY,
        description="The SMS gateway: sends one-time codes to citizens' phones.",
        groups=("sms-gateway",),
    ),
    PrincipalSpec(
        name=Principal.SIMULATOR,
        description=("Simulated agencies and citizens' phones, so a development platform moves."),
        # The exchange client's provider workers name their group after the agency.
        group_prefixes=("simulator", "provider-"),
        development_only=True,
    ),
    PrincipalSpec(
        name=Principal.ANALYST,
        description="Analysts (ministry, provinces, parliament): read the figures, nothing else.",
    ),
)

PRINCIPAL_SPECS: dict[Principal, PrincipalSpec] = {spec.name: spec for spec in PRINCIPALS}
