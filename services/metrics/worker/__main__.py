"""Run the metrics worker: `python -m services.metrics.worker`."""

from services.metrics.worker import main

main()
