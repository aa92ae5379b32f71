"""The worker's RocksDB databases: within one memory budget however many it opens, and
named for their format (real RocksDB, through rocksdict, in a temporary directory)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import faust
from faust.stores import rocksdb as faust_rocksdb
from faust.types import TP

from services.metrics.worker.store import (
    DATABASE_OPTIONS,
    MEMORY_BUDGET,
    BoundedOptions,
    Store,
    memory_in_use,
    shared_cache,
)

#: About as many as the worker holds (its tables times their partitions).
DATABASES = 128
WRITES = 120_000
KEYS_PER_DATABASE = 5_000
VALUE = b"x" * 100


def _flushes(directories: list[Path], reason: str) -> int:
    """Flushes RocksDB logged for `reason` in these databases' info logs."""
    return sum(
        log.read_text(errors="replace").count(f'"flush_reason": "{reason}"')
        for directory in directories
        for log in directory.glob("LOG*")
    )


def test_each_database_flushes_its_memtable_at_its_own_size_not_at_every_write(
    tmp_path: Path,
) -> None:
    directories = [tmp_path / f"db-{n}" for n in range(DATABASES)]
    options = BoundedOptions(**DATABASE_OPTIONS, use_rocksdict=True)
    databases = [options.open(directory) for directory in directories]
    try:
        # As the worker writes: counters overwritten, a few tables busy, most seldom.
        rng = random.Random(7)
        weights = [rng.paretovariate(1.2) for _ in databases]
        latest: dict[tuple[int, bytes], bytes] = {}
        for _ in range(WRITES):
            [n] = rng.choices(range(DATABASES), weights)
            key, value = f"counter-{rng.randrange(KEYS_PER_DATABASE)}".encode(), rng.randbytes(60)
            databases[n][key] = latest[n, key] = value
        assert 0 < memory_in_use() <= MEMORY_BUDGET
        # Nothing written was lost to the flushes.
        assert all(databases[n][key] == value for (n, key), value in latest.items())
    finally:
        for db in databases:
            db.close()
    # The busy ones filled their write buffers and were flushed for that; no write found
    # the shared budget spent (with one near what a hundred memtables' first arena blocks
    # take, that flushed whichever database was written to, at nearly every write).
    assert _flushes(directories, "Write Buffer Full") > 0
    assert _flushes(directories, "Write Buffer Manager") == 0


def _options_file_says(directory: Path, option: str) -> str:
    """What the database's latest OPTIONS file (the options it runs with) says of `option`."""
    latest = max(directory.glob("OPTIONS-*"), key=lambda f: int(f.name.split("-")[1]))
    [value] = [
        line.split("=", 1)[1]
        for line in latest.read_text().splitlines()
        if line.strip().startswith(f"{option}=")
    ]
    return value


def test_a_database_made_before_takes_the_budgets_options_when_opened_again(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "db"
    # Made by an earlier release: Faust's own options, a cache and write buffers its own.
    older = faust_rocksdb.RocksDBOptions(use_rocksdict=True).open(directory)
    for key in range(2_000):
        older[key.to_bytes(4, "big")] = VALUE
    older.flush()
    older.close()
    assert _options_file_says(directory, "write_buffer_size") != str(
        DATABASE_OPTIONS["write_buffer_size"]
    )

    db = BoundedOptions(**DATABASE_OPTIONS, use_rocksdict=True).open(directory)
    try:
        assert _options_file_says(directory, "write_buffer_size") == str(
            DATABASE_OPTIONS["write_buffer_size"]
        )
        # Its blocks are read into the shared cache, not into a cache of its own.
        cached = shared_cache().get_usage()
        assert all(db[key.to_bytes(4, "big")] == VALUE for key in range(2_000))
        assert shared_cache().get_usage() > cached
    finally:
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
