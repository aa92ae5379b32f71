"""The page of the programme's targets: served in Persian and English with the targets
embedded so that no text can leave its script element, its assets, and (under node) the
pure helpers of its script: numbers, Jalali days, the charts' scales."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.metrics import http
from services.metrics.domain.programme_register import IndicatorDefinition, TargetEntry
from services.metrics.programme_page import programme_page
from services.metrics.use_cases import programme
from shared.events.metrics import ProgressPoint, TargetProgressUpdated
from shared.http import install_problem_handlers
from shared.jalali import jalali_day
from tests.unit.metrics.fakes import FakeProgrammeWork

SCRIPT = resources.files("services.metrics") / "static" / "programme.js"
HOSTILE = "</script><script>alert(1)</script><!--"


class _Connection:
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield


class _Pool:
    """Hands out connections the fake unit of work ignores."""

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[_Connection]:
        yield _Connection()


def _definition(name_en: str) -> IndicatorDefinition:
    return IndicatorDefinition.model_validate(
        {
            "name_fa": "سهم خدمات هوشمند",
            "name_en": name_en,
            "definition_fa": "درصد خدمات هوشمند",
            "definition_en": "Smart services, in percent",
            "unit": "percent",
            "direction": "increase",
            "source": "reported",
        }
    )


def _entry(**changes: Any) -> TargetEntry:
    fields: dict[str, Any] = {
        "indicator": "smart_services_share",
        "scope": "national",
        "baseline_value": 10,
        "baseline_date": "1403-01-01",
        "target_value": 30,
        "deadline": "1403-12-30",
        "basis_fa": "قانون برنامه هفتم توسعه: ۳۰ درصد خدمات هوشمند",
        "basis_en": "7th development plan: 30% of services smart",
        "citation": HOSTILE,
    }
    return TargetEntry.model_validate(fields | changes)


def _progress(target_id: str) -> TargetProgressUpdated:
    return TargetProgressUpdated(
        target_id=target_id,
        indicator="smart_services_share",
        indicator_name_fa="سهم خدمات هوشمند",
        indicator_name_en=HOSTILE,
        unit="percent",
        direction="increase",
        scope="province",
        scope_code="IR-15",
        baseline_value=10,
        baseline_date="1403-01-01",
        target_value=30,
        deadline="1403-12-30",
        current_value=21.5,
        current_as_of="1403-08-10",
        progress=0.575,
        expected_progress=0.61,
        trend_per_year=17.2,
        projected_value=27.9,
        status="at_risk",
        series=[
            ProgressPoint(day="1403-01-01", value=10),
            ProgressPoint(day="1403-08-10", value=21.5),
        ],
        basis_fa="قانون برنامه هفتم توسعه",
        basis_en="7th development plan",
        citation="A2",
        evaluated_on="1403-08-10",
    )


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The metrics routes over an in-memory register: one target the worker has evaluated
    (at risk) and one it has not (no data), their names and citations hostile."""
    work = FakeProgrammeWork()

    async def fill() -> None:
        by = "operator:ito:console"
        await programme.record_indicator(work, "smart_services_share", _definition(HOSTILE), by)
        await programme.record_target(work, "plan7.smart-1403", _entry(), by)
        await programme.record_target(
            work, "plan7.smart-lorestan", _entry(scope="province", scope_code="IR-15"), by
        )
        await programme.project_progress(
            work, _progress("plan7.smart-lorestan"), datetime(2024, 10, 31, tzinfo=UTC)
        )

    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(http.router)
    app.state.runtime = SimpleNamespace(pool=_Pool())
    monkeypatch.setattr(http, "ProgrammeStorage", lambda connection: work)
    asyncio.run(fill())
    with TestClient(app) as test_client:
        yield test_client


def _embedded(page: str, element: str) -> Any:
    found = re.search(
        rf'<script id="{element}" type="application/json">(.*?)</script>', page, re.DOTALL
    )
    assert found is not None, f"no {element} script element"
    return json.loads(found.group(1))


def test_the_page_is_persian_right_to_left_by_default_with_the_targets_embedded(
    client: TestClient,
) -> None:
    response = client.get("/dashboard/programme")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<html lang="fa" dir="rtl">' in page
    assert "<title>پیشرفت اهداف برنامه دولت هوشمند</title>" in page
    assert '<a id="dashboard-link" href="/dashboard?lang=fa">داشبورد زنده</a>' in page
    assert '<script src="/static/programme.js"></script>' in page
    # The same targets as GET /api/programme/targets lists them.
    listed = client.get("/api/programme/targets").json()
    assert _embedded(page, "initial") == listed
    standing = {t["target_id"]: t["status"] for t in listed["targets"]}
    assert standing == {"plan7.smart-1403": "no_data", "plan7.smart-lorestan": "at_risk"}
    assert _embedded(page, "places")["provinces"]["IR-15"] == {"fa": "لرستان", "en": "Lorestan"}


def test_the_english_page_is_left_to_right(client: TestClient) -> None:
    page = client.get("/dashboard/programme", params={"lang": "en"}).text
    assert '<html lang="en" dir="ltr">' in page
    assert "<title>Smart government programme: targets</title>" in page
    assert '<a id="dashboard-link" href="/dashboard?lang=en">Live dashboard</a>' in page
    assert client.get("/dashboard/programme", params={"lang": "de"}).status_code == 422


def test_no_text_in_the_targets_closes_its_script_element(client: TestClient) -> None:
    page = client.get("/dashboard/programme", params={"lang": "en"}).text
    # Three script elements, each closed once: the data's `</script>` is not among them.
    assert page.count("</script>") == 3
    assert "<script>alert" not in page
    assert "<!--" not in page
    names = {t["indicator_name_en"] for t in _embedded(page, "initial")["targets"]}
    citations = {t["citation"] for t in _embedded(page, "initial")["targets"]}
    assert names == {HOSTILE}
    assert HOSTILE in citations


def test_the_template_function_escapes_what_it_embeds() -> None:
    page = programme_page("fa", [{"target_id": "x", "indicator_name_fa": HOSTILE}])
    assert page.count("</script>") == 3
    assert _embedded(page, "initial") == {
        "targets": [{"target_id": "x", "indicator_name_fa": HOSTILE}]
    }


def test_the_script_and_style_are_served_and_nothing_else(client: TestClient) -> None:
    script = client.get("/static/programme.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/api/programme/targets" in script.text
    style = client.get("/static/programme.css")
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    assert client.get("/static/programme.html").status_code == 404


def test_the_pages_link_to_each_other() -> None:
    static = resources.files("services.metrics") / "static"
    assert 'href="/dashboard/programme?lang=$lang"' in (static / "dashboard.html").read_text()
    assert 'href="/dashboard?lang=$lang"' in (static / "programme.html").read_text()


def test_the_script_writes_no_markup_and_handles_no_events_inline() -> None:
    text = SCRIPT.read_text("utf-8")
    assert "innerHTML" not in text
    assert "outerHTML" not in text
    assert "insertAdjacentHTML" not in text
    assert "document.write" not in text
    page = programme_page("en", [])
    assert not re.search(r"\son[a-z]+\s*=", page), "an inline event handler"
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), "a network address"


