"""The simulator's actors: agencies' systems and citizens, acting from outside the platform.

Each goes through the front door a real one would use: identity's, the catalog's and the
exchange's public HTTP APIs, the exchange client library, and (for the phone that receives
a one-time code) the development-only `development.phones` topic the development SMS
gateway delivers to. None of them reads a service's tables, calls anything internal, or
reads `identity.sms` (sealed to the gateway; no ACL lets the simulator read it).

Every setup step retries with backoff until the service it needs is up; a failed action
is logged as a warning and the simulation goes on. `Readiness` says, per adapter, whether
it is working or what it waits for (shown on the simulator's `/health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from joserfc.jwk import ECKey
from panjereh_agency import (
    ExchangeClient,
    ExchangeError,
    ExchangeKeys,
    ProviderWorker,
    RefuseRequest,
)

from shared.events.development import SmsDelivered
from shared.events.exchange import DataRequestForwarded
from shared.kafka import new_producer
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.persian import to_ascii_digits
from shared.principals import agency_principal
from shared.registry import UndecodableEvent, decode
from shared.signing import generate_key, public_jwk
from shared.topics import Topic

log = get_logger(__name__)

T = TypeVar("T")

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0


class NotReady(Exception):
    """A service answered with something other than what the step needs (yet)."""


class Readiness:
    """Per adapter: "working", or what it is waiting for."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}

    def waiting(self, adapter: str, reason: str) -> None:
        self.states[adapter] = f"waiting: {reason}"

    def working(self, adapter: str) -> None:
        self.states[adapter] = "working"

    def is_working(self, adapter: str) -> bool:
        return self.states.get(adapter) == "working"


async def retrying(
    adapter: str,
    step: Callable[[], Awaitable[T]],
    readiness: Readiness,
    stopping: asyncio.Event,
    *,
    first_delay: float = BACKOFF_FIRST_SECONDS,
) -> T | None:
    """`step()`'s result, retried with exponential backoff until it succeeds; None if
    the simulator stops first. Failures are warnings: a service may simply not be up yet."""
    delay = first_delay
    while not stopping.is_set():
        try:
            return await step()
        except (TimeoutError, NotReady, httpx.HTTPError, OSError) as error:
            reason = str(error) or type(error).__name__
        except Exception as error:  # an unexpected failure must not end the simulation
            reason = repr(error)
        readiness.waiting(adapter, reason[:300])
        log.warning("simulator step not done yet; retrying", adapter=adapter, reason=reason[:300])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
        delay = min(delay * 2, BACKOFF_MAX_SECONDS)
    return None


def expect(response: httpx.Response, *ok: int) -> dict[str, Any]:
    """The JSON body of a response whose status is one of `ok`, else NotReady."""
    if response.status_code not in ok:
        raise NotReady(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:200]}"
        )
    if not response.content:
        return {}
    body = response.json()
    return body if isinstance(body, dict) else {"items": body}


class Tasks:
    """Background actions, at most `limit` at once; past it new ones are skipped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: set[asyncio.Task[None]] = set()
        self.skipped = 0

    def spawn(self, action: Coroutine[Any, Any, None]) -> bool:
        if len(self._running) >= self.limit:
            action.close()
            self.skipped += 1
            return False
        task = asyncio.create_task(action)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return True

    async def cancel(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)


@dataclass
class Operator:
    """The platform operator's access to identity, and agencies' systems' tokens."""

    identity: httpx.AsyncClient
    operator_token: str
    instance: str
    _credentials: dict[tuple[str, tuple[str, ...]], tuple[str, str]] = field(default_factory=dict)
    _tokens: dict[tuple[str, tuple[str, ...]], tuple[str, float]] = field(default_factory=dict)

    async def agency_token(self, agency: str, scopes: Sequence[str]) -> str:
        """An access token of an agency's system with `scopes`: client credentials are
        created once (as operator), tokens fetched again shortly before they expire."""
        key = (agency, tuple(sorted(scopes)))
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        if key not in self._credentials:
            created = expect(
                await self.identity.post(
                    f"/operator/agencies/{agency}/clients",
                    json={"name": f"{self.instance} ({agency})", "scopes": list(key[1])},
                    headers={"authorization": f"Bearer {self.operator_token}"},
                ),
                201,
            )
            self._credentials[key] = (created["client_id"], created["client_secret"])
        client_id, secret = self._credentials[key]
        issued = expect(
            await self.identity.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "scope": " ".join(key[1])},
                auth=(client_id, secret),
            ),
            200,
        )
        token = str(issued["access_token"])
        lifetime = float(issued.get("expires_in", 300))
        self._tokens[key] = (token, time.monotonic() + max(lifetime - 30, lifetime / 2))
        return token

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"}


