"""Handlers of the events identity consumes: the catalog's register of agencies."""

from __future__ import annotations

from typing import Any

from services.identity import storage
from shared.envelope import Envelope
from shared.events.catalog import AgencyRecorded
from shared.runtime import Handlers


async def project_agency(envelope: Envelope[Any], connection: Any) -> None:
    """Keep identity's projection of an agency at the newest revision seen."""
    agency: AgencyRecorded = envelope.payload
    await storage.upsert_agency(connection, agency.model_dump(mode="python"))


HANDLERS: Handlers = {AgencyRecorded: [project_agency]}
