"""The worker's RocksDB databases share one memory budget.

Faust opens a RocksDB database for each partition of each table (some ninety in the
worker), each with a block cache and write buffers of its own: the worker's memory grew
as each cache filled with the blocks it read and each memtable with the writes it took,
up to their sizes times the number of databases. Here every database of the process
reads through one block cache, and their memtables are charged to it (RocksDB's write
buffer manager): when all the memtables together pass `WRITE_BUFFER_BUDGET`, the one
written to is flushed, and the whole stays near `MEMORY_BUDGET` however many tables the
worker holds.

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

#: All of the process's RocksDB memory: the block cache, the memtables charged to it.
MEMORY_BUDGET = 64 * 1024**2
#: The part of it memtables may take before RocksDB flushes the one written to. A
#: database no longer written to keeps its memtable: at most `DATABASE_OPTIONS`' size.
WRITE_BUFFER_BUDGET = 16 * 1024**2
#: Each database's own options (Faust's `RocksDBOptions`): a memtable is flushed at this
#: size at the latest.
DATABASE_OPTIONS = {"write_buffer_size": 1024**2, "max_write_buffer_number": 2}


@functools.cache
def shared_cache() -> rocksdict.Cache:
    """The block cache every database of the process reads through."""
    return rocksdict.Cache(MEMORY_BUDGET)


@functools.cache
def _write_buffers() -> rocksdict.WriteBufferManager:
    # No stall: a flush is triggered when the budget is spent, writers do not wait for it.
    return rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
        WRITE_BUFFER_BUDGET, False, shared_cache()
    )


def memory_in_use() -> int:
    """Bytes of the budget in use now: cached blocks and memtables."""
    return int(shared_cache().get_usage())


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
        return options


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