# -- the register ---------------------------------------------------------------------------


def service_entry(agency: str, service_id: str) -> dict[str, Any]:
    """The catalog entry of a simulated service: every channel, so every simulated
    delivery's channel is one it offers."""
    name = service_id.split(".", 1)[1].replace("-", " ")
    return {
        "service_id": service_id,
        "title_fa": f"خدمت شبیه‌سازی‌شده {name}",
        "title_en": f"Simulated service: {name}",
        "description_fa": "خدمتی که شبیه‌ساز ترافیک برای نمایش داشبورد ارائه می‌کند.",
        "description_en": "A service the traffic simulator delivers so the dashboard moves.",
        "category": agency,
        "audiences": ["citizens"],
        "channels": ["online", "pishkhan", "in_person"],
        "maturity": 4,
        "data_needs": [],
    }


async def register_services(
    operator: Operator,
    catalog: httpx.AsyncClient,
    services: Iterable[tuple[str, str]],
    readiness: Readiness,
    stopping: asyncio.Event,
) -> list[tuple[str, str]]:
    """Draft and publish each service under its agency; an existing one is fine.

    Returns the services that are published (all of them unless stopped first).
    """
    published: list[tuple[str, str]] = []
    for agency, service_id in services:

        async def publish_one(agency: str = agency, service_id: str = service_id) -> bool:
            token = await operator.agency_token(agency, ["catalog:write"])
            headers = Operator.bearer(token)
            expect(
                await catalog.post(
                    "/services", json=service_entry(agency, service_id), headers=headers
                ),
                201,
                409,
            )
            answer = await catalog.post(f"/services/{service_id}/publish", headers=headers)
            if answer.status_code == 409:
                # Already published is fine; anything else (retired) is not ours to use.
                page = expect(await catalog.get(f"/services/{service_id}"), 200)
                if page.get("status") != "published":
                    raise NotReady(f"{service_id} is {page.get('status')}")
            else:
                expect(answer, 200)
            return True

        if await retrying("register_catalog", publish_one, readiness, stopping):
            published.append((agency, service_id))
    if published:
        readiness.working("register_catalog")
        log.info("simulated services published", services=[s for _, s in published])
    return published


# -- citizens -------------------------------------------------------------------------------

FIRST_NAMES = ("علی", "زهرا", "محمد", "فاطمه", "حسین", "مریم", "رضا", "سارا", "مهدی", "نرگس")
LAST_NAMES = ("احمدی", "محمدی", "حسینی", "رضایی", "کریمی", "موسوی", "جعفری", "صادقی")
CODE_PATTERN = re.compile(r"(?<![0-9])([0-9]{4,8})(?![0-9])")
# Identity sends a citizen a new code at most once a minute (its default).
CODE_RESEND_SECONDS = 65.0


def national_id(rng: random.Random) -> str:
    """A valid national ID: nine digits and their check digit (weights 10 down to 2)."""
    while True:
        first = f"{rng.randrange(10**9):09d}"
        remainder = sum(int(d) * (10 - i) for i, d in enumerate(first)) % 11
        candidate = first + str(remainder if remainder < 2 else 11 - remainder)
        if len(set(candidate)) > 1:
            return candidate


def mobile_of(national: str) -> str:
    """The simulated citizen's mobile, derived from the national ID so a restarted
    simulator finds the same one; never ending in 0000 (somebody else's to the operator)."""
    digits = f"{int(national) * 7919 % 10**9:09d}"
    if digits.endswith("0000"):
        digits = digits[:-1] + "1"
    return "+989" + digits


@dataclass
class Citizen:
    national_id: str
    mobile: str
    province: str
    registered: bool = False
    last_code_at: float = float("-inf")
    refresh_token: str | None = None


def new_citizen(rng: random.Random, provinces: Sequence[str], weights: Sequence[float]) -> Citizen:
    national = national_id(rng)
    return Citizen(national, mobile_of(national), rng.choices(provinces, weights=weights)[0])


def code_in(text: str) -> str | None:
    found = CODE_PATTERN.search(to_ascii_digits(text))
    return found.group(1) if found else None


