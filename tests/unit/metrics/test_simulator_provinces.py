"""The simulated provincial directorates: plausible weekly reports the rules accept, sent
for every week of the sample a province owes, each with its own directorate's token."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime
from typing import Any

import httpx

from services.metrics.domain.provincial_reports import (
    FIGURES,
    WeeklyReport,
    check,
    sample_weeks,
)
from shared.reference.provinces import BY_CODE
from simulator.actors import Operator, Readiness
from simulator.provinces import (
    FIRST_WEEK,
    PUBLISHED_FIRST_WEEK,
    ProvincialDirectorates,
    latest_before,
    plan_report,
)

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
PROJECTS = ["nin-village-connectivity", "nin-fixed-broadband"]


def test_a_provinces_first_week_is_plausible_and_the_same_on_every_run() -> None:
    first = plan_report(random.Random(1), "IR-07", {}, PROJECTS)
    again = plan_report(random.Random(2), "IR-07", {}, PROJECTS)
    assert first == again
    assert set(first["figures"]) == set(FIGURES)
    for code, value in first["figures"].items():
        low, high = FIRST_WEEK[code]
        assert low - 1 <= value <= high + 1
        if FIGURES[code] == "count":
            assert value == int(value)
    assert set(first["projects"]) == set(PROJECTS)
    assert first["reasons"] == {}
    assert plan_report(random.Random(1), "IR-08", {}, PROJECTS) != first


def test_a_year_of_weeks_grows_and_every_week_passes_the_reports_rules() -> None:
    rng = random.Random(7)
    earlier: dict[str, float] = {}
    week = sample_weeks(NOW)[-1]
    falls = 0
    for _ in range(52):
        body = plan_report(rng, "IR-07", earlier, PROJECTS)
        report = WeeklyReport("IR-07", week, body["figures"], body["projects"], body["reasons"])
        check(report, earlier=earlier, assigned_projects=PROJECTS, now=NOW)
        falls += len(body["reasons"])
        earlier = {**body["figures"], **{f"projects.{c}": v for c, v in body["projects"].items()}}
    first = plan_report(random.Random(0), "IR-07", {}, PROJECTS)
    assert earlier["villages_connected"] > first["figures"]["villages_connected"]
    assert falls < 52


def test_the_latest_earlier_figures_are_read_from_the_reports_before_the_week() -> None:
    reports = [
        {"week": "1405-W36", "figures": {"a": 3.0}, "projects": {}},
        {"week": "1405-W35", "figures": {"a": 1.0, "b": 2.0}, "projects": {"p": 10.0}},
        {"week": "1405-W37", "figures": {"a": 9.0}, "projects": {}},
    ]
    assert latest_before(reports, "1405-W37") == {"a": 3.0, "b": 2.0, "projects.p": 10.0}
    assert latest_before(reports, "1405-W35") == {}


Put = tuple[str, str, dict[str, Any]]


async def _catch_up_twice(reported: set[tuple[str, str]]) -> tuple[list[int], list[Put]]:
    """The simulated directorates against a stand-in identity and metrics service where
    `reported` (week, province) are in; how many reports each of two rounds sent, and what."""
    puts: list[Put] = []
    clients: dict[str, str] = {}

    def identity(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/operator/agencies/"):
            agency = request.url.path.split("/")[3]
            assert json.loads(request.content)["scopes"] == ["programme:report"]
            clients[f"{agency}.client"] = agency
            return httpx.Response(201, json={"client_id": f"{agency}.client", "client_secret": "s"})
        authorization = request.headers["authorization"]
        client = base64.b64decode(authorization.split()[1]).decode().split(":")[0]
        return httpx.Response(200, json={"access_token": f"token-of-{clients[client]}"})

    def metrics(request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/")
        if request.method == "GET" and parts[3] == "reports":
            week = parts[4]
            return httpx.Response(
                200,
                json={
                    "provinces": [
                        {
                            "province": code,
                            "status": "reported" if (week, code) in reported else "missing",
                        }
                        for code in BY_CODE
                    ]
                },
            )
        if request.method == "GET":
            return httpx.Response(200, json={"projects": [{"code": "p1"}], "reports": []})
        province, week = parts[3], parts[5]
        puts.append((province, week, json.loads(request.content)))
        assert request.headers["authorization"] == f"Bearer token-of-ict-{province.lower()}"
        reported.add((week, province))
        return httpx.Response(200, json={"outcome": "created"})

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(identity), base_url="http://id") as id_,
        httpx.AsyncClient(transport=httpx.MockTransport(metrics), base_url="http://m") as m,
    ):
        directorates = ProvincialDirectorates(
            Operator(id_, "operator", "tests"), m, Readiness(), random.Random(3), lambda: NOW
        )
        rounds = [await directorates.catch_up(), await directorates.catch_up()]
    return rounds, puts


async def test_each_week_a_province_owes_is_reported_with_its_own_directorates_token() -> None:
    weeks = sample_weeks(NOW)
    rounds, puts = await _catch_up_twice({(weeks[0], "IR-00")})
    # Lorestan waits for its published first week before its later weeks are simulated.
    assert rounds[0] == len(weeks) * (31 - len(PUBLISHED_FIRST_WEEK)) - 1
    assert "IR-15" not in {province for province, _, _ in puts}
    assert (weeks[0], "IR-00") not in {(w, p) for p, w, _ in puts}
    # Oldest week first, and each report names the province's projects.
    assert puts[0][1] == weeks[0]
    assert set(puts[0][2]["projects"]) == {"p1"}
    # Nothing is owed any more: nothing is sent again.
    assert rounds[1] == 0


async def test_lorestans_weeks_after_its_published_one_are_simulated() -> None:
    weeks = sample_weeks(NOW)
    _, puts = await _catch_up_twice({(weeks[0], "IR-15")})
    lorestan = [week for province, week, _ in puts if province == "IR-15"]
    assert lorestan == weeks[1:]
