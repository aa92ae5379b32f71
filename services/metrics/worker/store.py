"""The worker's RocksDB databases share one memory budget.

Faust opens a RocksDB database for each partition of each table (some hundred in the
worker), each with a block cache and write buffers of its own: the worker's memory grew
as each cache filled with the blocks it read and each memtable with the writes it took,
up to their sizes times the number of databases. Here every database of the process
reads through one block cache of `BLOCK_CACHE_SIZE`, and their memtables together stay
under `WRITE_BUFFER_BUDGET` (RocksDB's write buffer manager): the whole stays within
`MEMORY_BUDGET` however many tables the worker holds.

The write buffer manager is a backstop, not the usual way memtables are flushed. When
all the memtables together pass its budget, RocksDB flushes the one of the database
being written to, however small; and a memtable counts every arena block it allocated,
data or not. With a budget near what a hundred databases' first blocks took (an eighth
of the write buffer size each, by default), it flushed at nearly every write, several
times a second, a new file each time. So each database flushes at its own write buffer
size (`DATABASE_OPTIONS`), its memtable grows in small arena blocks (`ARENA_BLOCK_SIZE`),
and the budget is well above what they take together. The write buffers keep the size
the worker has always counted with (64 KiB ones, tried first, did as well for the budget).

`app.py` names this store `rocksdb-bounded://`.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

import rocksdict
from faust.stores import rocksdb as faust_rocksdb

from shared.logging import get_logger

log = get_logger(__name__)

#: The block cache every database of the process reads through.
BLOCK_CACHE_SIZE = 16 * 1024**2
#: Each database's own options (Faust's `RocksDBOptions`): its memtable is flushed at
#: this size, the next one taking writes meanwhile.
DATABASE_OPTIONS = {"write_buffer_size": 1024**2, "max_write_buffer_number": 2}
#: A memtable takes memory in blocks of this size: a database seldom written to holds
#: one, not an eighth of its write buffer.
ARENA_BLOCK_SIZE = 16 * 1024
#: The most all the memtables of the process may hold: above what the busy databases
#: take at their own flush sizes and the rest at one arena block each.
WRITE_BUFFER_BUDGET = 32 * 1024**2
#: All of the process's RocksDB memory.
MEMORY_BUDGET = BLOCK_CACHE_SIZE + WRITE_BUFFER_BUDGET
#: RocksDB's own log of each database (flushes, compactions) rolls over at this size and
#: keeps `INFO_LOGS_KEPT` files: unbounded, it grew by 1.5 MB a database in a quarter of
#: an hour of `make soak`.
INFO_LOG_SIZE = 1024**2
INFO_LOGS_KEPT = 2


@functools.cache
def shared_cache() -> rocksdict.Cache:
    """The block cache every database of the process reads through."""
    return rocksdict.Cache(BLOCK_CACHE_SIZE)


@functools.cache
def _write_buffers() -> rocksdict.WriteBufferManager:
    # No stall: a flush is triggered when the budget is spent, writers do not wait for it.
    return rocksdict.WriteBufferManager(WRITE_BUFFER_BUDGET, False)


def memory_in_use() -> int:
    """Bytes of the budget in use now: cached blocks and memtables."""
    return int(shared_cache().get_usage()) + int(_write_buffers().get_usage())


class BoundedOptions(faust_rocksdb.RocksDBOptions):
    """Faust's options for one database, with the process's shared cache and write
    buffer manager in place of a cache of its own."""

    def as_options(self) -> Any:
        options = super().as_options()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(shared_cache())
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(_write_buffers())
        options.set_arena_block_size(ARENA_BLOCK_SIZE)
        options.set_max_log_file_size(INFO_LOG_SIZE)
        options.set_keep_log_file_num(INFO_LOGS_KEPT)
        return options

    def open(self, path: Path, *, read_only: bool = False) -> Any:
        """Open the database at `path` with these options, whether it exists or not.

        Faust opens it without naming its column families, and rocksdict then opens
        those of an existing database with the options they were created with, not
        these: every database of a worker started again kept the write buffers and a
        block cache of its own from its first day, outside the budget.
        """
        options = self.as_options()
        access = (
            rocksdict.AccessType.read_write()
            if self.ttl is None
            else rocksdict.AccessType.with_ttl(self.ttl)
        )
        db = rocksdict.Rdict(
            str(path), options=options, column_families={"default": options}, access_type=access
        )
        db.set_read_options(rocksdict.ReadOptions())
        return db


class Store(faust_rocksdb.Store):
    """Faust's RocksDB store, its databases opened with `BoundedOptions`, and named for
    their format.

    A database with a time to live (`app.table(forget_after=...)`) stores a timestamp
    with every value: one written without cannot be read as one (RocksDB reports
    corruption at the first read), nor the reverse. A table that gains or loses its time
    to live (an upgrade) starts a database under its new name, which Faust recovers from
    the table's changelog, and the one of the other format is deleted.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.use_rocksdict:
            raise RuntimeError("the worker's store needs rocksdict (faust-streaming[rocksdict])")
        # Faust built its options from `self.options`, the same mapping given here.
        self.rocksdb_options = BoundedOptions(**(self.options or {}), use_rocksdict=True)

    def partition_path(self, partition: int) -> Path:
        return self._path_in_format(partition, with_ttl=self.rocksdb_options.ttl is not None)

    def _path_in_format(self, partition: int, *, with_ttl: bool) -> Path:
        path = super().partition_path(partition)  # <table>-<partition>.db
        return path.with_name(f"{path.name.removesuffix('.db')}-ttl.db") if with_ttl else path

    def _open_for_partition(self, partition: int) -> Any:
        other_format = self._path_in_format(partition, with_ttl=self.rocksdb_options.ttl is None)
        if other_format.exists():
            log.info(
                "a table's database changed format", table=self.table_name, partition=partition
            )
            shutil.rmtree(other_format)
        return super()._open_for_partition(partition)
