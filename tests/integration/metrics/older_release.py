"""The metrics worker as an older release would run it: the same agents, and a table that
the current release no longer has, so that its consumer subscribes to a topic the
current one does not. `python -m tests.integration.metrics.older_release`."""

from __future__ import annotations

from services.metrics.worker import main
from services.metrics.worker.app import table

retired = table("retired-rows", default=None, partitions=1)

if __name__ == "__main__":
    main()
