"""What a citizen may ask of the exchange: which agencies asked for data about them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.exchange.use_cases.ports import ExchangeWork
from shared.errors import Forbidden

LEAST_ASSURANCE = 2


@dataclass(frozen=True)
class DataRequestSeen:
    """One transaction about the citizen, as they see it."""

    transaction_id: uuid.UUID
    consumer: str
    consumer_name_fa: str | None
    consumer_name_en: str | None
    provider: str | None
    data_service: str
    purpose: str
    legal_basis: str | None
    outcome: str
    at: datetime


async def citizen_data_requests(
    work: ExchangeWork, citizen: str, level_of_assurance: int | None, limit: int
) -> list[DataRequestSeen]:
    """Which agencies asked for data about `citizen` (their pseudonymous id), for what
    purpose, with what outcome; newest first. Forbidden below level of assurance 2."""
    if (level_of_assurance or 0) < LEAST_ASSURANCE:
        raise Forbidden("exchange_assurance_too_low")
    records = await work.citizen_requests(citizen, limit)
    agencies = {entry.consumer for entry, _ in records}
    agencies |= {entry.provider for entry, _ in records if entry.provider}
    names = await work.agency_names(sorted(agencies))
    return [
        DataRequestSeen(
            transaction_id=entry.transaction_id,
            consumer=entry.consumer,
            consumer_name_fa=names.get(entry.consumer, (None, None))[0],
            consumer_name_en=names.get(entry.consumer, (None, None))[1],
            provider=entry.provider,
            data_service=entry.data_service,
            purpose=entry.purpose,
            legal_basis=entry.legal_basis,
            # A forwarded request still waits for its answer.
            outcome="pending" if entry.outcome == "forwarded" else entry.outcome,
            at=at,
        )
        for entry, at in records
    ]
