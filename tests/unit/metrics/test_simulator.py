"""The simulator's traffic: plausible deliveries at the configured rates."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.catalog.domain import ServiceEntry, owner_of
from services.identity.domain.citizens import is_valid_national_id, normalise_mobile
from services.metrics.domain.reference import load_reference
from shared.events.catalog import DeliveryReported
from simulator.actors import (
    NotReady,
    Readiness,
    Tasks,
    code_in,
    mobile_of,
    national_id,
    retrying,
    service_entry,
)
from simulator.app import (
    CHANNEL_WEIGHTS,
    SERVICES,
    Pace,
    SimulatorSettings,
    channel_delivery_reports,
    plan_delivery,
)

NOW = datetime(2026, 1, 1, 9, tzinfo=UTC)


def test_deliveries_are_valid_reports_mostly_online_and_weighted_to_populous_provinces() -> None:
    rng, reference = random.Random(1), load_reference()
    reports = [plan_delivery(rng, NOW, reference) for _ in range(2000)]
    channels = Counter(r.channel for r in reports)
    provinces = Counter(r.province for r in reports)
    assert {(r.agency, r.service_id) for r in reports} <= set(SERVICES)
    assert all(r.finished_at == NOW and r.started_at < NOW for r in reports)
    assert 0.65 < channels["online"] / len(reports) < 0.8
    assert provinces["IR-23"] > provinces["IR-16"]  # Tehran over Ilam
    assert len({r.report_id for r in reports}) == len(reports)


def test_pace_carries_fractions_so_the_rate_holds_over_time() -> None:
    pace = Pace(per_second=2.5)
    assert sum(pace.due(0.1) for _ in range(100)) == 25
    assert Pace(per_second=0).due(10) == 0


def test_deliveries_name_only_the_services_given() -> None:
    rng = random.Random(2)
    registered = [SERVICES[0], SERVICES[2]]
    reference = load_reference()
    reports = [plan_delivery(rng, NOW, reference, registered) for _ in range(200)]
    assert {(r.agency, r.service_id) for r in reports} == set(registered)


def test_simulated_services_are_valid_catalog_entries_of_their_agency_on_every_channel() -> None:
    for agency, service_id in SERVICES:
        entry = ServiceEntry.model_validate(service_entry(agency, service_id))
        assert owner_of(entry.service_id) == agency
        assert set(entry.channels) == set(CHANNEL_WEIGHTS)


def test_simulated_citizens_have_valid_national_ids_and_their_own_mobiles() -> None:
    rng = random.Random(4)
    ids = [national_id(rng) for _ in range(500)]
    assert all(is_valid_national_id(n) for n in ids)
    mobiles = [mobile_of(n) for n in ids]
    assert all(normalise_mobile(m) == m for m in mobiles)
    assert not any(m.endswith("0000") for m in mobiles)
    assert mobile_of(ids[0]) == mobiles[0]  # a restarted simulator finds the same phone


def test_the_code_is_read_from_the_text_message_in_any_digits() -> None:
    assert code_in("کد ورود شما به پنجره ملی خدمات: 482913\nYour Panjereh code: 482913") == (
        "482913"
    )
    assert code_in("کد ورود: ۴۸۲۹۱۳") == "482913"
    assert code_in("no code here") is None


async def test_a_step_is_retried_with_backoff_until_it_succeeds() -> None:
    readiness = Readiness()
    attempts: list[int] = []

    async def step() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise NotReady("catalog not up")
        return "done"

    result = await retrying("register_catalog", step, readiness, asyncio.Event(), first_delay=0.01)
    assert result == "done"
    assert len(attempts) == 3
    assert readiness.states["register_catalog"] == "waiting: catalog not up"


async def test_a_retried_step_gives_up_when_the_simulator_stops() -> None:
    stopping = asyncio.Event()

    async def step() -> str:
        stopping.set()
        raise NotReady("identity not up")

    assert await retrying("sign_in", step, Readiness(), stopping, first_delay=0.01) is None


async def test_no_delivery_is_reported_before_a_service_is_registered() -> None:
    sent: list[DeliveryReported] = []

    class Reporter:
        async def report(self, delivery: DeliveryReported) -> None:
            sent.append(delivery)

    class Reporters:
        async def of(self, agency: str) -> Reporter:
            return Reporter()

    registered: list[tuple[str, str]] = []
    report = channel_delivery_reports(Reporters(), load_reference(), registered)
    await report(random.Random(1), NOW)
    assert sent == []
    registered.append(SERVICES[1])
    await report(random.Random(1), NOW)
    assert len(sent) == 1
    assert sent[0].service_id == SERVICES[1][1]


async def test_background_actions_past_the_limit_are_skipped() -> None:
    tasks = Tasks(limit=2)
    gate = asyncio.Event()

    async def wait() -> None:
        await gate.wait()

    assert tasks.spawn(wait())
    assert tasks.spawn(wait())
    assert not tasks.spawn(wait())
    assert tasks.skipped == 1
    await tasks.cancel()


def test_the_simulator_refuses_to_start_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANJEREH_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="refused in production"):
        SimulatorSettings()


def test_the_simulator_reaches_each_service_at_its_given_url_or_this_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PANJEREH_ENVIRONMENT", "development")
    monkeypatch.setenv("PANJEREH_HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("PANJEREH_CATALOG_PORT", "18002")
    monkeypatch.setenv("PANJEREH_SIMULATOR_IDENTITY_URL", "http://identity:8001/")
    settings = SimulatorSettings()
    assert settings.service_url("identity") == "http://identity:8001"
    assert settings.service_url("catalog") == "http://127.0.0.1:18002"
