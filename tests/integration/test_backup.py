"""`panjereh backup` and `restore` refuse what would lose or overwrite data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from infra.backup import BackupError, Manifest, restore_backup, take_backup
from shared.kafka_access import KafkaAccess

pytestmark = pytest.mark.integration


@pytest.fixture
async def identity_holding_a_row(admin_database_url: str) -> AsyncIterator[None]:
    """The identity schema holds at least this row, whatever ran before."""
    subject = f"backup-test-{uuid.uuid4()}"
    connection = await asyncpg.connect(admin_database_url)
    try:
        await connection.execute(
            "INSERT INTO identity.attempt_counters (scope, subject, window_started)"
            " VALUES ('citizen', $1, now())",
            subject,
        )
        yield
        await connection.execute(
            "DELETE FROM identity.attempt_counters WHERE subject = $1", subject
        )
    finally:
        await connection.close()


def test_a_backup_records_its_time_and_schemas_and_never_overwrites_another(
    tmp_path: Path, admin_database_url: str, kafka_admin: KafkaAccess
) -> None:
    folder = tmp_path / "backup"
    taken = take_backup(folder, admin_database_url, kafka_admin, schemas=["identity"])
    assert Manifest.read(folder) == taken
    assert taken.schemas == ("identity",)
    assert (folder / "panjereh.dump").stat().st_size > 0
    with pytest.raises(BackupError, match="exists"):
        take_backup(folder, admin_database_url, kafka_admin, schemas=["identity"])


@pytest.mark.usefixtures("identity_holding_a_row")
async def test_a_restore_into_a_database_holding_data_is_refused(
    tmp_path: Path, admin_database_url: str, kafka_admin: KafkaAccess
) -> None:
    folder = tmp_path / "backup"
    await asyncio.to_thread(take_backup, folder, admin_database_url, kafka_admin, ["identity"])
    with pytest.raises(BackupError, match="holds rows"):
        await restore_backup(folder, admin_database_url, kafka_admin, {})


async def test_a_folder_that_is_no_backup_is_refused(
    tmp_path: Path, admin_database_url: str, kafka_admin: KafkaAccess
) -> None:
    with pytest.raises(BackupError, match="manifest"):
        await restore_backup(tmp_path, admin_database_url, kafka_admin, {})
