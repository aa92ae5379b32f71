"""PostgreSQL roles: one login role per service, owning its own schema and nothing else.

`ensure_roles` is what `panjereh init` does to the database before migrations, as the
cluster's administrator; it is idempotent and safe on a database made by older releases:

- each service's role (`shared.db.role_of`) exists, may log in with its password, and is
  neither superuser nor allowed to create roles or databases;
- `exchange_audit`, a role nobody logs in as, exists: the exchange's audit log belongs to
  it (`services/exchange/migrations/0002_audit_log_owner.sql`), so the exchange's own role
  can append to the log but never rewrite, truncate, drop or unguard it;
- each service's schema exists, and whatever in it belongs to a role outside the
  platform's (the administrator, or the single `panjereh` role of older releases) is given
  to the service's role;
- extensions that migrations use are installed by the administrator (a service's role
  may not install them; `CREATE EXTENSION IF NOT EXISTS` then finds them).

Passwords are sent as SCRAM-SHA-256 verifiers computed here, so no password appears in a
statement the server could log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping

import asyncpg

from shared.db import SERVICES, role_of

#: Roles nobody logs in as, by the service whose schema holds what they own.
OWNER_ROLES: Mapping[str, tuple[str, ...]] = {"exchange": ("exchange_audit",)}

#: Extensions migrations rely on; the administrator installs them (into `public`).
EXTENSIONS = ("pg_trgm",)

_SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (as libpq computes it).

    Our passwords are ASCII, for which SASLprep changes nothing.
    """
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_roles(admin_url: str, passwords: Mapping[str, str | None]) -> list[str]:
    """Create or align every service's role and schema; returns warnings (none usually).

    `passwords` maps a service to its role's password; a service missing from it (or
    mapped to None) keeps the password its role has, and a role created without one
    cannot log in until it gets one (a warning says so).
    """
    warnings: list[str] = []
    connection: asyncpg.Connection = await asyncpg.connect(admin_url)
    try:
        # One init at a time: two would race on CREATE ROLE.
        await connection.execute("SELECT pg_advisory_lock(hashtext('panjereh-roles'))")
        try:
            if not await connection.fetchval(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            ):
                raise PermissionError(
                    "panjereh init needs the cluster's administrator (a superuser)"
                )
            await _lock_down_database(connection)
            for owner in {role for roles in OWNER_ROLES.values() for role in roles}:
                await _ensure_role(connection, owner, login=False, password=None)
            for service in SERVICES:
                role = role_of(service)
                password = passwords.get(service)
                created = await _ensure_role(connection, role, login=True, password=password)
                if password is None and created:
                    warnings.append(f"database role {role} has no password and cannot log in")
                await _ensure_schema(connection, service)
            for extension in EXTENSIONS:
                await connection.execute(
                    f"CREATE EXTENSION IF NOT EXISTS {_identifier(extension)} WITH SCHEMA public"
                )
        finally:
            await connection.execute("SELECT pg_advisory_unlock(hashtext('panjereh-roles'))")
    finally:
        await connection.close()
    return warnings


async def _lock_down_database(connection: asyncpg.Connection) -> None:
    """Nobody but the administrator creates schemas, or anything in `public`."""
    database = await connection.fetchval("SELECT current_database()")
    await connection.execute(f"REVOKE CREATE ON DATABASE {_identifier(database)} FROM PUBLIC")
    await connection.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


async def _ensure_role(
    connection: asyncpg.Connection, role: str, *, login: bool, password: str | None
) -> bool:
    """Create the role if missing, then set its attributes; whether it was created."""
    exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        await connection.execute(f"CREATE ROLE {_identifier(role)}")
    attributes = "LOGIN" if login else "NOLOGIN"
    attributes += " NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
    if password is not None:
        # A verifier, never the password: the statement may end up in the server's log.
        attributes += f" PASSWORD '{scram_verifier(password)}'"
    await connection.execute(f"ALTER ROLE {_identifier(role)} {attributes}")
    return not exists


async def _ensure_schema(connection: asyncpg.Connection, service: str) -> None:
    """The service's schema exists and what is in it belongs to the platform's roles."""
    schema, role = service, role_of(service)
    ours = [role, *OWNER_ROLES.get(service, ())]
    quoted_schema, quoted_role = _identifier(schema), _identifier(role)
    await connection.execute(
        f"CREATE SCHEMA IF NOT EXISTS {quoted_schema} AUTHORIZATION {quoted_role}"
    )
    schema_owner = await connection.fetchval(
        "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = $1", schema
    )
    if schema_owner not in ours:
        await connection.execute(f"ALTER SCHEMA {quoted_schema} OWNER TO {quoted_role}")
    await connection.execute(f"REVOKE ALL ON SCHEMA {quoted_schema} FROM PUBLIC")
    # Tables first: moving a table moves its indexes and the sequences of its columns.
    statements = await connection.fetch(
        """
        SELECT format('ALTER %s %s OWNER TO %I',
                      CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                     WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                                     ELSE 'TABLE' END,
                      c.oid::regclass, $2::text) AS statement, 1 AS step
          FROM pg_class c
         WHERE c.relnamespace = $1::regnamespace
           AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND NOT pg_get_userbyid(c.relowner)::text = ANY($3::text[])
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.deptype IN ('a', 'i'))
        UNION ALL
        SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $2::text), 2
          FROM pg_proc p
         WHERE p.pronamespace = $1::regnamespace
           AND NOT pg_get_userbyid(p.proowner)::text = ANY($3::text[])
        UNION ALL
        SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, $2::text), 3
          FROM pg_type t
         WHERE t.typnamespace = $1::regnamespace
           AND (t.typtype IN ('d', 'e', 'r')
                OR t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
           AND NOT pg_get_userbyid(t.typowner)::text = ANY($3::text[])
        ORDER BY step
        """,
        schema,
        role,
        ours,
    )
    for row in statements:
        await connection.execute(row["statement"])
