"""Run the catalog service: `python -m services.catalog`."""

from services.catalog.bootstrap import main

main()
