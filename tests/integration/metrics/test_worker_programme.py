"""The worker turns the programme register and live figures into each target's progress on
`metrics.programme` (real broker, real worker process)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from shared.envelope import Envelope
from shared.events.programme import IndicatorRecorded, ObservationRecorded, TargetRecorded
from shared.kafka import publish
from shared.kafka_access import KafkaAccess
from shared.topics import Topic
from tests.integration.metrics import events
from tests.integration.metrics.worker_process import WorkerProcess, latest_figures

pytestmark = pytest.mark.integration

BY = "operator:test"


@pytest.fixture(scope="module")
def worker(
    kafka_as: Callable[[str], KafkaAccess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One worker for the module: each test's register entries have codes of their own."""
    process = WorkerProcess(kafka_as("metrics-worker"), tmp_path_factory.mktemp("programme"))
    process.start()
    yield process
    process.stop()


def _indicator(code: str, **fields: Any) -> Envelope[Any]:
    payload = IndicatorRecorded.model_validate(
        {
            "code": code,
            "name_fa": "شاخص آزمایشی",
            "name_en": "A test indicator",
            "definition_fa": "برای آزمون",
            "definition_en": "For tests",
            "unit": "percent",
            "direction": "increase",
            "revision": 1,
            "changed_by": BY,
            **fields,
        }
    )
    return Envelope.wrap(payload, source="metrics", subject=code)


def _target(target_id: str, indicator: str, **fields: Any) -> Envelope[Any]:
    payload = TargetRecorded.model_validate(
        {
            "target_id": target_id,
            "indicator": indicator,
            "scope": "national",
            "baseline_value": 10.0,
            "baseline_date": "1404-01-01",
            "target_value": 100.0,
            "deadline": "1409-12-29",
            "basis_fa": "هدف آزمایشی",
            "basis_en": "A test target",
            "citation": "tests",
            "active": True,
            "revision": 1,
            "changed_by": BY,
            **fields,
        }
    )
    return Envelope.wrap(payload, source="metrics", subject=target_id)


def _observation(indicator: str, value: float, revision: int) -> Envelope[Any]:
    payload = ObservationRecorded(
        indicator=indicator,
        scope="national",
        scope_code=None,
        observed_on="1405-01-01",
        value=value,
        source_fa="گزارش آزمایشی",
        source_en="A test report",
        citation="tests",
        reported_by=BY,
        revision=revision,
    )
    return Envelope.wrap(payload, source="metrics", subject=payload.record_key())


async def _progress_of(
    kafka: KafkaAccess, target_id: str, field: str, expected: object, timeout: float = 90.0
) -> dict[str, Any] | None:
    """The target's latest progress once `field` has the expected value (or at timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        progress = (await latest_figures(kafka, Topic.METRICS_PROGRAMME.value)).get(target_id)
        if (progress is not None and progress[field] == expected) or loop.time() > deadline:
            return progress
        await asyncio.sleep(1.0)


async def test_a_live_indicators_target_follows_the_figures_the_worker_computes(
    kafka_admin: KafkaAccess, producer: AIOKafkaProducer, worker: WorkerProcess
) -> None:
    agency = events.unique_agency("prog")
    code = f"smart_{uuid.uuid4().hex[:10]}"
    target_id = f"test.{code}"
    await publish(
        producer,
        _indicator(
            code,
            source="live",
            live_metric="adoption.smart_share",
            live_window="all_time",
            live_scale=100,
        ),
    )
    await publish(producer, _target(target_id, code, scope="agency", scope_code=agency))
    for number, maturity in enumerate((5, 5, 3, 1)):
        await publish(producer, events.service(agency, number, maturity=maturity))  # type: ignore[arg-type]

    progress = await _progress_of(kafka_admin, target_id, "current_value", 50.0)

    assert progress is not None
    assert progress["current_value"] == 50.0
    assert progress["scope_code"] == agency
    assert progress["progress"] == pytest.approx(40 / 90)
    assert progress["indicator_name_en"] == "A test indicator"
    assert progress["status"] in {"on_track", "at_risk", "behind"}


async def test_a_reported_figure_and_its_correction_move_a_target(
    kafka_admin: KafkaAccess, producer: AIOKafkaProducer, worker: WorkerProcess
) -> None:
    code = f"reported_{uuid.uuid4().hex[:10]}"
    target_id = f"test.{code}"
    await publish(producer, _indicator(code, source="reported"))
    await publish(producer, _target(target_id, code))
    await publish(producer, _observation(code, 30.0, revision=1))
    first = await _progress_of(kafka_admin, target_id, "current_value", 30.0)

    await publish(producer, _observation(code, 35.0, revision=2))
    # A redelivered older revision changes nothing.
    await publish(producer, _observation(code, 30.0, revision=1))
    corrected = await _progress_of(kafka_admin, target_id, "current_value", 35.0)
    await asyncio.sleep(3)
    settled = (await latest_figures(kafka_admin, Topic.METRICS_PROGRAMME.value))[target_id]

    assert first is not None
    assert first["current_value"] == 30.0
    assert first["current_as_of"] == "1405-01-01"
    assert corrected is not None
    assert corrected["current_value"] == 35.0
    assert settled["current_value"] == 35.0
    assert [point["day"] for point in settled["series"]] == ["1404-01-01", "1405-01-01"]


async def test_a_withdrawn_target_is_no_longer_published(
    kafka_admin: KafkaAccess, producer: AIOKafkaProducer, worker: WorkerProcess
) -> None:
    code = f"withdrawn_{uuid.uuid4().hex[:10]}"
    kept, withdrawn = f"test.{code}.kept", f"test.{code}.withdrawn"
    await publish(producer, _indicator(code, source="reported"))
    await publish(producer, _target(withdrawn, code, active=False))
    await publish(producer, _target(kept, code))

    published = await _progress_of(kafka_admin, kept, "status", "no_data")
    latest = await latest_figures(kafka_admin, Topic.METRICS_PROGRAMME.value)

    assert published is not None
    assert published["status"] == "no_data"
    assert withdrawn not in latest
