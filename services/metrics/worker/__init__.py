"""The metrics stream processor: one Faust worker, `python -m services.metrics.worker`.

It consumes what identity, the catalog and the exchange publish, keeps live counters in
Faust tables (backed by changelog topics, so a restarted worker recovers them), and
publishes every figure on the compacted `metrics.*` topics: from the merged copy of every
worker's counters, which one worker holds (`mirror.py`). The agents live in one module
per domain, found through the explicit list below.
"""

from __future__ import annotations

import asyncio
import importlib
import sys

AGENT_MODULES: tuple[str, ...] = (
    "services.metrics.worker.lifecycle",
    "services.metrics.worker.mirror",
    "services.metrics.worker.exchange",
    "services.metrics.worker.identity",
    "services.metrics.worker.adoption",
    "services.metrics.worker.deliveries",
    "services.metrics.worker.publisher",
    "services.metrics.worker.programme",
    "services.metrics.worker.evaluations",
)


def load_agents() -> None:
    """Import every domain module, which declares its topics, tables and agents."""
    for module in AGENT_MODULES:
        importlib.import_module(module)


def main() -> None:
    from services.metrics.worker import mirror
    from services.metrics.worker.app import BOUNDED_CHANGELOGS, app, settings, subscription
    from services.metrics.worker.changelogs import ensure_own_topics
    from shared.logging import configure_logging

    configure_logging("metrics-worker", settings)
    load_agents()
    app.conf.consumer_group_instance_id = settings.member_id(subscription())
    own = {**mirror.OWN_TOPICS, **BOUNDED_CHANGELOGS}
    asyncio.run(ensure_own_topics(app, settings.kafka, settings.durability, own))
    sys.argv = [sys.argv[0], "worker", "--loglevel", settings.log_level.lower()]
    app.main()
