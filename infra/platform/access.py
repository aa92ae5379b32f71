"""Who may use the broker, made equal to the registers: SCRAM users and ACLs.

The way kafka-gitops manages a cluster: the declared state (`shared/principals.py`,
`shared/topics.py`, derived into ACLs by `shared/acl.py`) is compared with the cluster's;
`plan` lists the difference and `apply` removes it, idempotently. Users and ACLs that
the registers do not name are removed: nothing reaches the broker by an ACL somebody
added by hand. Works as the super user, through librdkafka's admin API (aiokafka has no
ACL or SCRAM calls).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

# confluent-kafka's package re-exports these without declaring them; import them from
# where they are defined, so the type checker sees them.
from confluent_kafka.admin._acl import AclBinding as KafkaAclBinding
from confluent_kafka.admin._acl import AclBindingFilter, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType
from confluent_kafka.admin._scram import (
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from infra.platform.provision import Passwords
from infra.platform.secrets import SecretStore, new_secret
from shared.acl import AclBinding, Operation, PatternType, agency_bindings, declared_bindings
from shared.acl import ResourceType as AclResource
from shared.kafka_access import MECHANISM, MECHANISMS, KafkaAccess
from shared.principals import ADMIN, PRINCIPALS, agency_principal

#: PBKDF2 rounds of each stored SCRAM credential: Kafka's minimum for SHA-512 is 4096.
SCRAM_ITERATIONS = 8192
_TIMEOUT = 30.0
#: ACL bindings created per request (one metadata record each).
ACLS_PER_REQUEST = 1000

_SCRAM: dict[str, ScramMechanism] = {
    "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512,
    "SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256,
}
_MECHANISM_KEY = "{}#mechanism"


def current_mechanism(store: SecretStore, name: str) -> str:
    """The SCRAM mechanism a principal's current secret is kept under (SHA-512 until a
    rotation moves it to the other one)."""
    return store.peek(_MECHANISM_KEY.format(name)) or MECHANISM


def _other(mechanism: str) -> str:
    return next(m for m in MECHANISMS if m != mechanism)


_RESOURCE_TYPES: dict[AclResource, ResourceType] = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
}
_PATTERNS: dict[PatternType, ResourcePatternType] = {
    "literal": ResourcePatternType.LITERAL,
    "prefixed": ResourcePatternType.PREFIXED,
}
_OPERATIONS: dict[Operation, AclOperation] = {
    "read": AclOperation.READ,
    "write": AclOperation.WRITE,
    "describe": AclOperation.DESCRIBE,
    "create": AclOperation.CREATE,
    "all": AclOperation.ALL,
}


@dataclass
class AccessPlan:
    """What `apply` would change: users to create or remove, ACLs to add or remove."""

    users_to_create: list[str] = field(default_factory=list)
    users_to_remove: list[str] = field(default_factory=list)
    acls_to_add: list[AclBinding] = field(default_factory=list)
    acls_to_remove: list[Any] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.users_to_create or self.users_to_remove or self.acls_to_add or self.acls_to_remove
        )

    def lines(self) -> list[str]:
        """The plan as a person reads it, one change a line (+ adds, - removes)."""
        out = [f"+ user {name}" for name in self.users_to_create]
        out += [f"- user {name}" for name in self.users_to_remove]
        out += [f"+ acl {binding.describe()}" for binding in self.acls_to_add]
        out += [f"- acl {_describe_foreign(binding)}" for binding in self.acls_to_remove]
        return out or ["the cluster matches the registers"]


def _describe_foreign(binding: Any) -> str:
    ours = _from_kafka(binding)
    if ours is not None:
        return ours.describe()
    return (
        f"{binding.principal} {binding.permission_type.name} {binding.operation.name} "
        f"{binding.restype.name.lower()} {binding.name} ({binding.resource_pattern_type.name})"
    )


def _to_kafka(binding: AclBinding) -> KafkaAclBinding:
    return KafkaAclBinding(
        _RESOURCE_TYPES[binding.resource_type],
        binding.resource_name,
        _PATTERNS[binding.pattern_type],
        f"User:{binding.principal}",
        "*",
        _OPERATIONS[binding.operation],
        AclPermissionType.ALLOW,
    )


def _from_kafka(binding: Any) -> AclBinding | None:
    """Our form of a cluster binding, or None for one we never make (a deny, a host)."""
    resource = {value: key for key, value in _RESOURCE_TYPES.items()}.get(binding.restype)
    pattern = {value: key for key, value in _PATTERNS.items()}.get(binding.resource_pattern_type)
    operation = {value: key for key, value in _OPERATIONS.items()}.get(binding.operation)
    if (
        resource is None
        or pattern is None
        or operation is None
        or binding.permission_type != AclPermissionType.ALLOW
        or binding.host != "*"
        or not binding.principal.startswith("User:")
    ):
        return None
    return AclBinding(
        binding.principal.removeprefix("User:"), resource, binding.name, pattern, operation
    )


class BrokerAccess:
    """The broker's users and ACLs, seen and changed as the super user."""

    def __init__(self, admin: KafkaAccess, passwords: Passwords) -> None:
        if admin.username != ADMIN:
            raise ValueError("users and ACLs are managed as the admin principal only")
        config: dict[str, str | int | float | bool] = dict(admin.librdkafka_config())
        self._client = AdminClient(config)
        self._passwords = passwords

    def declared_users(self, development: bool, agencies: Mapping[str, bool]) -> list[str]:
        """The platform's principals, and every active agency's."""
        platform = [
            spec.name.value for spec in PRINCIPALS if development or not spec.development_only
        ]
        return sorted(platform + [agency_principal(code) for code, on in agencies.items() if on])

    def users(self) -> set[str]:
        """The users the broker holds a SCRAM credential for (admin included)."""
        described = self._client.describe_user_scram_credentials(request_timeout=_TIMEOUT)
        assert not isinstance(described, dict)  # asked about every user: one future
        return set(described.result(timeout=_TIMEOUT))

    def acls(self) -> list[Any]:
        """Every ACL binding in the cluster, as librdkafka describes them."""
        # None matches any name, principal and host (librdkafka's stubs say str only).
        anything: Any = None
        every = AclBindingFilter(
            ResourceType.ANY,
            anything,
            ResourcePatternType.ANY,
            anything,
            anything,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        result: list[Any] = self._client.describe_acls(every, request_timeout=_TIMEOUT).result(
            timeout=_TIMEOUT
        )
        return result

    def plan(
        self, *, development: bool = True, agencies: Mapping[str, bool] | None = None
    ) -> AccessPlan:
        """The difference between the registers (and the agencies, code → active) and the
        cluster; changes nothing."""
        agencies = agencies or {}
        wanted_users = set(self.declared_users(development, agencies))
        present_users = self.users() - {ADMIN}
        wanted = declared_bindings(development=development)
        for code, active in agencies.items():
            wanted |= agency_bindings(code, active=active)
        present = self.acls()
        ours = {key for binding in present if (key := _from_kafka(binding)) is not None}
        return AccessPlan(
            users_to_create=sorted(wanted_users - present_users),
            users_to_remove=sorted(present_users - wanted_users),
            acls_to_add=sorted(wanted - ours),
            acls_to_remove=[
                binding
                for binding in present
                if (key := _from_kafka(binding)) is None or key not in wanted
            ],
        )

    def apply(
        self, *, development: bool = True, agencies: Mapping[str, bool] | None = None
    ) -> AccessPlan:
        """Make the cluster equal to the registers; returns what it changed.

        Users are removed before ACLs: a revoked agency cannot log in again by the time
        its open connections are refused, so a client that sees the refusal finds the
        revocation complete."""
        plan = self.plan(development=development, agencies=agencies)
        if plan.users_to_remove:
            self.remove_users(plan.users_to_remove)
        if plan.acls_to_remove:
            filters = [_exact_filter(binding) for binding in plan.acls_to_remove]
            self._wait(self._client.delete_acls(filters, request_timeout=_TIMEOUT))
        if plan.users_to_create:
            self._upsert_users(plan.users_to_create)
        # In slices: a controller refuses an operation of more than 10,000 records, and a
        # whole register's agencies at once may come near it.
        for start in range(0, len(plan.acls_to_add), ACLS_PER_REQUEST):
            adding = plan.acls_to_add[start : start + ACLS_PER_REQUEST]
            self._wait(self._client.create_acls([_to_kafka(binding) for binding in adding]))
        return plan

    def rotate(self, user: str, store: SecretStore) -> str:
        """Give `user` a new secret without a moment of refusal; the new mechanism.

        The new secret goes under the other SCRAM mechanism, so the old one keeps working
        for clients not yet switched; `retire_previous` ends it once they have.
        """
        if user not in self.users():
            raise ValueError(f"{user} has no credential to rotate")
        new = _other(current_mechanism(store, user))
        password = new_secret()
        upsert = UserScramCredentialUpsertion(
            user, ScramCredentialInfo(_SCRAM[new], SCRAM_ITERATIONS), password.encode()
        )
        self._wait(self._client.alter_user_scram_credentials([upsert]))
        store.put(user, password)
        store.put(_MECHANISM_KEY.format(user), new)
        return new

    def retire_previous(self, user: str, store: SecretStore) -> bool:
        """Remove the secret a rotation replaced; False if there was none."""
        previous = _other(current_mechanism(store, user))
        described = self._client.describe_user_scram_credentials([user], request_timeout=_TIMEOUT)
        assert isinstance(described, dict)
        mechanisms = {
            info.mechanism
            for info in described[user].result(timeout=_TIMEOUT).scram_credential_infos
        }
        if _SCRAM[previous] not in mechanisms:
            return False
        deletion = UserScramCredentialDeletion(user, _SCRAM[previous])
        self._wait(self._client.alter_user_scram_credentials([deletion]))
        return True

    def _upsert_users(self, users: Iterable[str]) -> None:
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        alterations: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(user, info, self._passwords.get(user).encode())
            for user in users
        ]
        self._wait(self._client.alter_user_scram_credentials(alterations))

    def remove_users(self, users: Iterable[str]) -> None:
        deletions: list[UserScramCredentialAlteration] = [
            UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512) for user in users
        ]
        self._wait(self._client.alter_user_scram_credentials(deletions))

    @staticmethod
    def _wait(futures: dict[Any, Any]) -> None:
        errors = []
        for key, future in futures.items():
            try:
                future.result(timeout=_TIMEOUT)
            except KafkaException as error:
                errors.append(f"{key}: {error}")
        if errors:
            raise RuntimeError("the broker refused: " + "; ".join(errors))


def _exact_filter(binding: Any) -> AclBindingFilter:
    return AclBindingFilter(
        binding.restype,
        binding.name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )
