"""Backups of every service's database schema, and their restore.

A backup is a folder: `panjereh.dump`, one `pg_dump` of every service's schema (custom
format, one snapshot, so the services' states are consistent with each other), and
`manifest.json`, which says when it was taken, where each service's consumer group had
committed on each partition just before the snapshot began, and which outbox rows the
snapshot holds as waiting that the relays published right after it.

Offsets first, then the snapshot: every record below a group's committed offset was
handled, and its effect committed to the database, before the snapshot; records handled
between the two are in the snapshot with their inbox rows, so reading them again changes
nothing. A restore therefore brings the schemas back, then sets each group's offsets to
the manifest's (and a partition the group has committed since, but not then, to its
beginning): the services read again, from Kafka, everything that reached them after the
backup, and catch up. What they took over HTTP after the backup is not in Kafka's
keeping and is lost: that is the recovery point.

The exchange's audit chains come back as they were; a restore closes them (the
administrator stamps their heads, which the exchange's own role cannot) and the exchange
appends in new chains, so `panjereh audit verify` holds the closed chains to the
checkpoints up to their heads and counts what the checkpoints vouched for past them as
lost to the restore, not as a break.

The metrics worker keeps no state in PostgreSQL (its tables are in Kafka's changelogs)
and is neither backed up nor rewound.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec

from infra.platform.postgres import bin_dir
from infra.platform.processes import PlatformError
from infra.platform.provision import InitReport, apply_all_migrations
from infra.platform.roles import ensure_roles
from shared.db import SERVICES
from shared.kafka_access import KafkaAccess

DUMP = "panjereh.dump"
MANIFEST = "manifest.json"
FORMAT = 1
_TIMEOUT = 60.0


class BackupError(Exception):
    """A backup or a restore that cannot go on, with the reason."""


@dataclass(frozen=True)
class Manifest:
    """What a backup holds and what it knew of Kafka when it began."""

    taken_at: datetime
    schemas: tuple[str, ...]
    #: group -> "topic:partition" -> the offset committed just before the snapshot.
    offsets: Mapping[str, Mapping[str, int]]
    #: schema -> outbox rows the snapshot holds as waiting that the relay published
    #: right after it: a restore marks them published, so they go out once.
    published_after: Mapping[str, Sequence[int]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "taken_at": self.taken_at.isoformat(),
                "schemas": list(self.schemas),
                "offsets": self.offsets,
                "published_after": {k: list(v) for k, v in self.published_after.items()},
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        try:
            document = json.loads((folder / MANIFEST).read_text("utf-8"))
        except (OSError, ValueError) as error:
            raise BackupError(f"{folder} holds no readable {MANIFEST}: {error}") from None
        if document.get("format") != FORMAT:
            raise BackupError(f"{folder}: backup format {document.get('format')} is not {FORMAT}")
        return cls(
            datetime.fromisoformat(document["taken_at"]),
            tuple(document["schemas"]),
            document["offsets"],
            document.get("published_after", {}),
        )


def take_backup(
    folder: Path, database_url: str, kafka: KafkaAccess, schemas: Sequence[str] = SERVICES
) -> Manifest:
    """A backup of `schemas` of the database at `database_url` (an administrator's) into
    `folder`, which must not exist yet; the manifest written."""
    if folder.exists():
        raise BackupError(f"{folder} exists: a backup goes into a new folder")
    folder.mkdir(parents=True)
    offsets = committed_offsets(kafka, schemas)
    taken_at = datetime.now(UTC)
    waiting = asyncio.run(_dump(folder / DUMP, database_url, schemas))
    published = asyncio.run(_published_since(database_url, waiting))
    manifest = Manifest(taken_at, tuple(schemas), offsets, published)
    (folder / MANIFEST).write_text(manifest.to_json() + "\n", "utf-8")
    return manifest


#: How long a backup waits for the outbox rows its snapshot holds as waiting to be
#: published by the running relays, so that a restore knows they went out.
OUTBOX_WAIT_SECONDS = 30.0


async def _dump(file: Path, database_url: str, schemas: Sequence[str]) -> dict[str, list[int]]:
    """pg_dump of `schemas` in a snapshot exported from a transaction that, in the same
    snapshot, lists each outbox's rows not yet published."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await connection.fetchval("SELECT pg_export_snapshot()")
            waiting = {
                schema: [
                    row["id"]
                    for row in await connection.fetch(
                        f'SELECT id FROM "{schema}".outbox WHERE published_at IS NULL'
                    )
                ]
                for schema in schemas
                if await connection.fetchval("SELECT to_regclass($1)", f'"{schema}".outbox')
            }
            await asyncio.to_thread(
                _pg, "pg_dump", database_url, "--format=custom", f"--file={file}",
                f"--snapshot={snapshot}", *(f"--schema={schema}" for schema in schemas),
            )  # fmt: skip
    finally:
        await connection.close()
    return waiting


async def _published_since(
    database_url: str, waiting: Mapping[str, Sequence[int]]
) -> dict[str, list[int]]:
    """Of the rows waiting in the snapshot, those the relays have published since (given
    up to `OUTBOX_WAIT_SECONDS`: a row held back longer, for a channel not made yet,
    stays waiting in the backup and goes out from the restored outbox)."""
    connection = await asyncpg.connect(database_url)
    try:
        deadline = asyncio.get_running_loop().time() + OUTBOX_WAIT_SECONDS
        while True:
            published = {
                schema: [
                    row["id"]
                    for row in await connection.fetch(
                        f'SELECT id FROM "{schema}".outbox'
                        " WHERE id = ANY($1::bigint[]) AND published_at IS NOT NULL",
                        list(ids),
                    )
                ]
                for schema, ids in waiting.items()
            }
            done = all(len(published[s]) == len(ids) for s, ids in waiting.items())
            if done or asyncio.get_running_loop().time() > deadline:
                return {schema: sorted(ids) for schema, ids in published.items() if ids}
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


async def restore_backup(
    folder: Path,
    database_url: str,
    kafka: KafkaAccess,
    passwords: Mapping[str, str | None],
) -> list[str]:
    """Bring the backup in `folder` back into the database at `database_url` (an
    administrator's), whose services' schemas must hold no data; set the services'
    consumer groups to where the backup found them. The services must be stopped (a
    group with members is refused). What was done, one line each."""
    manifest = Manifest.read(folder)
    await _refuse_data(database_url, manifest.schemas)
    admin = AdminClient(dict(kafka.librdkafka_config()))
    _refuse_active_groups(admin, manifest.offsets)
    done: list[str] = []
    # The roles first: the dump gives its objects to them.
    await ensure_roles(database_url, passwords)
    connection = await asyncpg.connect(database_url)
    try:
        for schema in manifest.schemas:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()
    _pg("pg_restore", database_url, "--exit-on-error", "--single-transaction",
        str(folder / DUMP))  # fmt: skip
    done.append(f"schemas restored: {', '.join(manifest.schemas)} (taken {manifest.taken_at})")
    # A backup of an older release is brought up to this one's schema, as `init` would.
    report = InitReport()
    await apply_all_migrations(database_url, report, passwords)
    done += [
        f"migrations {schema}: {', '.join(applied)}"
        for schema, applied in report.migrations.items()
        if applied
    ]
    done += await _settle_outboxes(database_url, kafka, manifest)
    if "exchange" in manifest.schemas:
        closed = await _close_audit_chains(database_url, kafka, manifest.taken_at)
        done.append(f"exchange audit chains closed as restored: {closed or 'none'}")
    for group, moved in _rewind(admin, manifest.offsets).items():
        done.append(f"consumer group {group}: {moved} partitions set to the backup's offsets")
    return done


def committed_offsets(kafka: KafkaAccess, groups: Sequence[str]) -> dict[str, dict[str, int]]:
    """Each of `groups` that exists: its committed offset on each partition."""
    admin = AdminClient(dict(kafka.librdkafka_config()))
    listed = admin.list_consumer_groups(request_timeout=_TIMEOUT).result()
    existing = {group.group_id for group in listed.valid}
    return {
        group: {
            f"{topic}:{partition}": offset
            for (topic, partition), offset in committed_offsets_of(admin, group).items()
        }
        for group in groups
        if group in existing
    }


def _refuse_active_groups(admin: AdminClient, groups: Mapping[str, object]) -> None:
    if not groups:
        return
    futures = admin.describe_consumer_groups(list(groups), request_timeout=_TIMEOUT)
    busy = sorted(group for group, future in futures.items() if future.result().members)
    if busy:
        raise BackupError(
            f"consumer groups {busy} have members: stop the services before a restore"
        )


async def _refuse_data(database_url: str, schemas: Sequence[str]) -> None:
    """A restore replaces nothing: the schemas it brings back must be absent or empty of
    rows (as `panjereh init` leaves a fresh database)."""
    connection = await asyncpg.connect(database_url)
    try:
        tables = await connection.fetch(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY($1::text[])"
            " AND tablename <> 'schema_migrations'",
            list(schemas),
        )
        for row in tables:
            quoted = f'"{row["schemaname"]}"."{row["tablename"]}"'
            if await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {quoted})"):
                raise BackupError(
                    f"{row['schemaname']}.{row['tablename']} holds rows: a backup is restored"
                    " into a database whose services' schemas are empty"
                )
    finally:
        await connection.close()


async def _settle_outboxes(database_url: str, kafka: KafkaAccess, manifest: Manifest) -> list[str]:
    """Each restored outbox as the lost one left it: what its relay published after the
    snapshot marked published (it goes out once), and its ids moved past every id its
    relay's last progress marker names, so a restarted relay's recovery, which stamps
    those ids, never takes a new row for one it published before the loss."""
    last = await last_progress_markers(kafka)
    done: list[str] = []
    connection = await asyncpg.connect(database_url)
    try:
        for schema in manifest.schemas:
            if not await connection.fetchval("SELECT to_regclass($1)", f'"{schema}".outbox'):
                continue
            stamped = await connection.execute(
                f'UPDATE "{schema}".outbox SET published_at = now()'
                " WHERE id = ANY($1::bigint[]) AND published_at IS NULL",
                list(manifest.published_after.get(schema, ())),
            )
            named = last.get((f"{schema}-outbox-relay", schema), [])
            if named:
                await connection.execute(
                    "SELECT setval(pg_get_serial_sequence($1, 'id'),"
                    f' greatest($2, (SELECT last_value FROM "{schema}".outbox_id_seq)))',
                    f'"{schema}".outbox',
                    max(named),
                )
            done.append(
                f"outbox {schema}: {stamped.split()[-1]} rows published after the snapshot"
                f" marked published; new ids above {max(named, default=0)}"
            )
    finally:
        await connection.close()
    return done


