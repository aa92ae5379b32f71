"""The records the workers forward their tables' rows in (see `mirror.py`): JSON,
`{"table": name, "rows": [[key, value], ...]}`, each at most `RECORD_BYTES`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

#: The most a record carries, in bytes: far below the broker's 1 MB whatever the rows (a
#: service's every revision is one row), unless one row alone is larger.
RECORD_BYTES = 256 * 1024


def records(table: str, rows: Iterable[tuple[str, Any]]) -> Iterator[bytes]:
    """The records carrying `rows` of `table`, in order."""
    # '{"table":"<table>","rows":[' then the rows, then ']}'.
    head = json.dumps({"table": table, "rows": []}, separators=(",", ":"))[:-2].encode()
    chunk: list[bytes] = []
    size = len(head) + 2
    for row in rows:
        encoded = json.dumps(list(row), separators=(",", ":")).encode()
        if chunk and size + len(encoded) + 1 > RECORD_BYTES:
            yield head + b",".join(chunk) + b"]}"
            chunk, size = [], len(head) + 2
        chunk.append(encoded)
        size += len(encoded) + 1
    if chunk:
        yield head + b",".join(chunk) + b"]}"


def rows_of(record: bytes) -> tuple[str, list[tuple[str, Any]]]:
    """(table, rows) of a record; raises ValueError, KeyError or TypeError if it is none."""
    body = json.loads(record)
    return str(body["table"]), [(str(key), value) for key, value in body["rows"]]
