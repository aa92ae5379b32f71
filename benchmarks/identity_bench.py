"""How many citizens identity signs in per second, and how many tokens a service verifies.

Runs identity as one process, as deployed (uvicorn: its HTTP app, outbox relay and
consumers; its own principal and database role), loaded over HTTP from this process,
against a real Kafka and PostgreSQL: the benchmark's own (`.data/bench-<slot>`, started
if need be) or the running platform of `--home` with identity's role `--database-url`
(see benchmarks/stage.py). The benchmark stands in for the SMS gateway (its principal, its
development key, which opens the sealed codes) and verifies tokens as a service would.
Prints the figures and their ratio to the floor: the window serves 3 million people a day;
with a tenfold peak hour that is 3e6 / 24 * 10 / 3600 ≈ 347 sign-ins a second.

    PANJEREH_TEST_SLOT=1 .venv/bin/python benchmarks/identity_bench.py --citizens 2000

`--smoke` signs in a handful of citizens, to show the benchmark still works.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.stage import (  # noqa: E402
    SHIFT,
    Stage,
    add_arguments,
    fill_sizes,
    run_on_stage,
    write_figures,
)
from services.identity.adapters.sms_gateway import SmsGatewaySettings  # noqa: E402
from services.identity.domain.citizens import national_id_check_digit  # noqa: E402
from shared.auth import IssuerKeys  # noqa: E402
from shared.db import apply_migrations  # noqa: E402
from shared.events.identity import SmsRequested  # noqa: E402
from shared.kafka_access import KafkaAccess  # noqa: E402
from shared.principals import Principal  # noqa: E402
from shared.registry import decode  # noqa: E402
from shared.topics import Topic  # noqa: E402

PEOPLE_A_DAY = 3_000_000
PEAK_FACTOR = 10
FLOOR_PER_SECOND = PEOPLE_A_DAY / 24 * PEAK_FACTOR / 3600


def progress(step: str) -> None:
    print(f"... {step}", file=sys.stderr, flush=True)


def national_ids(count: int) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        first = f"{random.randrange(10**9):09d}"
        if len(set(first)) > 1:
            found.add(first + str(national_id_check_digit(first)))
    return sorted(found)


async def codes_from_topic(gateway: KafkaAccess, mobiles: set[str]) -> dict[str, str]:
    """The codes the SMS topic carries for these mobiles (the newest per mobile), read and
    opened as the SMS gateway does: its principal, its (development) private key."""
    from tests.integration.kafka_helpers import read_all

    opening_key = SmsGatewaySettings().opening_key
    codes: dict[str, str] = {}

    def collect(records: list[Any]) -> bool:
        for record in records[collect.seen :]:  # type: ignore[attr-defined]
            payload = decode(record.value, Topic.IDENTITY_SMS).payload
            if not isinstance(payload, SmsRequested):
                continue
            content = payload.open(opening_key)
            if content.mobile in mobiles:
                match = re.search(r"code: (\d{6})", content.text)
                if match:
                    codes[content.mobile] = match.group(1)
        collect.seen = len(records)  # type: ignore[attr-defined]
        progress(f"read {len(records)} messages, {len(codes)} codes")
        return len(codes) >= len(mobiles)

    collect.seen = 0  # type: ignore[attr-defined]
    await read_all(gateway, Topic.IDENTITY_SMS, until=collect, timeout=120)
    return codes


@contextlib.contextmanager
def identity_process(
    kafka: dict[str, str], database: str, port: int
) -> Iterator[tuple[str, psutil.Process]]:
    """Identity as it is deployed: its own process (uvicorn), here on `port`."""
    env = {
        **os.environ,
        **kafka,
        "PANJEREH_DATABASE_URL": database,
        "PANJEREH_IDENTITY_PORT": str(port),
        "PANJEREH_IDENTITY_ISSUER": f"http://127.0.0.1:{port}",
        "PANJEREH_IDENTITY_CODE_RESEND_SECONDS": "0",
        "PANJEREH_IDENTITY_ADDRESS_MAX_FAILURES": str(10**9),
        "PANJEREH_IDENTITY_SMS_GATEWAY": "off",
        "PANJEREH_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.identity"], cwd=REPO, env=env, stdin=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("identity did not start")
            time.sleep(0.2)
        yield base, psutil.Process(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def timed_posts(
    http: aiohttp.ClientSession,
    concurrency: int,
    posts: list[tuple[str, dict[str, Any]]],
    cpu: dict[str, float],
    phase: str,
    service: psutil.Process,
) -> tuple[float, list[tuple[int, Any]]]:
    """POST each (path, body) with at most `concurrency` in flight; seconds taken, answers.

    The service's CPU seconds for the phase go into `cpu[phase]`.
    """
    gate = asyncio.Semaphore(concurrency)

    async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with gate, http.post(path, json=body) as answer:
            return answer.status, await answer.json(content_type=None)

    began, used = time.perf_counter(), cpu_seconds(service)
    answers = await asyncio.gather(*(post(path, body) for path, body in posts))
    cpu[phase] = cpu_seconds(service) - used
    return time.perf_counter() - began, answers


def expect(status: int, answers: list[tuple[int, Any]]) -> None:
    wrong = [answer for answer in answers if answer[0] != status]
    assert not wrong, f"{len(wrong)} answers were not {status}, e.g. {wrong[0]}"


async def bench(
    stage: Stage, citizens: int, concurrency: int, verifications: int, port: int
) -> dict[str, float]:
    """Run every phase, print the figures, and return them by name."""
    database = stage.database_url
    assert database is not None
    await apply_migrations(database, "identity")
    people = national_ids(citizens)
    # One distinct mobile per person (none ending in 0000: the development operator check
    # says those belong to somebody else).
    base = random.randrange(10**6)
    mobiles = {nid: f"+98913{(base + i) % 10**6:06d}1" for i, nid in enumerate(people)}
    progress("infrastructure ready")
    cpu: dict[str, float] = {}
    identity = stage.kafka_environment(Principal.IDENTITY)
    with identity_process(identity, database, port) as (url, service):
        progress("identity started")
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(url, connector=connector) as http:
            registered_in, answers = await timed_posts(
                http,
                concurrency,
                [
                    (
                        "/citizens",
                        {
                            "national_id": nid,
                            "mobile": mobiles[nid],
                            "first_name": "علی",
                            "last_name": "محمدی",
                            "birth_date": "1368/02/11",
                            "province": "IR-07",
                        },
                    )
                    for nid in people
                ],
                cpu,
                "register",
                service,
            )
            # A random ID may have been registered by an earlier run on the same database
            # (with another mobile): those people sit this run out.
            registrations = len(answers)
            taken = {nid for nid, (status, _) in zip(people, answers, strict=True) if status == 409}
            expect(201, [answer for answer in answers if answer[0] != 409])
            people = [nid for nid in people if nid not in taken]
            mobiles = {nid: mobiles[nid] for nid in people}
            citizens = len(people)
            progress(f"registered ({len(taken)} IDs were taken already)")
            codes_in, answers = await timed_posts(
                http,
                concurrency,
                [("/citizens/sign-in/code", {"national_id": nid}) for nid in people],
                cpu,
                "code",
                service,
            )
            expect(202, answers)
            progress("codes requested")
            gateway = stage.access(Principal.SMS_GATEWAY)
            codes = await codes_from_topic(gateway, set(mobiles.values()))
            assert len(codes) == len(people), f"only {len(codes)} codes arrived"
            signed_in_in, answers = await timed_posts(
                http,
                concurrency,
                [
                    ("/citizens/sign-in", {"national_id": nid, "code": codes[mobiles[nid]]})
                    for nid in people
                ],
                cpu,
                "sign-in",
                service,
            )
            expect(200, answers)
            progress("signed in")
            tokens = [answer[1]["access_token"] for answer in answers]
            token = tokens[0]
            async with http.get("/.well-known/jwks.json") as answer:
                jwks = await answer.json()

    progress("identity stopped")
    # Verified as a service verifies tokens: its own principal reads identity's keys.
    keys = IssuerKeys(stage.access(Principal.CATALOG), issuer=url)
    follower = asyncio.create_task(keys.run())
    await asyncio.wait_for(keys.ready.wait(), 30)
    await keys.stop()
    await follower
    keys.verify(token)
    # Each citizen's token once: its signature checked, as for a token a service sees
    # first. Then one token again and again: the verifier remembers what it checked.
    began = time.perf_counter()
    for other in tokens[1:]:
        keys.verify(other)
    first_in = time.perf_counter() - began
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
    print(f"citizens: {citizens}, concurrency: {concurrency}")
    print("identity: one process; load: another process; real Kafka + Postgres")
    print(f"registrations/s:                      {registrations / registered_in:9.1f}")
    print(f"code requests/s:                      {citizens / codes_in:9.1f}")
    print(f"sign-ins/s (code check + tokens):     {sign_ins:9.1f}")
    print(f"whole sign-ins/s (code request + in): {full:9.1f}")
    whole_cpu = (cpu["code"] + cpu["sign-in"]) / citizens
    print(f"identity CPU per code request:        {cpu['code'] / citizens * 1000:9.2f} ms")
    print(f"identity CPU per sign-in:             {cpu['sign-in'] / citizens * 1000:9.2f} ms")
    print(f"whole sign-ins per CPU-second:        {1 / whole_cpu:9.1f}")
    first = (len(tokens) - 1) / first_in if len(tokens) > 1 else float("nan")
    print(
        f"token verifications/s (shared.auth):  {verifications / verified_in:9.1f}"
        "  (one token again and again: checked once, then remembered)"
    )
    print(f"first verifications/s (new tokens):   {first:9.1f}  (over {len(tokens) - 1} tokens)")
    print(f"token verifications/s (PyJWT):        {verifications / pyjwt_in:9.1f}")
    print(f"floor: 3M people/day, 10x peak hour = {FLOOR_PER_SECOND:.0f} sign-ins/s")
    print(f"ratio to floor, sign-ins:             {sign_ins / FLOOR_PER_SECOND:9.2f}x")
    print(f"ratio to floor, whole sign-ins:       {full / FLOOR_PER_SECOND:9.2f}x")
    print(f"ratio to floor, per CPU-second:       {1 / whole_cpu / FLOOR_PER_SECOND:9.2f}x")
    per_second = verifications / verified_in
    print(f"ratio to floor, verifications:        {per_second / FLOOR_PER_SECOND:9.2f}x")
    return {
        "citizens": citizens,
        "concurrency": concurrency,
        "registrations_per_s": registrations / registered_in,
        "code_requests_per_s": citizens / codes_in,
        "sign_ins_per_s": sign_ins,
        "whole_sign_ins_per_s": full,
        "cpu_ms_per_code_request": cpu["code"] / citizens * 1000,
        "cpu_ms_per_sign_in": cpu["sign-in"] / citizens * 1000,
        "whole_sign_ins_per_cpu_s": 1 / whole_cpu,
        "repeat_verifications_per_s": per_second,
        "first_verifications_per_s": first,
        "pyjwt_verifications_per_s": verifications / pyjwt_in,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--citizens", type=int, default=None, help="1000 (smoke: 20)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--verifications", type=int, default=None, help="5000 (smoke: 200)")
    parser.add_argument("--port", type=int, default=18901 + SHIFT, help="identity's port")
    add_arguments(parser, database=True)
    arguments = parser.parse_args()
    fill_sizes(arguments, citizens=(1000, 20), verifications=(5000, 200))

    async def run(stage: Stage) -> None:
        figures = await bench(
            stage,
            arguments.citizens,
            arguments.concurrency,
            arguments.verifications,
            arguments.port,
        )
        write_figures(arguments, figures)

    run_on_stage(arguments, "identity", run)


if __name__ == "__main__":
    main()
