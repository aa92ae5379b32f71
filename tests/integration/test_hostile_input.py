"""What a hostile client sends to the real services: refused with a 4xx, never a 500.

Each service runs whole, in-process, on the real broker and database. A NUL in a query
string used to reach PostgreSQL (which cannot store NUL in text) and come back as a 500;
the door every service shares refuses it, and every other input no service can store or
read exactly, before a route runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.exchange.bootstrap import build as build_exchange
from services.exchange.settings import ExchangeSettings
from services.metrics.bootstrap import build as build_metrics
from services.metrics.settings import MetricsSettings
from shared.messages import MESSAGES

pytestmark = pytest.mark.integration


async def running(app: FastAPI, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


@pytest.fixture(scope="module")
async def exchange(
    credentials_file: Callable[[str], str], database_urls: Mapping[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ExchangeSettings(
        kafka_credentials_file=credentials_file("exchange"),
        database_url=database_urls["exchange"],
        token_issuer="https://identity.hostile-input-tests",
    )
    async for client in running(build_exchange(settings), "http://exchange"):
        yield client


@pytest.fixture(scope="module")
async def metrics(
    credentials_file: Callable[[str], str], database_urls: Mapping[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = MetricsSettings(
        kafka_credentials_file=credentials_file("metrics"), database_url=database_urls["metrics"]
    )
    async for client in running(build_metrics(settings), "http://metrics"):
        yield client


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["messages"] == MESSAGES[code]
    return body


async def test_a_nul_in_the_exchanges_provider_filter_is_a_400(
    exchange: httpx.AsyncClient,
) -> None:
    response = await exchange.get("/data-services?provider=%00abc")
    assert_problem(response, 400, "invalid_characters")
    assert (await exchange.get("/data-services?provider=nobody")).status_code == 200


async def test_a_nul_in_the_metrics_prefix_is_a_400(metrics: httpx.AsyncClient) -> None:
    assert_problem(await metrics.get("/api/metrics?prefix=%00%C2%AA"), 400, "invalid_characters")
    assert (await metrics.get("/api/metrics?prefix=exchange.")).status_code == 200


async def test_an_encoded_surrogate_in_a_query_string_is_a_400(metrics: httpx.AsyncClient) -> None:
    response = await metrics.get("/api/metrics?metric=%ED%A0%80")
    assert_problem(response, 400, "invalid_characters")


async def test_a_body_over_the_limit_is_a_413_on_a_route_behind_authentication(
    exchange: httpx.AsyncClient,
) -> None:
    body = b'{"data_service": "' + b"a" * (1024 * 1024) + b'"}'
    response = await exchange.post(
        "/data-services",
        content=body,
        headers={"content-type": "application/json", "accept-language": "en"},
    )
    problem = assert_problem(response, 413, "request_too_large")
    assert problem["title"] == MESSAGES["request_too_large"]["en"]


async def test_a_body_with_numbers_json_cannot_carry_is_refused_before_authentication(
    exchange: httpx.AsyncClient,
) -> None:
    for number in (b"9007199254740993", b"NaN", b"1e999"):
        response = await exchange.post(
            "/data-services",
            content=b'{"timeout_ms": ' + number + b"}",
            headers={"content-type": "application/json"},
        )
        assert_problem(response, 422, "inexact_number")


async def test_oversized_headers_and_addresses_are_refused(metrics: httpx.AsyncClient) -> None:
    huge = {"x-padding": "p" * (20 * 1024)}
    assert_problem(await metrics.get("/api/metrics", headers=huge), 431, "headers_too_large")
    long_query = "/api/metrics?prefix=" + "e" * (9 * 1024)
    assert_problem(await metrics.get(long_query), 414, "uri_too_long")
