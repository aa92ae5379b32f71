"""The worker's RocksDB databases: within one memory budget however many it opens, and
named for their format (real RocksDB, through rocksdict, in a temporary directory)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from services.metrics.worker.store import (
    DATABASE_OPTIONS,
    MEMORY_BUDGET,
    WRITE_BUFFER_BUDGET,
    BoundedOptions,
    Store,
    memory_in_use,
)

DATABASES = 40
#: Each database's writes: under its own write buffer (1 MiB), all of them well over
#: the budget for write buffers (28 MiB against 16).
WRITES_PER_DATABASE = 700
VALUE = b"x" * 1000


def _memtable_bytes(databases: list) -> int:  # type: ignore[type-arg]
    return sum(db.property_int_value("rocksdb.cur-size-all-mem-tables") for db in databases)


def test_memtables_of_many_databases_are_flushed_within_the_shared_budget(
    tmp_path: Path,
) -> None:
    options = BoundedOptions(**DATABASE_OPTIONS, use_rocksdict=True)
    databases = [options.open(tmp_path / f"db-{n}") for n in range(DATABASES)]
    try:
        # As the worker writes: a little to each table partition in turn.
        for key in range(WRITES_PER_DATABASE):
            for db in databases:
                db[key.to_bytes(4, "big")] = VALUE
        # Flushes run in RocksDB's background threads: give them a moment.
        deadline = time.monotonic() + 20
        while _memtable_bytes(databases) > WRITE_BUFFER_BUDGET and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _memtable_bytes(databases) <= WRITE_BUFFER_BUDGET
        assert 0 < memory_in_use() <= MEMORY_BUDGET
        # Nothing written was lost to the flushes.
        assert all(db[(WRITES_PER_DATABASE - 1).to_bytes(4, "big")] == VALUE for db in databases)
    finally:
        for db in databases:
            db.close()


def _store(app: faust.App, table: Any, **options: Any) -> Store:
    return Store("rocksdb-bounded://", app, table, options={**DATABASE_OPTIONS, **options})


def test_a_table_that_gained_a_time_to_live_starts_a_database_of_its_own(tmp_path: Path) -> None:
    app = faust.App("store-test", datadir=str(tmp_path))
    table = app.Table("events", default=None, partitions=1)
    changelog = TP(table.changelog_topic.get_topic_name(), 0)
    # The older release's database, without a time to live, and its place in the changelog.
    before = _store(app, table)
    before.set_persisted_offset(changelog, 41)
    before._db_for_partition(0)[b"event"] = b"1"
    older_path = before.partition_path(0)
    before._dbs.pop(0).close()

    after = _store(app, table, ttl=3600)
    # RocksDB would report corruption reading the older values as timestamped ones; the
    # new database is empty instead, and Faust recovers the table from its changelog.
    assert after.persisted_offset(changelog) is None
    assert after.partition_path(0) != older_path
    assert not older_path.exists()
    after._db_for_partition(0)[b"event"] = b"1"
    assert after._db_for_partition(0)[b"event"] == b"1"
    after._dbs.pop(0).close()