class Phones:
    """The simulated citizens' phones: one-time codes the development SMS gateway delivers
    on `development.phones`."""

    def __init__(self, kafka: KafkaAccess, client_id: str) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self._kafka.client_options(),
            client_id=self._client_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            topic = Topic.DEVELOPMENT_PHONES.value
            # A producer waits for the topic's metadata, as the exchange client does.
            producer = new_producer(self._kafka, client_id=self._client_id)
            await producer.start()
            try:
                partitions = await producer.partitions_for(topic)
            finally:
                await producer.stop()
            if not partitions:
                raise NotReady(f"topic {topic} has no partitions yet")
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:
                # Resolve now: a code sent after start() must not be skipped.
                await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._reader = asyncio.create_task(self._read(), name="simulator-phones")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._consumer is not None:
            await self._consumer.stop()

    def expect_code(self, mobile: str) -> asyncio.Future[str]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[mobile] = future
        return future

    def forget(self, mobile: str) -> None:
        self._waiting.pop(mobile, None)

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    self._take(record.value)

    def _take(self, value: bytes | None) -> None:
        try:
            message = decode(value, Topic.DEVELOPMENT_PHONES).payload
        except UndecodableEvent as error:
            log.warning("unreadable text message skipped", reason=error.reason)
            return
        if not isinstance(message, SmsDelivered):
            return
        future = self._waiting.get(message.mobile)
        code = code_in(message.text)
        if future is not None and not future.done() and code is not None:
            future.set_result(code)


class CitizensAtTheWindow:
    """Citizens who register, receive a one-time code on their phone and sign in, and
    sometimes refresh their session, through identity's HTTP API."""

    ADAPTER = "sign_in"

    def __init__(
        self,
        identity: httpx.AsyncClient,
        phones: Phones,
        provinces: Mapping[str, float],
        readiness: Readiness,
        *,
        concurrency: int = 20,
        refresh_share: float = 0.2,
        code_wait_seconds: float = 20.0,
    ) -> None:
        self._identity = identity
        self._phones = phones
        self._provinces = list(provinces)
        self._weights = list(provinces.values())
        self._readiness = readiness
        self._tasks = Tasks(concurrency)
        self._refresh_share = refresh_share
        self._code_wait = code_wait_seconds
        self.citizens: list[Citizen] = []
        self.signed_in = 0
        self.refreshed = 0
        self.ready = False

    async def set_up(self, stopping: asyncio.Event) -> bool:
        """Start reading the phones' text messages, retried until Kafka has the topic."""
        started = await retrying(self.ADAPTER, self._start_phones, self._readiness, stopping)
        self.ready = bool(started)
        return self.ready

    async def _start_phones(self) -> bool:
        await self._phones.start()
        return True

    async def act(self, rng: random.Random, now: datetime) -> None:
        """Start one sign-in (or refresh) in the background; returns at once; skipped
        until `set_up` is done."""
        if not self.ready:
            return
        with_session = [c for c in self.citizens if c.refresh_token]
        if with_session and rng.random() < self._refresh_share:
            self._tasks.spawn(self._refresh(rng.choice(with_session)))
            return
        idle = time.monotonic() - CODE_RESEND_SECONDS
        ready = [c for c in self.citizens if c.last_code_at < idle]
        citizen = rng.choice(ready) if ready else None
        if citizen is None:
            citizen = new_citizen(rng, self._provinces, self._weights)
            self.citizens.append(citizen)
        citizen.last_code_at = time.monotonic()
        self._tasks.spawn(self._sign_in(rng, citizen))

    async def stop(self) -> None:
        await self._tasks.cancel()
        await self._phones.stop()

    async def _sign_in(self, rng: random.Random, citizen: Citizen) -> None:
        try:
            if not citizen.registered:
                await self._register(rng, citizen)
            code = self._phones.expect_code(citizen.mobile)
            try:
                expect(
                    await self._identity.post(
                        "/citizens/sign-in/code", json={"national_id": citizen.national_id}
                    ),
                    202,
                )
                sent = await asyncio.wait_for(code, self._code_wait)
            finally:
                self._phones.forget(citizen.mobile)
            channel = rng.choices(["web", "mobile_app", "pishkhan"], weights=[5, 4, 1])[0]
            session = expect(
                await self._identity.post(
                    "/citizens/sign-in",
                    json={"national_id": citizen.national_id, "code": sent, "channel": channel},
                ),
                200,
            )
        except (NotReady, httpx.HTTPError, OSError, TimeoutError) as error:
            self._readiness.waiting(self.ADAPTER, str(error)[:300] or type(error).__name__)
            log.warning("simulated sign-in failed", reason=str(error)[:300])
            return
        except Exception as error:  # an unexpected failure must not end the simulation
            self._readiness.waiting(self.ADAPTER, repr(error)[:300])
            log.warning("simulated sign-in failed", reason=repr(error)[:300])
            return
        citizen.refresh_token = session.get("refresh_token")
        self.signed_in += 1
        self._readiness.working(self.ADAPTER)

    async def _register(self, rng: random.Random, citizen: Citizen) -> None:
        year = rng.randint(1330, 1385)
        expect(
            await self._identity.post(
                "/citizens",
                json={
                    "national_id": citizen.national_id,
                    "mobile": citizen.mobile,
                    "first_name": rng.choice(FIRST_NAMES),
                    "last_name": rng.choice(LAST_NAMES),
                    "birth_date": f"{year}/{rng.randint(1, 12):02d}/{rng.randint(1, 29):02d}",
                    "calendar": "jalali",
                    "province": citizen.province,
                },
            ),
            201,
            409,  # registered by an earlier run: the same national ID keeps the same mobile
        )
        citizen.registered = True

    async def _refresh(self, citizen: Citizen) -> None:
        presented, citizen.refresh_token = citizen.refresh_token, None
        try:
            session = expect(
                await self._identity.post(
                    "/oauth/token",
                    data={"grant_type": "refresh_token", "refresh_token": presented or ""},
                ),
                200,
            )
        except (NotReady, httpx.HTTPError, OSError) as error:
            log.warning("simulated refresh failed", reason=str(error)[:300])
            return
        except Exception as error:  # an unexpected failure must not end the simulation
            log.warning("simulated refresh failed", reason=repr(error)[:300])
            return
        citizen.refresh_token = session.get("refresh_token")
        self.refreshed += 1


