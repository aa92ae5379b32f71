"""Traffic simulator: agencies and citizens using the platform, so the dashboard moves.

`python -m services.metrics.simulator` (started by `make up`). Rates are configurable
(`PANJEREH_SIMULATOR_*_PER_SECOND`); 0 turns an activity off.

Every activity goes through the front door a real actor would use, behind one small
adapter each:

- deliveries: an agency's system reports each service delivery on
  `catalog.delivery-reports`, where agencies may publish directly (wired, Kafka);
- sign-ins: citizens sign in through identity's HTTP API (adapter `sign_in`);
- exchange requests: agencies' systems call data services through the exchange client
  library (adapter `request_data`);
- the register: the simulated agencies and services are registered through the
  catalog's HTTP API (adapter `register_catalog`).

An adapter that is not wired is reported on `/health` and its activity is skipped,
never faked.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import Field

from services.metrics.domain.reference import Reference, load_reference
from shared.envelope import Envelope
from shared.events.catalog import DeliveryReported, Outcome
from shared.kafka import new_producer, publish
from shared.logging import configure_logging, get_logger
from shared.settings import PlatformSettings
from shared.vocabulary import Channel

log = get_logger(__name__)


class SimulatorSettings(PlatformSettings):
    http_port: int = Field(default=8024, validation_alias="PANJEREH_SIMULATOR_PORT")
    deliveries_per_second: float = Field(
        default=5.0, ge=0, validation_alias="PANJEREH_SIMULATOR_DELIVERIES_PER_SECOND"
    )
    sign_ins_per_second: float = Field(
        default=5.0, ge=0, validation_alias="PANJEREH_SIMULATOR_SIGN_INS_PER_SECOND"
    )
    requests_per_second: float = Field(
        default=20.0, ge=0, validation_alias="PANJEREH_SIMULATOR_REQUESTS_PER_SECOND"
    )
    seed: int | None = Field(default=None, validation_alias="PANJEREH_SIMULATOR_SEED")
    instance: str = Field(
        default="simulator",
        validation_alias="PANJEREH_SIMULATOR_INSTANCE",
        description="Named in the `source` of what it publishes.",
    )


# (agency, service id): services the simulated agencies deliver. The catalog accepts a
# delivery only for a published service, so these must be registered (register_catalog).
SERVICES: tuple[tuple[str, str], ...] = (
    ("education", "education.report-card"),
    ("civil-registration", "civil-registration.birth-certificate"),
    ("tax", "tax.income-declaration"),
    ("social-security", "social-security.pension-statement"),
    ("judiciary", "judiciary.summons-notification"),
    ("health", "health.vaccination-record"),
)
CHANNEL_WEIGHTS: dict[Channel, float] = {"online": 0.72, "pishkhan": 0.18, "in_person": 0.10}
OUTCOME_WEIGHTS: dict[Outcome, float] = {"completed": 0.9, "rejected": 0.06, "abandoned": 0.04}


def plan_delivery(rng: random.Random, now: datetime, reference: Reference) -> DeliveryReported:
    """One service delivery as an agency's system would report it.

    Provinces are drawn in proportion to their adult population, channels and outcomes
    by the weights above.
    """
    agency, service_id = rng.choice(SERVICES)
    provinces = list(reference.adults_by_province)
    province = rng.choices(provinces, weights=[reference.adults_by_province[p] for p in provinces])[
        0
    ]
    channel = rng.choices(list(CHANNEL_WEIGHTS), weights=list(CHANNEL_WEIGHTS.values()))[0]
    outcome = rng.choices(list(OUTCOME_WEIGHTS), weights=list(OUTCOME_WEIGHTS.values()))[0]
    took = timedelta(
        seconds=rng.uniform(20, 600) if channel == "online" else rng.uniform(600, 5400)
    )
    return DeliveryReported(
        report_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        agency=agency,
        service_id=service_id,
        channel=channel,
        province=province,
        started_at=now - took,
        finished_at=now,
        outcome=outcome,
    )


class Pace:
    """How many actions are due at a rate, carrying fractions from one tick to the next."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._carried = 0.0

    def due(self, elapsed_seconds: float) -> int:
        self._carried += self.per_second * elapsed_seconds
        whole = int(self._carried)
        self._carried -= whole
        return whole


