"""Handlers of the events identity consumes: the catalog's register of agencies.

Each runs inside the transaction the inbox opened for its event, builds the unit of work
on that connection and calls a use case.
"""

from __future__ import annotations

from typing import Any

from services.identity.storage import IdentityStorage
from services.identity.use_cases import agencies
from shared.envelope import Envelope
from shared.events.catalog import AgencyRecorded
from shared.runtime import Handlers


async def project_agency(envelope: Envelope[Any], connection: Any) -> None:
    await agencies.project_agency(IdentityStorage(connection), envelope.payload)


HANDLERS: Handlers = {AgencyRecorded: [project_agency]}
