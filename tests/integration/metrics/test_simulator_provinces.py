"""A simulated directorate's weekly report through the real doors: identity creates the
directorate's client holding `programme:report` and issues its token, and the metrics
service, trusting identity's published key, accepts the report for the directorate's own
province, on the real broker and database.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx
import pytest

from services.identity.bootstrap import build as build_identity
from services.identity.settings import IdentitySettings
from services.metrics.bootstrap import build as build_metrics
from services.metrics.domain.provincial_reports import sample_weeks
from services.metrics.settings import MetricsSettings
from shared.db import Pool, apply_migrations
from shared.events.catalog import AgencyRecorded
from shared.kafka_access import KafkaAccess
from shared.runtime import Runtime
from simulator.actors import NotReady, Operator, Readiness
from simulator.provinces import ProvincialDirectorates
from tests.integration.exchange.helpers import announce

pytestmark = pytest.mark.integration

ISSUER = "http://identity.test"
OPERATOR = "simulator-provinces-operator-token"
PROVINCE = "IR-26"
DIRECTORATE = "ict-ir-26"


@dataclass
class Doors:
    identity: httpx.AsyncClient
    metrics: httpx.AsyncClient
    metrics_pool: Pool


@pytest.fixture(scope="module")
async def doors(
    credentials_file: Callable[[str], str],
    database_urls: Mapping[str, str],
    admin_database_url: str,
) -> AsyncIterator[Doors]:
    await apply_migrations(admin_database_url, "identity")
    identity_app = build_identity(
        IdentitySettings(
            kafka_credentials_file=credentials_file("identity"),
            sms_gateway_credentials_file=credentials_file("sms-gateway"),
            database_url=database_urls["identity"],
            key_publish_ahead_seconds=0,
            operator_token=OPERATOR,
            issuer=ISSUER,
        )
    )
    metrics_app = build_metrics(
        MetricsSettings(
            kafka_credentials_file=credentials_file("metrics"),
            database_url=database_urls["metrics"],
            token_issuer=ISSUER,
        ).model_copy(update={"load_reference_when_empty": False})
    )
    async with (
        identity_app.router.lifespan_context(identity_app),
        metrics_app.router.lifespan_context(metrics_app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=identity_app), base_url=ISSUER
        ) as identity,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=metrics_app), base_url="http://metrics"
        ) as metrics,
    ):
        runtime: Runtime = metrics_app.state.runtime
        yield Doors(identity, metrics, runtime.pool)


async def test_a_directorates_report_goes_through_identity_and_the_metrics_api(
    doors: Doors, kafka_admin: KafkaAccess
) -> None:
    directorate = AgencyRecorded(
        code=DIRECTORATE,
        name_fa="اداره کل ارتباطات و فناوری اطلاعات استان خراسان شمالی",
        name_en="Directorate General of ICT, North Khorasan Province",
        ministry_fa="وزارت ارتباطات و فناوری اطلاعات",
        ministry_en="Ministry of ICT",
        province=PROVINCE,
        window_connected_since=None,
        exchange_connected_since=date(2024, 1, 1),
        active=True,
        revision=1,
    )
    await announce(kafka_admin, (directorate, DIRECTORATE))
    pool = doors.metrics_pool
    await pool.execute("DELETE FROM provincial_reports WHERE province = $1", PROVINCE)
    now = datetime.now(UTC)
    week = sample_weeks(now)[-1]
    directorates = ProvincialDirectorates(
        Operator(doors.identity, OPERATOR, "simulator-tests"),
        doors.metrics,
        Readiness(),
        random.Random(5),
        lambda: now,
    )

    # Identity must have read the agency, and the metrics service identity's key.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    waiting = ""
    while loop.time() < deadline:
        try:
            await directorates.report(PROVINCE, week)
        except NotReady as not_yet:
            waiting = str(not_yet)
            await asyncio.sleep(0.5)
        else:
            break
    else:
        pytest.fail(f"the report never went through: {waiting}")

    assert directorates.readiness.is_working("report_provinces")
    row = await pool.fetchrow(
        "SELECT revision, submitted_by, figures FROM provincial_reports"
        " WHERE province = $1 AND week = $2",
        PROVINCE,
        week,
    )
    assert row is not None
    assert (row["revision"], row["submitted_by"]) == (1, DIRECTORATE)
    assert set(row["figures"]) >= {"villages_connected", "coverage_4g_share"}

    # Another province's report with this directorate's token is refused.
    token = await directorates.operator.agency_token(DIRECTORATE, ["programme:report"])
    other = await doors.metrics.put(
        f"/api/provinces/IR-27/reports/{week}",
        json={"figures": {"coverage_4g_share": 50}},
        headers=Operator.bearer(token),
    )
    assert other.status_code == 403
    assert other.json()["code"] == "not_provinces_directorate"