# -- the exchange ---------------------------------------------------------------------------

PROVIDER = "civil-registration"
CONSUMER = "social-security"
ADMINISTRATOR = "ito"
DATA_SERVICE = "civil-registration.vital-status"
PURPOSE = "benefit-eligibility"


def data_service_terms() -> dict[str, Any]:
    return {
        "data_service": DATA_SERVICE,
        "version": 1,
        "name_fa": "وضعیت حیات",
        "name_en": "Vital status",
        "request_schema": {
            "type": "object",
            "properties": {"citizen": {"type": "string"}},
            "required": ["citizen"],
        },
        "response_schema": {
            "type": "object",
            "properties": {"alive": {"type": "boolean"}},
            "required": ["alive"],
        },
        "timeout_ms": 10_000,
        "purposes": [PURPOSE],
        "personal_data": True,
    }


AgencyCredentials = Callable[[str], KafkaAccess]
"""An agency's own access to the broker (its channel), by code; NotReady until issued."""


def issued_credentials(folder: Path) -> AgencyCredentials:
    """Credentials the platform issued agencies, as files `agency-<code>.properties`."""

    def of(agency: str) -> KafkaAccess:
        path = folder / f"{agency_principal(agency)}.properties"
        if not path.exists():
            raise NotReady(f"no credentials issued to {agency} yet")
        return KafkaAccess.read(path)

    return of


