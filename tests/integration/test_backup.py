"""`panjereh backup` and `restore` refuse what would lose or overwrite data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from infra.backup import BackupError, Manifest, restore_backup, take_backup
from shared.kafka_access import KafkaAccess

pytestmark = pytest.mark.integration


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
