"""How many citizens identity signs in per second, and how many tokens a service verifies.

Runs identity in this one process (its HTTP app, outbox relay and consumers) against a
real Kafka and PostgreSQL: those named by PANJEREH_KAFKA_BOOTSTRAP_SERVERS and
PANJEREH_DATABASE_URL, or else the test infrastructure of PANJEREH_TEST_SLOT, started if
needed. Prints the figures and their ratio to the floor: the window serves 3 million
people a day; with a tenfold peak hour that is 3e6 / 24 * 10 / 3600 ≈ 347 sign-ins a
second.

    PANJEREH_TEST_SLOT=1 .venv/bin/python benchmarks/identity_bench.py --citizens 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.identity.bootstrap import build  # noqa: E402
from services.identity.domain.citizens import national_id_check_digit  # noqa: E402
from services.identity.settings import IdentitySettings  # noqa: E402
from shared.auth import IssuerKeys  # noqa: E402
from shared.db import apply_migrations  # noqa: E402
from shared.events.identity import SmsRequested  # noqa: E402
from shared.registry import decode  # noqa: E402
from shared.topics import Topic  # noqa: E402

PEOPLE_A_DAY = 3_000_000
PEAK_FACTOR = 10
FLOOR_PER_SECOND = PEOPLE_A_DAY / 24 * PEAK_FACTOR / 3600


def infrastructure() -> tuple[str, str]:
    kafka, database = (
        os.environ.get("PANJEREH_KAFKA_BOOTSTRAP_SERVERS"),
        os.environ.get("PANJEREH_DATABASE_URL"),
    )
    if kafka and database:
        return kafka, database
    from infra.platform import LocalPlatform
    from tests.slots import SLOT, session_ports

    home = REPO / ".data" / ("test" if SLOT == 0 else f"test-{SLOT}")
    platform = LocalPlatform(home=home, ports=session_ports())
    platform.start_infrastructure()
    return platform.kafka_bootstrap, platform.database_url


def progress(step: str) -> None:
    print(f"... {step}", file=sys.stderr, flush=True)


def national_ids(count: int) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        first = f"{random.randrange(10**9):09d}"
        if len(set(first)) > 1:
            found.add(first + str(national_id_check_digit(first)))
    return sorted(found)


async def gather_limited(concurrency: int, jobs: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def run(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(run(job) for job in jobs))


async def codes_from_topic(bootstrap: str, mobiles: set[str]) -> dict[str, str]:
    """The codes the SMS topic carries for these mobiles (the newest per mobile)."""
    from tests.integration.kafka_helpers import read_all

    codes: dict[str, str] = {}

    def collect(records: list[Any]) -> bool:
        for record in records[collect.seen :]:  # type: ignore[attr-defined]
            payload = decode(record.value, Topic.IDENTITY_SMS).payload
            if isinstance(payload, SmsRequested) and payload.mobile in mobiles:
                match = re.search(r"code: (\d{6})", payload.text)
                if match:
                    codes[payload.mobile] = match.group(1)
        collect.seen = len(records)  # type: ignore[attr-defined]
        progress(f"read {len(records)} messages, {len(codes)} codes")
        return len(codes) >= len(mobiles)

    collect.seen = 0  # type: ignore[attr-defined]
    await read_all(bootstrap, Topic.IDENTITY_SMS, until=collect, timeout=120)
    return codes


async def bench(citizens: int, concurrency: int, verifications: int) -> None:
    bootstrap, database = infrastructure()
    await apply_migrations(database, "identity")
    settings = IdentitySettings(
        kafka_bootstrap_servers=bootstrap,
        database_url=database,
        code_resend_seconds=0,
        address_max_failures=10**9,
        sms_gateway="off",
        log_level="WARNING",
    )
    app = build(settings)
    people = national_ids(citizens)
    # One distinct mobile per person (none ending in 0000: the development operator check
    # says those belong to somebody else).
    base = random.randrange(10**6)
    mobiles = {nid: f"+98913{(base + i) % 10**6:06d}1" for i, nid in enumerate(people)}
    progress("infrastructure ready")
    async with app.router.lifespan_context(app):
        progress("service started")
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://identity") as http:
            registrations = [
                http.post(
                    "/citizens",
                    json={
                        "national_id": nid,
                        "mobile": mobiles[nid],
                        "first_name": "علی",
                        "last_name": "محمدی",
                        "birth_date": "1368/02/11",
                        "province": "IR-07",
                    },
                )
                for nid in people
            ]
            began = time.perf_counter()
            answers = await gather_limited(concurrency, registrations)
            registered_in = time.perf_counter() - began
            progress("registered")
            assert all(a.status_code == 201 for a in answers), answers[0].text

            began = time.perf_counter()
            answers = await gather_limited(
                concurrency,
                [http.post("/citizens/sign-in/code", json={"national_id": nid}) for nid in people],
            )
            codes_in = time.perf_counter() - began
            assert all(a.status_code == 202 for a in answers), answers[0].text
            progress("codes requested")
            codes = await codes_from_topic(bootstrap, set(mobiles.values()))
            assert len(codes) == len(people), f"only {len(codes)} codes arrived"

            began = time.perf_counter()
            answers = await gather_limited(
                concurrency,
                [
                    http.post(
                        "/citizens/sign-in",
                        json={"national_id": nid, "code": codes[mobiles[nid]]},
                    )
                    for nid in people
                ],
            )
            signed_in_in = time.perf_counter() - began
            progress("signed in")
            assert all(a.status_code == 200 for a in answers), answers[0].text
            token = answers[0].json()["access_token"]
            jwks = (await http.get("/.well-known/jwks.json")).json()

    progress("service stopped")
    keys = IssuerKeys(bootstrap, issuer=settings.issuer)
    follower = asyncio.create_task(keys.run())
    await asyncio.wait_for(keys.ready.wait(), 30)
    await keys.stop()
    await follower
    keys.verify(token)
    began = time.perf_counter()
    for _ in range(verifications):
        keys.verify(token)
    verified_in = time.perf_counter() - began

    import jwt as pyjwt

    public = pyjwt.PyJWKSet.from_dict(jwks)[pyjwt.get_unverified_header(token)["kid"]].key
    began = time.perf_counter()
    for _ in range(verifications):
        pyjwt.decode(token, public, algorithms=["ES256"], audience="panjereh")
    pyjwt_in = time.perf_counter() - began

    sign_ins = citizens / signed_in_in
    full = citizens / (codes_in + signed_in_in)
    print(f"citizens: {citizens}, concurrency: {concurrency}, one process, real Kafka + Postgres")
    print(f"registrations/s:                      {citizens / registered_in:9.1f}")
    print(f"code requests/s:                      {citizens / codes_in:9.1f}")
    print(f"sign-ins/s (code check + tokens):     {sign_ins:9.1f}")
    print(f"whole sign-ins/s (code request + in): {full:9.1f}")
    print(f"token verifications/s (shared.auth):  {verifications / verified_in:9.1f}")
    print(f"token verifications/s (PyJWT):        {verifications / pyjwt_in:9.1f}")
    print(f"floor: 3M people/day, 10x peak hour = {FLOOR_PER_SECOND:.0f} sign-ins/s")
    print(f"ratio to floor, sign-ins:             {sign_ins / FLOOR_PER_SECOND:9.2f}x")
    print(f"ratio to floor, whole sign-ins:       {full / FLOOR_PER_SECOND:9.2f}x")
    per_second = verifications / verified_in
    print(f"ratio to floor, verifications:        {per_second / FLOOR_PER_SECOND:9.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--citizens", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--verifications", type=int, default=5000)
    arguments = parser.parse_args()
    asyncio.run(bench(arguments.citizens, arguments.concurrency, arguments.verifications))


if __name__ == "__main__":
    main()
