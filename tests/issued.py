"""Waiting for the credentials the access manager issues to an agency."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from shared.kafka_access import KafkaAccess
from shared.principals import agency_principal


def issued_credentials(folder: Path) -> Callable[[str], Awaitable[KafkaAccess]]:
    """An agency's own access from the access manager's credentials folder, once it is
    there: the manager writes the file once the topics, the user and the ACLs exist (the
    agency must be recorded on `catalog.agencies` first)."""

    async def issued(agency: str) -> KafkaAccess:
        path = folder / f"{agency_principal(agency)}.properties"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while not path.exists():
            assert loop.time() < deadline, f"no credentials issued to {agency}"
            await asyncio.sleep(0.2)
        return KafkaAccess.read(path)

    return issued
