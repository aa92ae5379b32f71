"""Panjereh for agencies' systems: the exchange client, the provider worker, the delivery
reporter.

An agency connects with its own credentials (`AgencyConfig`, read from the librdkafka
properties file the platform issued it) and sees only its own channel:

- `ExchangeClient`: `await client.request(...)` signs a `DataRequested` with the agency's
  key, publishes it on `agency.<code>.requests` and returns the provider's answer, or
  raises a typed error (`Denied`, `Refused`, `TimedOut`, `Failed`) once the exchange
  delivers the final outcome on `agency.<code>.outcomes`.
- `ProviderWorker`: one handler per data service answers the requests the exchange
  forwards on `agency.<code>.forwarded`; a handler returns the answer payload, or raises
  `RefuseRequest(reason)` (which the law makes a reportable event).
- `DeliveryReporter`: every service delivery, on `agency.<code>.deliveries`.

Whatever the exchange sends is accepted only with the exchange's signature
(`ExchangeKeys`); both readers use a consumer group, so what arrives while the agency's
system is down is delivered when it comes back.
"""

from panjereh_agency.config import AgencyConfig
from panjereh_agency.deliveries import DeliveryReporter
from panjereh_agency.exchange_keys import ExchangeKeys
from panjereh_agency.provider import ProviderWorker, RefuseRequest, RequestHandler
from panjereh_agency.requests import (
    Denied,
    ExchangeClient,
    ExchangeError,
    Failed,
    Refused,
    TimedOut,
)

__all__ = [
    "AgencyConfig",
    "DeliveryReporter",
    "Denied",
    "ExchangeClient",
    "ExchangeError",
    "ExchangeKeys",
    "Failed",
    "ProviderWorker",
    "RefuseRequest",
    "Refused",
    "RequestHandler",
    "TimedOut",
]
