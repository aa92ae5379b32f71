"""The worker's forwarding of rows to the copy that publishes figures: as soon as they are
written (not at the next flush interval), one forwarding at a time, and less often while
rows keep coming.

Each scenario runs in a process of its own (`worker_scenarios`): the producer is replaced
by a recorder, slow where the scenario needs a forwarding to take time.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from tests.unit.metrics.worker_scenarios import run_worker_scenario

SETUP = """
import asyncio, json
from services.metrics.worker import mirror
from services.metrics.worker.rows import rows_of

class Table(dict):
    name = "registers"

table = Table()
mirror._forwarding.tables[table.name] = table
mirror._forwarding.generation = mirror.app.consumer_generation_id
mirror.tables_recovered = lambda: True
sent = []
calls = []

async def send(topic, key, body, **kwargs):
    calls.append(key)
    # The broker takes the first record slowly (a full buffer), later ones at once.
    await asyncio.sleep(SEND_SECONDS if len(calls) == 1 else 0)
    sent.append(rows_of(body)[1])

async def no_flush():
    return None

mirror.app.producer.send = send
mirror.app.producer.flush = no_flush
"""

FORWARDED_WHEN_WRITTEN = """
SEND_SECONDS = 0

async def main():
    forwarder = asyncio.create_task(mirror._forward_when_written())
    await asyncio.sleep(0.1)
    mirror.keep(table, "agency-a", {"name": "A"})
    for _ in range(100):  # the flush interval is an hour: only the write can start it
        if sent:
            break
        await asyncio.sleep(0.05)
    forwarder.cancel()
    print(json.dumps(sent))

asyncio.run(main())
"""

ONE_AT_A_TIME = """
SEND_SECONDS = 0.05

async def main():
    mirror.keep(table, "agency-a", {"name": "older"})
    first = asyncio.create_task(mirror.forward_pending())
    await asyncio.sleep(0.01)  # the first is sending the older row
    mirror.keep(table, "agency-a", {"name": "newer"})
    await asyncio.gather(first, mirror.forward_pending())
    print(json.dumps(sent))

asyncio.run(main())
"""

BACKING_OFF = """
gaps, gap = [], mirror.FORWARDING_GAP_SECONDS
for idle in [False] * 6 + [True]:
    gap = mirror.next_forwarding_gap(gap, idle=idle, most=1.0)
    gaps.append(gap)
print(json.dumps(gaps))
"""


def run_scenario(tmp_path: Path, scenario: str) -> Any:
    code = textwrap.dedent(SETUP) + textwrap.dedent(scenario)
    # The flush interval is an hour: whatever is forwarded, a write started it.
    return run_worker_scenario(tmp_path, code, PANJEREH_METRICS_FLUSH_INTERVAL="3600")


def test_a_written_row_is_forwarded_without_waiting_for_the_flush_interval(
    tmp_path: Path,
) -> None:
    assert run_scenario(tmp_path, FORWARDED_WHEN_WRITTEN) == [[["agency-a", {"name": "A"}]]]


def test_a_forwarding_started_while_another_sends_does_not_overtake_it(tmp_path: Path) -> None:
    # The copy keeps a register's last row: the newer must arrive after the older.
    assert run_scenario(tmp_path, ONE_AT_A_TIME) == [
        [["agency-a", {"name": "older"}]],
        [["agency-a", {"name": "newer"}]],
    ]


def test_while_rows_keep_coming_forwardings_back_off_to_the_flush_interval_and_not_further(
    tmp_path: Path,
) -> None:
    # Then, once the forwarder has waited for rows, it forwards promptly again.
    assert run_scenario(tmp_path, BACKING_OFF) == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 0.05]
