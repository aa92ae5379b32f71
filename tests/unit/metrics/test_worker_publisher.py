"""The worker's publications, one at a time: a figure's last record on its topic is its
latest value, however two publications overlap.

The scenario runs in a process of its own (`worker_scenarios`): the producer is replaced
by a slow recorder, as a full producer buffer makes a publication wait.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.unit.metrics.worker_scenarios import run_worker_scenario

SCENARIO = textwrap.dedent(
    """
    import asyncio, json
    from services.metrics.domain.figures import Cell, Figure, dims
    from services.metrics.domain.windows import ALL_TIME
    from services.metrics.worker import mirror, publisher
    from shared.events.metrics import ExchangeMetricUpdated

    TARGET = Cell("exchange.transactions", dims(consumer="target"), ALL_TIME)
    OTHERS = [Cell("exchange.transactions", dims(consumer=f"c{n}"), ALL_TIME) for n in range(20)]
    count = {"value": 728.0}
    changed = set()
    sent = []

    def figures(now):
        taken = sorted(changed)
        changed.clear()
        # The target last: the first publication reaches it after everything else.
        taken.sort(key=lambda cell: cell == TARGET)
        return [Figure(c, count["value"] if c == TARGET else 1.0, "count") for c in taken]

    async def slow_send(topic, key, payload):
        await asyncio.sleep(0.005)  # a full producer buffer
        sent.append((payload.dimensions.get("consumer"), payload.value))

    async def no_flush():
        return None

    publisher.SOURCES[:] = [
        publisher.Source("exchange", ExchangeMetricUpdated, figures, lambda: None)
    ]
    publisher.send = slow_send
    publisher.app.producer.flush = no_flush
    mirror.views_current = lambda: True
    publisher._state.recovered_generation = publisher.app.consumer_generation_id

    async def main():
        changed.update([*OTHERS, TARGET])
        first = asyncio.create_task(publisher.publish_changes())
        await asyncio.sleep(0.02)  # the first is sending the others
        count["value"] = 750.0  # the merge agent takes the last rows
        changed.add(TARGET)
        await asyncio.gather(first, publisher.publish_changes())
        print(json.dumps([value for who, value in sent if who == "target"]))

    asyncio.run(main())
    """
)


def test_a_publication_started_while_another_sends_does_not_leave_an_older_value_last(
    tmp_path: Path,
) -> None:
    published = run_worker_scenario(tmp_path, SCENARIO)
    # Both values went out; the one the topic keeps (the last) is the latest.
    assert published == [728.0, 750.0]
