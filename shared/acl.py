"""The broker's ACLs, derived from the topic and principal registers; never written by hand.

- A producer of a topic may write it and describe it. Idempotent producers need nothing
  more (the broker grants idempotence to whoever may write a topic); a transactional
  producer also gets write and describe on its declared transactional ids.
- A consumer of a topic may read and describe it, and read its declared groups.
- A principal that owns a topic prefix (the metrics worker's tables) may do anything to
  the topics under it, creating them included.

Every binding allows; nothing is denied explicitly, because the broker already refuses
whatever no binding allows (`allow.everyone.if.no.acl.found=false`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from shared.principals import PRINCIPALS, Principal, PrincipalSpec
from shared.topics import TOPICS, TopicSpec

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


def topic_bindings(spec: TopicSpec) -> set[AclBinding]:
    """What the topic's declared producers and consumers may do on it."""
    bindings: set[AclBinding] = set()
    for producer in spec.producers:
        bindings.update(_topic(producer, spec.name, "write", "describe"))
    for consumer in spec.consumers:
        bindings.update(_topic(consumer, spec.name, "read", "describe"))
    return bindings


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
        if development or not topic.development_only:
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
