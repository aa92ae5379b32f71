"""Run the identity service: `python -m services.identity`."""

from services.identity.bootstrap import main

main()
