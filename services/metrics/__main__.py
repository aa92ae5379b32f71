"""Run the metrics service: `python -m services.metrics`."""

from services.metrics.bootstrap import main

main()