class AgenciesOnTheExchange:
    """A provider (civil registration) answering vital-status requests and a consumer
    (social security) asking them, each with its own ES256 key registered with identity
    and its own credentials, through the agency package."""

    ADAPTER = "request_data"

    def __init__(
        self,
        operator: Operator,
        exchange: httpx.AsyncClient,
        credentials: AgencyCredentials,
        readiness: Readiness,
        *,
        refuse_share: float = 0.05,
        concurrency: int = 200,
        timeout_seconds: float = 15.0,
    ) -> None:
        self._operator = operator
        self._exchange = exchange
        self._credentials = credentials
        self._readiness = readiness
        self._refuse_share = refuse_share
        self._tasks = Tasks(concurrency)
        self._timeout = timeout_seconds
        self._keys: dict[str, tuple[ECKey, str]] = {}
        self._worker: ProviderWorker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._client: ExchangeClient | None = None
        self._refusals = random.Random()
        self.outcomes: dict[str, int] = {}

    async def set_up(self, stopping: asyncio.Event) -> bool:
        """Keys, the data service, the right, the provider's worker and the consumer's
        client, each step retried until done. False if stopped first."""

        def step(call: Callable[[], Awaitable[T]]) -> Awaitable[T | None]:
            return retrying(self.ADAPTER, call, self._readiness, stopping)

        for agency in (PROVIDER, CONSUMER):
            if await step(functools.partial(self._register_key, agency)) is None:
                return False
        if await step(self._register_data_service) is None:
            return False
        if await step(self._grant) is None:
            return False
        issued: dict[str, KafkaAccess] = {}
        for agency in (PROVIDER, CONSUMER):
            access = await step(functools.partial(self._issued, agency))
            if access is None:
                return False
            issued[agency] = access
        exchange_keys = ExchangeKeys(str(self._exchange.base_url))
        key, kid = self._keys[PROVIDER]
        self._worker = ProviderWorker(
            issued[PROVIDER],
            PROVIDER,
            key,
            kid,
            {DATA_SERVICE: self._answer},
            exchange_keys=exchange_keys,
        )
        self._worker_task = asyncio.create_task(self._worker.run(), name="simulator-provider")
        key, kid = self._keys[CONSUMER]
        client = ExchangeClient(issued[CONSUMER], CONSUMER, key, kid, exchange_keys=exchange_keys)
        if await step(lambda: self._start_client(client)) is None:
            return False
        self._client = client
        self._readiness.working(self.ADAPTER)
        log.info("simulated agencies on the exchange", data_service=DATA_SERVICE)
        return True

    async def act(self, rng: random.Random, now: datetime) -> None:
        """Send one request in the background; skipped while not set up."""
        if self._client is None:
            return
        citizen = f"{rng.getrandbits(256):064x}"
        self._tasks.spawn(self._request(self._client, citizen))

    async def stop(self) -> None:
        await self._tasks.cancel()
        if self._client is not None:
            await self._client.stop()
        if self._worker is not None and self._worker_task is not None:
            await self._worker.stop()
            await asyncio.gather(self._worker_task, return_exceptions=True)

    async def _register_key(self, agency: str) -> bool:
        if agency in self._keys:
            return True
        key = generate_key()
        kid = f"{agency}-simulator-{uuid.uuid4().hex[:8]}"
        token = await self._operator.agency_token(agency, ["identity:agency-keys"])
        expect(
            await self._operator.identity.post(
                "/agency-keys",
                json={"jwk": public_jwk(key), "kid": kid},
                headers=Operator.bearer(token),
            ),
            201,
        )
        self._keys[agency] = (key, kid)
        return True

    async def _register_data_service(self) -> bool:
        token = await self._operator.agency_token(
            PROVIDER, ["exchange:request", "exchange:provide"]
        )
        expect(
            await self._exchange.post(
                "/data-services", json=data_service_terms(), headers=Operator.bearer(token)
            ),
            201,
        )
        return True

    async def _grant(self) -> bool:
        token = await self._operator.agency_token(ADMINISTRATOR, ["exchange:admin"])
        expect(
            await self._exchange.post(
                "/access-rights",
                json={
                    "consumer": CONSUMER,
                    "data_service": DATA_SERVICE,
                    "purposes": [PURPOSE],
                    "legal_basis": "قانون تأمین اجتماعی، ماده ۳۶ (simulated)",
                    "valid_from": datetime.now(UTC).isoformat(),
                },
                headers=Operator.bearer(token),
            ),
            201,
        )
        return True

    async def _issued(self, agency: str) -> KafkaAccess:
        return self._credentials(agency)

    async def _start_client(self, client: ExchangeClient) -> bool:
        await client.start()
        return True

    async def _answer(self, request: DataRequestForwarded) -> dict[str, Any]:
        if self._refusals.random() < self._refuse_share:
            raise RefuseRequest("the record is under review (simulated refusal)")
        return {"alive": True}

    async def _request(self, client: ExchangeClient, citizen: str) -> None:
        try:
            await client.request(
                DATA_SERVICE, PURPOSE, {"citizen": citizen}, citizen=citizen, timeout=self._timeout
            )
            outcome = "answered"
        except ExchangeError as error:
            outcome = type(error).__name__.lower()
            if outcome != "refused":
                log.warning(
                    "simulated exchange request not answered",
                    outcome=outcome,
                    reason=error.reason[:200],
                )
        except Exception as error:  # a broker hiccup must not end the simulation
            outcome = "error"
            log.warning("simulated exchange request failed", error=repr(error)[:300])
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