# -- the script's pure helpers, under node -------------------------------------------------

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def _node(expression: str) -> Any:
    """The JSON value of `expression`, evaluated under node with the script's helpers as `h`."""
    assert NODE is not None
    program = (
        f"const h = require({json.dumps(str(SCRIPT))});\n"
        f"process.stdout.write(JSON.stringify({expression}));"
    )
    done = subprocess.run(
        [NODE, "-e", program], capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(done.stdout)


@needs_node
def test_numbers_read_in_persian_digits_with_millions_and_billions() -> None:
    cases = [
        (8e9, "transactions"),
        (1.5e9, "count"),
        (48e6, "people"),
        (123456, "count"),
        (27.94, "percent"),
        (100, "percent"),
        (None, "percent"),
    ]
    got = _node(
        "[].concat(...['fa', 'en'].map(lang => "
        f"{json.dumps(cases)}.map(c => h.formatValue(c[0], c[1], lang))))"
    )
    assert got == [
        "۸ میلیارد تراکنش",
        "۱٫۵ میلیارد",
        "۴۸ میلیون نفر",
        "۱۲۳٬۴۵۶",
        "۲۷٫۹٪",
        "۱۰۰٪",
        "—",
        "8 billion transactions",
        "1.5 billion",
        "48 million people",
        "123,456",
        "27.9%",
        "100%",
        "—",
    ]
    assert _node(
        "[h.formatJalaliDay('1403-04-03', 'fa'), h.formatJalaliDay('1403-12-30', 'en')]"
    ) == [
        "۳ تیر ۱۴۰۳",
        "30 Esfand 1403",
    ]


@needs_node
def test_jalali_days_are_numbered_as_the_calendar_counts_them() -> None:
    start = date(2016, 3, 1)
    days = [start + timedelta(days=n) for n in range(0, 12 * 366, 5)]
    days += [date(2025, 3, 20), date(2025, 3, 21), date(2029, 3, 20)]  # Esfand 30, Nowruz
    numbers = _node(f"{json.dumps([jalali_day(d) for d in days])}.map(h.jalaliDayNumber)")
    assert {number - day.toordinal() for number, day in zip(numbers, days, strict=True)} == {
        1721425
    }


@needs_node
def test_value_axes_have_round_ticks_covering_the_values() -> None:
    assert _node("h.niceScale(91, 100, 4).ticks") == [90, 92.5, 95, 97.5, 100]
    assert _node("h.niceScale(88, 100, 4).ticks") == [85, 90, 95, 100]
    # Non-negative values starting low enough start at zero.
    assert _node("h.niceScale(1.5e9, 13.2e9, 4).ticks") == [0, 5e9, 10e9, 15e9]
    one = _node("h.niceScale(5, 5, 4)")
    assert one["min"] < 5 < one["max"]


@needs_node
def test_a_chart_draws_the_target_path_and_the_projection_to_the_deadline() -> None:
    target = _progress("plan7.smart-lorestan").model_dump(mode="json")
    model = _node(f"h.chartModel({json.dumps(target)}, 'fa')")
    box = model["box"]
    right = box["width"] - box["right"]
    assert model["target"]["x1"] == box["left"]
    assert model["target"]["x2"] == right
    assert model["deadline"] == right
    projection = model["projection"]
    assert (projection["x1"], projection["y1"]) == (
        model["actual"][-1]["x"],
        model["actual"][-1]["y"],
    )
    assert projection["x2"] == right
    ticks = {t["value"]: t["y"] for t in model["yTicks"]}
    # 27.9 lies between the ticks of 20 and 30, at its share of the way.
    assert projection["y2"] == pytest.approx(ticks[20] + (ticks[30] - ticks[20]) * 0.79)
    assert [t["label"] for t in model["yTicks"]] == ["۰٪", "۱۰٪", "۲۰٪", "۳۰٪"]
    assert [t["label"] for t in model["xTicks"]][:2] == ["فروردین ۱۴۰۳", "تیر ۱۴۰۳"]
    assert model["unit"] == "درصد"


@needs_node
def test_targets_are_grouped_worst_first() -> None:
    targets = [
        {"target_id": s, "status": s, "deadline": "1403-12-30"}
        for s in ["achieved", "on_track", "missed", "at_risk", "no_data", "behind"]
    ]
    groups = _node(f"h.byStatus({json.dumps(targets)}).map(g => g.status)")
    assert groups == ["missed", "behind", "at_risk", "no_data", "on_track", "achieved"]
