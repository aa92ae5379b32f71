"""The exchange client library, for agencies' systems.

A consumer agency's system uses `ExchangeClient`: `await client.request(...)` signs a
`DataRequested` with the agency's key, publishes it on `exchange.requests` and returns the
provider's answer, or raises a typed error (`Denied`, `Refused`, `TimedOut`, `Failed`)
once the exchange delivers the transaction's final outcome on
`exchange.consumer-responses`. A provider agency's system runs a `ProviderWorker` with one
handler per data service: a handler returns the answer payload, or raises
`RefuseRequest(reason)` to refuse (which the law makes a reportable event).

Agencies' systems live outside the platform, so this library publishes straight to
Kafka; it has no outbox. What is signed is defined in `signing`.
"""

from services.exchange.client.consumer import (
    Denied,
    ExchangeClient,
    ExchangeError,
    Failed,
    Refused,
    TimedOut,
)
from services.exchange.client.provider import ProviderWorker, RefuseRequest, RequestHandler

__all__ = [
    "Denied",
    "ExchangeClient",
    "ExchangeError",
    "Failed",
    "ProviderWorker",
    "RefuseRequest",
    "Refused",
    "RequestHandler",
    "TimedOut",
]