Action = Callable[[random.Random, datetime], Awaitable[None]]


@dataclass
class Adapters:
    """The front doors the simulator acts through; None where not wired yet."""

    report_delivery: Action | None = None
    sign_in: Action | None = None
    request_data: Action | None = None
    register_catalog: Callable[[], Awaitable[None]] | None = None

    def wired(self) -> dict[str, bool]:
        return {
            "report_delivery": self.report_delivery is not None,
            "sign_in": self.sign_in is not None,
            "request_data": self.request_data is not None,
            "register_catalog": self.register_catalog is not None,
        }


def kafka_delivery_reports(producer: AIOKafkaProducer, reference: Reference, source: str) -> Action:
    """Report deliveries on `catalog.delivery-reports`, as an agency's own system does."""

    async def report(rng: random.Random, now: datetime) -> None:
        delivery = plan_delivery(rng, now, reference)
        await publish(producer, Envelope.wrap(delivery, source=source, subject=delivery.agency))

    return report


@dataclass
class Simulator:
    """Runs every wired activity at its rate until stopped."""

    settings: SimulatorSettings
    adapters: Adapters
    sent: dict[str, int] = field(default_factory=dict)
    tick_seconds: float = 0.1
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        """Finish the action in hand and return from `run()`."""
        self._stopping.set()

    async def run(self) -> None:
        rng = random.Random(self.settings.seed)
        if self.adapters.register_catalog is not None:
            await self.adapters.register_catalog()
        activities: list[tuple[str, Action, Pace]] = [
            (name, action, Pace(rate))
            for name, action, rate in (
                (
                    "report_delivery",
                    self.adapters.report_delivery,
                    self.settings.deliveries_per_second,
                ),
                ("sign_in", self.adapters.sign_in, self.settings.sign_ins_per_second),
                ("request_data", self.adapters.request_data, self.settings.requests_per_second),
            )
            if action is not None and rate > 0
        ]
        log.info("simulator started", wired=self.adapters.wired())
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not self._stopping.is_set():
            await asyncio.sleep(self.tick_seconds)
            now_tick = loop.time()
            elapsed, last = now_tick - last, now_tick
            for name, action, pace in activities:
                for _ in range(pace.due(elapsed)):
                    if self._stopping.is_set():
                        return
                    await action(rng, datetime.now(UTC))
                    self.sent[name] = self.sent.get(name, 0) + 1


def build(settings: SimulatorSettings | None = None) -> FastAPI:
    """The simulator's process: its loop in the background, `/health` in front."""
    settings = settings or SimulatorSettings()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("simulator", settings)
        producer = new_producer(settings.kafka_bootstrap_servers, client_id=settings.instance)
        await producer.start()
        adapters = Adapters(
            report_delivery=kafka_delivery_reports(producer, load_reference(), settings.instance)
        )
        simulator = Simulator(settings, adapters)
        state["simulator"] = simulator
        state["task"] = asyncio.create_task(simulator.run(), name="simulator")
        try:
            yield
        finally:
            simulator.stop()
            await asyncio.gather(state["task"], return_exceptions=True)
            await producer.stop()

    app = FastAPI(title="Panjereh traffic simulator", lifespan=lifespan)

    @app.get("/health")
    async def health() -> JSONResponse:
        simulator: Simulator = state["simulator"]
        running = not state["task"].done()
        return JSONResponse(
            {
                "service": "simulator",
                "status": "ok" if running else "failing",
                "wired": simulator.adapters.wired(),
                "sent": simulator.sent,
            },
            status_code=200 if running else 503,
        )

    return app


def main() -> None:
    settings = SimulatorSettings()
    uvicorn.run(
        build(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
