"""Run the exchange service: `python -m services.exchange`."""

from services.exchange.bootstrap import main

main()
