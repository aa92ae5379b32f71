"""The topic register says what each process really does, so the ACLs derived from it
let every process do its work and nothing else.

What a process touches is read from its code: the `Topic` members and the event classes
its modules name (each event class travels on one topic), and what it consumes from its
handler maps and consumers. The register must name exactly those topics for it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

from services.exchange.bootstrap import TRANSACTION_TOPICS
from services.exchange.handlers import PROJECTION_HANDLERS
from services.identity.handlers import HANDLERS as IDENTITY_HANDLERS
from services.metrics.handlers import HANDLERS as METRICS_HANDLERS
from shared import registry
from shared.auth import FOLLOWED_TOPICS
from shared.principals import PRINCIPALS, Principal
from shared.runtime import consumed_topics
from shared.topics import SPECS, TOPICS, Topic

REPO = Path(__file__).resolve().parents[2]

# Every service runs shared/runtime.py: it announces its start and runs an outbox relay.
RUNTIME_TOPICS = {Topic.PLATFORM_LIFECYCLE, Topic.PLATFORM_OUTBOX_PROGRESS}

# Which source files act as which principal.
CODE: dict[Principal, tuple[str, ...]] = {
    Principal.IDENTITY: ("services/identity",),
    Principal.SMS_GATEWAY: ("services/identity/adapters/sms_gateway.py",),
    Principal.CATALOG: ("services/catalog",),
    Principal.EXCHANGE: ("services/exchange",),
    Principal.METRICS: ("services/metrics",),
    Principal.METRICS_WORKER: ("services/metrics/worker", "services/metrics/domain"),
    Principal.SIMULATOR: ("simulator",),
    # Every agency's system, through the agency package, on its own channel.
    Principal.AGENCY: ("clients/panjereh_agency",),
}
# Code inside a folder above that belongs to another principal.
CARVED_OUT = {
    "services/identity/adapters/sms_gateway.py",
    "services/metrics/worker",
    "services/metrics/domain",
}
SERVICES = {Principal.IDENTITY, Principal.CATALOG, Principal.EXCHANGE, Principal.METRICS}


# What each process consumes, from its handler maps and consumers.
CONSUMED: dict[Principal, set[Topic]] = {
    Principal.IDENTITY: set(consumed_topics(IDENTITY_HANDLERS)),
    Principal.CATALOG: {Topic.AGENCY_DELIVERIES, *FOLLOWED_TOPICS},
    Principal.EXCHANGE: {
        *consumed_topics(PROJECTION_HANDLERS),
        *TRANSACTION_TOPICS,
        *FOLLOWED_TOPICS,
    },
    Principal.METRICS: set(consumed_topics(METRICS_HANDLERS)),
    Principal.SMS_GATEWAY: {Topic.IDENTITY_SMS},
    Principal.SIMULATOR: {Topic.DEVELOPMENT_PHONES},
}


def reads_channels_by_pattern(principal: Principal) -> bool:
    """Whether its consumer reads a family of channels, so follows `platform.channels`
    to find new ones (shared/kafka.py, shared/channel_watch.py)."""
    return any(SPECS[topic].per_agency for topic in CONSUMED.get(principal, ()))


def _files(principal: Principal) -> list[Path]:
    roots = CODE[principal]
    found: list[Path] = []
    for root in roots:
        path = REPO / root
        candidates = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for candidate in candidates:
            relative = candidate.relative_to(REPO).as_posix()
            carved = {c for c in CARVED_OUT if c not in roots}
            if any(relative == c or relative.startswith(c + "/") for c in carved):
                continue
            found.append(candidate)
    return found


def _names(files: Iterable[Path]) -> tuple[set[str], set[str]]:
    """(Topic member names, other identifiers) the files mention."""
    members: set[str] = set()
    identifiers: set[str] = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text("utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "Topic"
            ):
                members.add(node.attr)
            elif isinstance(node, ast.Name):
                identifiers.add(node.id)
            elif isinstance(node, ast.alias):
                identifiers.add(node.asname or node.name)
    return members, identifiers


def touched_by_code(principal: Principal) -> set[str]:
    """Topics the principal's code names, directly or through the events it names."""
    members, identifiers = _names(_files(principal))
    topics = {Topic[member].value for member in members}
    topics |= {cls.topic.value for cls in registry.registered() if cls.__name__ in identifiers}
    if principal is Principal.SIMULATOR:
        # Its simulated agencies act on their channels through the agency package, each
        # as its own principal, never as the simulator.
        topics -= {spec.name for spec in TOPICS if spec.per_agency}
    if principal in SERVICES:
        topics |= {topic.value for topic in RUNTIME_TOPICS}
        bootstrap = (REPO / "services" / principal.value / "bootstrap.py").read_text("utf-8")
        if "verifies_tokens=True" in bootstrap:
            topics |= {topic.value for topic in FOLLOWED_TOPICS}
        if reads_channels_by_pattern(principal):
            topics.add(Topic.PLATFORM_CHANNELS.value)
    return topics


def named_by_register(principal: Principal) -> set[str]:
    """Event topics (not dead-letter twins) the register names the principal on."""
    return {
        spec.name
        for spec in TOPICS
        if not spec.name.endswith(".dlq")
        and (principal in spec.producers or principal in spec.consumers)
    }


@pytest.mark.parametrize("principal", sorted(CODE), ids=str)
def test_the_register_names_a_principal_on_exactly_the_topics_its_code_uses(
    principal: Principal,
) -> None:
    assert named_by_register(principal) == touched_by_code(principal)


def test_what_the_services_consume_is_declared_as_consumed() -> None:
    for principal, topics in CONSUMED.items():
        for topic in topics:
            spec = next(s for s in TOPICS if s.name == topic.value)
            assert principal in spec.consumers, f"{principal} consumes {topic} undeclared"


def test_analysts_read_the_figures_the_programme_register_and_audit_anchors_only() -> None:
    readable = {spec.name for spec in TOPICS if Principal.ANALYST in spec.consumers}
    figures = {topic.value for topic in Topic if topic.value.startswith("metrics.")}
    register = {topic.value for topic in Topic if topic.value.startswith("programme.")}
    assert readable == figures | register | {Topic.EXCHANGE_AUDIT_CHECKPOINTS.value}
    assert not [spec.name for spec in TOPICS if Principal.ANALYST in spec.producers]


def test_every_principal_of_the_register_is_a_declared_principal() -> None:
    declared = {spec.name for spec in PRINCIPALS} | {Principal.AGENCY}
    assert declared == set(Principal)
    for spec in TOPICS:
        assert set(spec.producers) <= declared
        assert set(spec.consumers) <= declared