async def last_progress_markers(kafka: KafkaAccess) -> dict[tuple[str, str], list[int]]:
    """Every relay's last progress marker, by (relay, schema): the outbox ids it names."""
    from shared.kafka import read_to_end
    from shared.outbox import PROGRESS_TOPIC, ProgressMarker

    found: dict[tuple[str, str], list[int]] = {}
    for record in await read_to_end(kafka, [PROGRESS_TOPIC], client_id="panjereh-restore"):
        if record.value is not None:
            marker = ProgressMarker.model_validate_json(record.value)
            found[(marker.relay, marker.outbox_schema)] = marker.ids
    return found


async def _close_audit_chains(
    database_url: str, kafka: KafkaAccess, taken_at: datetime
) -> list[int]:
    from services.exchange.audit import read_checkpoints
    from services.exchange.storage import close_restored_chains

    # Chains the lost history (or an earlier restore) checkpointed are never begun again.
    checkpoints, _ = await read_checkpoints(kafka)
    checkpointed = max((checkpoint.chain for checkpoint in checkpoints), default=-1)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute('SET search_path TO "exchange"')
        return await close_restored_chains(
            connection, datetime.now(UTC), taken_at, checkpointed=checkpointed
        )
    finally:
        await connection.close()


def _rewind(admin: AdminClient, offsets: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Each group's offsets set to the backup's; a partition it has committed since, but
    had not then, to its beginning. How many partitions each group got."""
    moved: dict[str, int] = {}
    for group, then in offsets.items():
        now = committed_offsets_of(admin, group)
        wanted = {_partition(name): offset for name, offset in then.items()}
        newer = [tp for tp in now if tp not in wanted]
        if newer:
            starts = admin.list_offsets(
                {TopicPartition(t, p): OffsetSpec.earliest() for t, p in newer},  # type: ignore[no-untyped-call]
                request_timeout=_TIMEOUT,
            )
            for tp, future in starts.items():
                wanted[(tp.topic, tp.partition)] = future.result().offset
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(t, p, offset) for (t, p), offset in sorted(wanted.items())]
        )
        [future] = admin.alter_consumer_group_offsets([request], request_timeout=_TIMEOUT).values()
        future.result()
        moved[group] = len(wanted)
    return moved


def committed_offsets_of(admin: AdminClient, group: str) -> dict[tuple[str, int], int]:
    request = [ConsumerGroupTopicPartitions(group)]
    [future] = admin.list_consumer_group_offsets(request, request_timeout=_TIMEOUT).values()
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in future.result().topic_partitions
        if tp.offset >= 0
    }


def _partition(name: str) -> tuple[str, int]:
    topic, _, partition = name.rpartition(":")
    return topic, int(partition)


def _tool(name: str) -> str:
    """A PostgreSQL client tool: the server's own (as the local platform runs it), else
    one on PATH (`postgresql-client`, where only the client is installed)."""
    try:
        beside_server: Path | None = bin_dir() / name
    except PlatformError:  # no server installed here: the client alone will do
        beside_server = None
    if beside_server is not None and beside_server.exists():
        return str(beside_server)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (PostgreSQL's client tools)")
    return found


def _pg(tool: str, database_url: str, *args: str) -> None:
    """A PostgreSQL client tool against `database_url`; its password in the environment,
    never on the command line."""
    parts = urlsplit(database_url)
    environment = os.environ | {"PGPASSWORD": unquote(parts.password or "")}
    command = [
        _tool(tool),
        f"--host={parts.hostname or '127.0.0.1'}",
        f"--port={parts.port or 5432}",
        f"--username={unquote(parts.username or 'postgres')}",
        f"--dbname={parts.path.lstrip('/') or 'postgres'}",
        "--no-password",
        *args,
    ]
    result = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=3600, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")
