"""The broker's ACLs, derived from the topic and principal registers; never written by hand.

- A producer of a topic may write it and describe it. Idempotent producers need nothing
  more (the broker grants idempotence to whoever may write a topic); a transactional
  producer also gets write and describe on its declared transactional ids.
- A consumer of a topic may read and describe it, and read its declared groups.
- A principal that owns a topic prefix (the metrics worker's tables) may do anything to
  the topics under it, creating them included.
- Each agency's channel (the per-agency families of the register) gets literal bindings
  made when the agency is registered: the agency's principal where the spec says
  `Principal.AGENCY`, the platform's principals where it names them, on that agency's
  topics alone; and the agency's consumer groups (those named after its principal).

Every binding allows; nothing is denied explicitly, because the broker already refuses
whatever no binding allows (`allow.everyone.if.no.acl.found=false`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from shared.principals import PRINCIPALS, Principal, PrincipalSpec, agency_principal
from shared.topics import TOPICS, TopicSpec, channel

ResourceType = Literal["topic", "group", "transactional_id"]
PatternType = Literal["literal", "prefixed"]
Operation = Literal["read", "write", "describe", "create", "all"]


@dataclass(frozen=True, order=True)
class AclBinding:
    """One allowed operation of one principal on one resource (or resource prefix)."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    operation: Operation

    def describe(self) -> str:
        """One line a person reads in `panjereh acl plan`."""
        pattern = "*" if self.pattern_type == "prefixed" else ""
        return (
            f"User:{self.principal} {self.operation.upper()} "
            f"{self.resource_type} {self.resource_name}{pattern}"
        )


def _topic(principal: str, topic: str, *operations: Operation) -> Iterable[AclBinding]:
    for operation in operations:
        yield AclBinding(principal, "topic", topic, "literal", operation)


def topic_bindings(spec: TopicSpec, agency: str | None = None) -> set[AclBinding]:
    """What the topic's declared producers and consumers may do on it (for a per-agency
    family, on `agency`'s topic of it)."""
    if spec.per_agency != (agency is not None):
        raise ValueError(f"{spec.name}: an agency is needed exactly for per-agency topics")
    name = spec.name if agency is None else channel(spec.name, agency)

    def who(principal: Principal) -> str:
        if principal is Principal.AGENCY:
            assert agency is not None
            return agency_principal(agency)
        return principal.value

    bindings: set[AclBinding] = set()
    for producer in spec.producers:
        bindings.update(_topic(who(producer), name, "write", "describe"))
    for consumer in spec.consumers:
        bindings.update(_topic(who(consumer), name, "read", "describe"))
    return bindings


def agency_bindings(
    agency: str, *, active: bool = True, topics: Iterable[TopicSpec] = TOPICS
) -> set[AclBinding]:
    """The ACLs of an agency's channel. The platform's side stays while the channel exists
    (what the exchange owes a revoked agency must still reach its topics); the agency's
    own (its principal's, and its groups) only while the agency is active."""
    principal = agency_principal(agency)
    bindings = {AclBinding(principal, "group", principal, "prefixed", "read")}
    for spec in topics:
        if spec.per_agency:
            bindings |= topic_bindings(spec, agency)
    if active:
        return bindings
    return {binding for binding in bindings if binding.principal != principal}


def principal_bindings(spec: PrincipalSpec) -> set[AclBinding]:
    """What a principal may do on the resources it owns besides topics."""
    bindings: set[AclBinding] = set()
    for group in spec.groups:
        bindings.add(AclBinding(spec.name, "group", group, "literal", "read"))
    for prefix in spec.group_prefixes:
        bindings.add(AclBinding(spec.name, "group", prefix, "prefixed", "read"))
    for transactional_id in spec.transactional_ids:
        for operation in ("write", "describe"):
            bindings.add(
                AclBinding(spec.name, "transactional_id", transactional_id, "literal", operation)
            )
    if spec.owned_topic_prefix is not None:
        bindings.add(AclBinding(spec.name, "topic", spec.owned_topic_prefix, "prefixed", "all"))
    return bindings


def declared_bindings(
    topics: Iterable[TopicSpec] = TOPICS,
    principals: Iterable[PrincipalSpec] = PRINCIPALS,
    *,
    development: bool = True,
) -> set[AclBinding]:
    """Every ACL the registers call for. Outside development, development-only principals
    (the simulator) get none, and development-only topics are named by none."""
    excluded = (
        set() if development else {spec.name.value for spec in principals if spec.development_only}
    )
    bindings: set[AclBinding] = set()
    for topic in topics:
        if not topic.per_agency and (development or not topic.development_only):
            bindings |= topic_bindings(topic)
    for principal in principals:
        bindings |= principal_bindings(principal)
    return {binding for binding in bindings if binding.principal not in excluded}


def allowed(
    bindings: Iterable[AclBinding], principal: Principal | str, topic: str, operation: Operation
) -> bool:
    """Whether `bindings` let `principal` do `operation` on `topic` (literal or prefixed)."""
    for binding in bindings:
        if binding.principal != principal or binding.resource_type != "topic":
            continue
        if binding.operation not in (operation, "all"):
            continue
        if binding.pattern_type == "literal" and binding.resource_name == topic:
            return True
        if binding.pattern_type == "prefixed" and topic.startswith(binding.resource_name):
            return True
    return False
