"""Traffic simulator: agencies and citizens using the platform, so the dashboard moves.

`python -m simulator` (started by `make up`). Rates are configurable
(`PANJEREH_SIMULATOR_*_PER_SECOND`); 0 turns an activity off.

Every activity goes through the front door a real actor would use, behind one small
adapter each:

- deliveries: an agency's system reports each service delivery on its own channel
  (`agency.<code>.deliveries`) with the agency package's `DeliveryReporter`, as the
  agency's own principal (wired, Kafka);
- sign-ins: citizens register, receive their one-time code on their phone (the
  development-only `development.phones` topic, where the development SMS gateway
  delivers what it opened) and sign in through identity's HTTP API,
  and sometimes refresh their session (adapter `sign_in`);
- exchange requests: a provider agency (civil registration) registers its key with
  identity and its data service with the exchange, an administrator grants the consumer
  (social security) a right, the provider answers through a `ProviderWorker` (sometimes
  refusing) and the consumer asks through the exchange client library (adapter
  `request_data`);
- the register: as the platform operator, client credentials are created for the
  simulated agencies, whose systems then publish the simulated services through the
  catalog's HTTP API (adapter `register_catalog`); deliveries are reported only for the
  services so published;
- provincial weekly reports: each provincial ICT directorate but Lorestan's (whose
  published figures the metrics service loads) reports its province's figures for every
  week of the development sample it has not reported, through the metrics service's API
  with its own credentials (adapter `report_provinces`, `simulator/provinces.py`).

Each adapter waits, retrying with backoff, for the services it needs. `/health` shows
what is wired and, per adapter, whether it is working or what it waits for. An adapter
that is not wired or not ready has its activity skipped, never faked.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from panjereh_agency import DeliveryReporter
from pydantic import Field, SecretStr, model_validator

from services.identity.settings import DEVELOPMENT_OPERATOR_TOKEN
from services.metrics.domain.reference import Reference, load_reference
from shared.events.catalog import DeliveryReported, Outcome
from shared.input_guard import InputGuard
from shared.logging import configure_logging, get_logger
from shared.runtime import serve
from shared.settings import PlatformSettings
from shared.vocabulary import Channel
from simulator.actors import (
    AgenciesOnTheExchange,
    AgencyCredentials,
    CitizensAtTheWindow,
    NotReady,
    Operator,
    Phones,
    Readiness,
    issued_credentials,
    register_services,
)
from simulator.provinces import ProvincialDirectorates

log = get_logger(__name__)


class SimulatorSettings(PlatformSettings):
    uses_database: ClassVar[bool] = False  # it acts only through the public doors

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
    identity_port: int = Field(default=8001, validation_alias="PANJEREH_IDENTITY_PORT")
    catalog_port: int = Field(default=8002, validation_alias="PANJEREH_CATALOG_PORT")
    exchange_port: int = Field(default=8003, validation_alias="PANJEREH_EXCHANGE_PORT")
    metrics_port: int = Field(default=8004, validation_alias="PANJEREH_METRICS_PORT")
    provincial_reports: bool = Field(
        default=True,
        validation_alias="PANJEREH_SIMULATOR_PROVINCIAL_REPORTS",
        description="Whether the simulated provincial directorates send weekly reports.",
    )
    operator_token: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_OPERATOR_TOKEN),
        validation_alias="PANJEREH_IDENTITY_OPERATOR_TOKEN",
        description="Identity's operator secret: creates the simulated agencies' clients.",
    )
    instance: str = Field(
        default="simulator",
        validation_alias="PANJEREH_SIMULATOR_INSTANCE",
        description="Named in the `source` of what it publishes.",
    )
    agency_credentials_dir: Path = Field(
        default=Path(".data/dev/credentials"),
        validation_alias="PANJEREH_AGENCY_CREDENTIALS_DIR",
        description="Where the platform issued the simulated agencies' credentials files.",
    )
    identity_url: str | None = Field(
        default=None,
        validation_alias="PANJEREH_SIMULATOR_IDENTITY_URL",
        description="Identity's base URL; by default this host at PANJEREH_IDENTITY_PORT.",
    )
    catalog_url: str | None = Field(default=None, validation_alias="PANJEREH_SIMULATOR_CATALOG_URL")
    exchange_url: str | None = Field(
        default=None, validation_alias="PANJEREH_SIMULATOR_EXCHANGE_URL"
    )
    metrics_url: str | None = Field(default=None, validation_alias="PANJEREH_SIMULATOR_METRICS_URL")

    @model_validator(mode="after")
    def _never_in_production(self) -> SimulatorSettings:
        if self.environment == "production":
            raise ValueError(
                "the traffic simulator makes up agencies, citizens and deliveries and reads "
                "one-time codes off the development channel: refused in production"
            )
        return self

    def service_url(self, service: str) -> str:
        """The base URL of `service` (identity, catalog, exchange or metrics)."""
        given: str | None = getattr(self, f"{service}_url")
        if given:
            return given.rstrip("/")
        host = self.http_host if self.http_host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{getattr(self, f'{service}_port')}"


# (agency, service id): services the simulated agencies deliver, under reference agencies.
# The catalog accepts a delivery only for a published service offering its channel, so
# register_catalog publishes these (on every channel) and deliveries name only those.
SERVICES: tuple[tuple[str, str], ...] = (
    ("education", "education.graduation-certificate"),
    ("civil-registration", "civil-registration.birth-certificate"),
    ("tax", "tax.income-declaration"),
    ("social-security", "social-security.pension-statement"),
)
CHANNEL_WEIGHTS: dict[Channel, float] = {"online": 0.72, "pishkhan": 0.18, "in_person": 0.10}
OUTCOME_WEIGHTS: dict[Outcome, float] = {"completed": 0.9, "rejected": 0.06, "abandoned": 0.04}


def plan_delivery(
    rng: random.Random,
    now: datetime,
    reference: Reference,
    services: Sequence[tuple[str, str]] = SERVICES,
) -> DeliveryReported:
    """One delivery of one of `services` as an agency's system would report it.

    Provinces are drawn in proportion to their adult population, channels and outcomes
    by the weights above.
    """
    agency, service_id = rng.choice(services)
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
    register_catalog: Callable[[asyncio.Event], Awaitable[None]] | None = None
    """Runs first, until done or the simulator stops (it gets the stopping event)."""

    def wired(self) -> dict[str, bool]:
        return {
            "report_delivery": self.report_delivery is not None,
            "sign_in": self.sign_in is not None,
            "request_data": self.request_data is not None,
            "register_catalog": self.register_catalog is not None,
        }


class Reporter(Protocol):
    async def report(self, delivery: DeliveryReported) -> None: ...


class Reporters(Protocol):
    async def of(self, agency: str) -> Reporter: ...


class AgencyReporters:
    """Each simulated agency's delivery reporter (agency package), made once its
    credentials are issued."""

    def __init__(self, credentials: AgencyCredentials) -> None:
        self._credentials = credentials
        self._reporters: dict[str, DeliveryReporter] = {}

    async def of(self, agency: str) -> Reporter:
        reporter = self._reporters.get(agency)
        if reporter is None:
            reporter = DeliveryReporter(self._credentials(agency), agency)
            await reporter.start()
            self._reporters[agency] = reporter
        return reporter

    async def stop(self) -> None:
        for reporter in self._reporters.values():
            await reporter.stop()


def channel_delivery_reports(
    reporters: Reporters,
    reference: Reference,
    services: Sequence[tuple[str, str]] = SERVICES,
) -> Action:
    """Report deliveries of `services` on each agency's own delivery channel, as its own
    system does; nothing while `services` is empty (none registered yet)."""

    async def report(rng: random.Random, now: datetime) -> None:
        if not services:
            return
        delivery = plan_delivery(rng, now, reference, services)
        try:
            await (await reporters.of(delivery.agency)).report(delivery)
        except NotReady as waiting:
            log.info("simulated delivery waits", reason=str(waiting))
        except Exception as error:  # the broker may be away a moment; the simulation goes on
            log.warning("simulated delivery not reported", error=repr(error)[:300])

    return report


@dataclass
class Simulator:
    """Runs every wired activity at its rate until stopped."""

    settings: SimulatorSettings
    adapters: Adapters
    sent: dict[str, int] = field(default_factory=dict)
    tick_seconds: float = 0.1
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        """Finish the action in hand and return from `run()`."""
        self.stopping.set()

    async def run(self) -> None:
        rng = random.Random(self.settings.seed)
        if self.adapters.register_catalog is not None:
            await self.adapters.register_catalog(self.stopping)
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
        while not self.stopping.is_set():
            await asyncio.sleep(self.tick_seconds)
            now_tick = loop.time()
            elapsed, last = now_tick - last, now_tick
            for name, action, pace in activities:
                for _ in range(pace.due(elapsed)):
                    if self.stopping.is_set():
                        return
                    try:
                        await action(rng, datetime.now(UTC))
                    except Exception as error:  # one failed action never ends the simulation
                        log.warning("simulated action failed", activity=name, error=repr(error))
                        continue
                    self.sent[name] = self.sent.get(name, 0) + 1


def build(settings: SimulatorSettings | None = None) -> FastAPI:
    """The simulator's process: its loop in the background, `/health` in front."""
    settings = settings or SimulatorSettings()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("simulator", settings)
        readiness = Readiness()
        state["readiness"] = readiness
        identity = httpx.AsyncClient(base_url=settings.service_url("identity"), timeout=15)
        catalog = httpx.AsyncClient(base_url=settings.service_url("catalog"), timeout=15)
        exchange = httpx.AsyncClient(base_url=settings.service_url("exchange"), timeout=15)
        metrics = httpx.AsyncClient(base_url=settings.service_url("metrics"), timeout=15)
        operator = Operator(identity, settings.operator_token.get_secret_value(), settings.instance)
        reference = load_reference()
        registered: list[tuple[str, str]] = []

        async def register_catalog(stopping: asyncio.Event) -> None:
            registered.extend(
                await register_services(operator, catalog, SERVICES, readiness, stopping)
            )

        citizens = CitizensAtTheWindow(
            identity,
            Phones(settings.kafka, f"{settings.instance}-phones"),
            reference.adults_by_province,
            readiness,
        )
        credentials = issued_credentials(settings.agency_credentials_dir)
        agencies = AgenciesOnTheExchange(operator, exchange, credentials, readiness)
        reporters = AgencyReporters(credentials)
        adapters = Adapters(
            report_delivery=channel_delivery_reports(reporters, reference, registered),
            sign_in=citizens.act,
            request_data=agencies.act,
            register_catalog=register_catalog,
        )
        simulator = Simulator(settings, adapters)
        state["simulator"] = simulator
        state["task"] = asyncio.create_task(simulator.run(), name="simulator")
        set_ups: list[asyncio.Task[Any]] = [
            asyncio.create_task(citizens.set_up(simulator.stopping), name="simulator-citizens"),
            asyncio.create_task(agencies.set_up(simulator.stopping), name="simulator-exchange"),
        ]
        if settings.provincial_reports:
            directorates = ProvincialDirectorates(
                operator, metrics, readiness, random.Random(settings.seed)
            )
            set_ups.append(
                asyncio.create_task(
                    directorates.run(simulator.stopping), name="simulator-provinces"
                )
            )
        try:
            yield
        finally:
            simulator.stop()
            await asyncio.gather(state["task"], *set_ups, return_exceptions=True)
            await asyncio.gather(citizens.stop(), agencies.stop(), return_exceptions=True)
            await reporters.stop()
            for client in (identity, catalog, exchange, metrics):
                await client.aclose()

    app = FastAPI(title="Panjereh traffic simulator", lifespan=lifespan)
    app.add_middleware(InputGuard)

    @app.get("/health")
    async def health() -> JSONResponse:
        simulator: Simulator = state["simulator"]
        running = not state["task"].done()
        return JSONResponse(
            {
                "service": "simulator",
                "status": "ok" if running else "failing",
                "wired": simulator.adapters.wired(),
                "working": state["readiness"].states,
                "sent": simulator.sent,
            },
            status_code=200 if running else 503,
        )

    return app


def main() -> None:
    settings = SimulatorSettings()
    serve(build(settings), settings)


if __name__ == "__main__":
    main()
