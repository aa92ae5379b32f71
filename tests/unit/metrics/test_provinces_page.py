"""The page of the provinces' weekly reports: in Persian and English with the week's
overview embedded so that no text (a directorate's reason, say) can leave its script
element, the weeks before and after, and (under node) the pure helpers of its script:
figures and their changes, Jalali weeks, a province's charts week by week."""

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
from services.metrics.domain.provincial_reports import load_projects
from services.metrics.domain.windows import TEHRAN, window_from_label, window_of
from services.metrics.provinces_page import adjacent_weeks, current_week, provinces_page
from services.metrics.use_cases import provinces
from services.metrics.use_cases.provinces import ReportEntry
from shared.http import install_problem_handlers
from tests.unit.metrics.fakes import FakeProgrammeWork

SCRIPT = resources.files("services.metrics") / "static" / "provinces.js"
HOSTILE = "</script><script>alert(1)</script><!--"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # a Monday, 1405-09-09 in Tehran
THIS_WEEK = window_of("week", NOW).label
LAST_WEEK = window_of("week", NOW - timedelta(days=7)).label
NEXT_WEEK = window_of("week", NOW + timedelta(days=7)).label
PROJECTS = load_projects()


async def _submit(
    work: FakeProgrammeWork, province: str, week: str, now: datetime, **fields: Any
) -> None:
    await provinces.submit_report(
        work,
        province,
        week,
        ReportEntry.model_validate(fields),
        agency=f"ict-{province.lower()}",
        projects=PROJECTS,
        now=now,
    )


async def _reports() -> FakeProgrammeWork:
    """Lorestan reports both weeks, its 4G coverage falling (with a hostile reason); Ilam
    reports last week's after it ended; Tehran only last week."""
    work = FakeProgrammeWork(NOW)
    last_monday = NOW - timedelta(days=7)
    await _submit(
        work,
        "IR-15",
        LAST_WEEK,
        last_monday,
        figures={"coverage_4g_share": 76, "villages_connected": 1245},
    )
    await _submit(work, "IR-23", LAST_WEEK, last_monday, figures={"coverage_4g_share": 97.5})
    await _submit(work, "IR-16", LAST_WEEK, NOW, figures={"coverage_4g_share": 60})
    await _submit(
        work,
        "IR-15",
        THIS_WEEK,
        NOW,
        figures={"coverage_4g_share": 75.5, "villages_connected": 1250},
        reasons={"coverage_4g_share": HOSTILE},
    )
    return work


def _overview(week: str) -> dict[str, Any]:
    async def build() -> dict[str, Any]:
        work = await _reports()
        return (await provinces.week_overview(work, week, NOW)).as_json()

    return asyncio.run(build())


def _embedded(page: str, element: str) -> Any:
    found = re.search(
        rf'<script id="{element}" type="application/json">(.*?)</script>', page, re.DOTALL
    )
    assert found is not None, f"no {element} script element"
    return json.loads(found.group(1))


def test_the_page_is_persian_right_to_left_with_the_week_embedded() -> None:
    overview = _overview(LAST_WEEK)
    page = provinces_page("fa", overview, NOW)
    assert '<html lang="fa" dir="rtl">' in page
    assert "<title>گزارش‌های هفتگی استان‌ها</title>" in page
    assert '<a id="dashboard-link" href="/dashboard?lang=fa">داشبورد زنده</a>' in page
    assert '<a id="programme-link" href="/dashboard/programme?lang=fa">اهداف برنامه</a>' in page
    assert '<script src="/static/provinces.js"></script>' in page
    assert '<link rel="stylesheet" href="/static/provinces.css">' in page
    assert _embedded(page, "initial") == overview
    summary = _embedded(page, "initial")["summary"]
    assert (summary["reported"], summary["late"]) == (3, ["IR-16"])
    assert len(summary["missing"]) == 28

    config = _embedded(page, "config")
    assert config["week"] == LAST_WEEK
    assert config["current_week"] == THIS_WEEK
    assert config["next_week"] == THIS_WEEK
    assert config["province"] is None
    assert len(config["provinces"]) == 31
    figures = {f["code"]: f for f in config["figures"]}
    assert figures["coverage_4g_share"] == {
        "code": "coverage_4g_share",
        "unit": "percent",
        "name_fa": "پوشش نسل چهارم",
        "name_en": "4G coverage",
    }
    assert figures["villages_connected"]["unit"] == "count"
    # The weeks either side, and this week, in Persian.
    before, _ = adjacent_weeks(LAST_WEEK)
    assert f'<a id="previous-week" href="/dashboard/provinces?lang=fa&amp;week={before}">' in page
    assert f'<a id="next-week" href="/dashboard/provinces?lang=fa&amp;week={THIS_WEEK}">' in page
    assert f'<a id="current-week" href="/dashboard/provinces?lang=fa&amp;week={THIS_WEEK}">' in page
    assert f'<a id="lang-en" href="/dashboard/provinces?lang=en&amp;week={LAST_WEEK}"' in page


def test_the_english_page_is_left_to_right_and_offers_no_week_not_started() -> None:
    page = provinces_page("en", _overview(THIS_WEEK), NOW)
    assert '<html lang="en" dir="ltr">' in page
    assert "<title>Provinces&#x27; weekly reports</title>" in page
    assert '<a id="dashboard-link" href="/dashboard?lang=en">Live dashboard</a>' in page
    programme = '<a id="programme-link" href="/dashboard/programme?lang=en">Programme targets</a>'
    assert programme in page
    # Next week has not started: no link to it; this is the current week.
    assert _embedded(page, "config")["next_week"] is None
    assert '<span id="next-week" class="disabled">Next week →</span>' in page
    assert '<span id="current-week" class="disabled">This week</span>' in page
    assert NEXT_WEEK not in page


def test_a_chosen_province_is_selected_and_kept_in_the_links() -> None:
    page = provinces_page("en", _overview(THIS_WEEK), NOW, province="IR-15")
    assert _embedded(page, "config")["province"] == "IR-15"
    assert '<option value="IR-15" selected>Lorestan</option>' in page
    assert page.count(" selected>") == 1
    assert f"lang=fa&amp;week={THIS_WEEK}&amp;province=IR-15" in page
    # Anything but one of the 31 is no choice at all.
    for unknown in ["IR-99", HOSTILE, ""]:
        other = provinces_page("en", _overview(THIS_WEEK), NOW, province=unknown)
        assert _embedded(other, "config")["province"] is None
        assert " selected>" not in other


def test_no_text_in_the_week_closes_its_script_element() -> None:
    overview = _overview(THIS_WEEK)
    lorestan = next(p for p in overview["provinces"] if p["province"] == "IR-15")
    assert lorestan["reasons"] == {"coverage_4g_share": HOSTILE}
    overview["week_note"] = HOSTILE  # anything else the overview may come to carry
    page = provinces_page("fa", overview, NOW, province=HOSTILE)
    # Three script elements, each closed once: the data's `</script>` is not among them.
    assert page.count("</script>") == 3
    assert "<script>alert" not in page
    assert "<!--" not in page
    assert _embedded(page, "initial") == overview


def test_the_weeks_either_side_cross_the_years_edge() -> None:
    before, after = adjacent_weeks("1405-W01")
    nowruz = window_from_label("week", "1405-W01").start
    assert nowruz is not None
    last_of_1404 = window_of("week", nowruz - timedelta(seconds=1))
    assert before == last_of_1404.label
    assert before.startswith("1404-W")
    assert after == "1405-W02"
    assert adjacent_weeks(before)[1] == "1405-W01"
    assert current_week(NOW) == THIS_WEEK == "1405-W37"
    with pytest.raises(ValueError, match="1405-W99"):
        adjacent_weeks("1405-W99")


def test_the_script_writes_no_markup_and_handles_no_events_inline() -> None:
    text = SCRIPT.read_text("utf-8")
    for markup in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("]:
        assert markup not in text
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), "a network address"
    page = provinces_page("en", _overview(THIS_WEEK), NOW)
    assert not re.search(r"\son[a-z]+\s*=", page), "an inline event handler"
    assert not re.search(r"<script>", page), "an inline script"
    assert " style=" not in page


def test_the_pages_link_to_each_other() -> None:
    static = resources.files("services.metrics") / "static"
    for other in ["dashboard.html", "programme.html"]:
        assert 'href="/dashboard/provinces?lang=$lang"' in (static / other).read_text(), other


# -- the route, once http.py serves the page -----------------------------------------------

routed = pytest.mark.skipif(
    not hasattr(http, "provinces_dashboard"), reason="http.py does not serve the page yet"
)


class _Connection:
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield


class _Pool:
    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[_Connection]:
        yield _Connection()


class _NoFiles:
    async def report_files_of(self, kind: str, period: str) -> list[object]:
        return []


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    work = asyncio.run(_reports())
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(http.router)
    app.state.runtime = SimpleNamespace(pool=_Pool())
    monkeypatch.setattr(http, "ProgrammeStorage", lambda connection: work)
    # No report file generated yet: the week's answer lists none.
    monkeypatch.setattr(http, "ReportFilesStorage", lambda connection: _NoFiles())
    with TestClient(app) as test_client:
        yield test_client


@routed
def test_the_route_serves_the_week_as_the_api_answers_it(client: TestClient) -> None:
    response = client.get("/dashboard/provinces", params={"week": LAST_WEEK})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page = response.text
    assert '<html lang="fa" dir="rtl">' in page
    listed = client.get(f"/api/provinces/reports/{LAST_WEEK}").json()
    embedded = _embedded(page, "initial")
    # `ended` and the late flags do not depend on the clock here: last week has ended.
    assert embedded["summary"] == listed["summary"]
    assert embedded["provinces"] == listed["provinces"]
    english = client.get("/dashboard/provinces", params={"lang": "en", "province": "IR-15"})
    assert '<html lang="en" dir="ltr">' in english.text
    assert _embedded(english.text, "config")["province"] == "IR-15"
    assert client.get("/dashboard/provinces", params={"lang": "de"}).status_code == 422
    assert client.get("/dashboard/provinces", params={"week": "1405-W99"}).status_code == 422


@routed
def test_the_script_and_style_are_served(client: TestClient) -> None:
    script = client.get("/static/provinces.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    style = client.get("/static/provinces.css")
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    assert client.get("/static/provinces.html").status_code == 404


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
def test_figures_and_their_changes_read_with_arrow_and_sign() -> None:
    values = _node(
        "['fa', 'en'].map(l => [h.formatValue(75.5, 'percent', l), "
        "h.formatValue(1245, 'count', l), h.formatValue(null, 'count', l)])"
    )
    assert values == [["۷۵٫۵٪", "۱٬۲۴۵", "—"], ["75.5%", "1,245", "—"]]
    changes = _node(
        "['fa', 'en'].map(l => [h.formatChange(-0.5, 'percent', l), "
        "h.formatChange(1200, 'count', l), h.formatChange(0.01, 'percent', l), "
        "h.formatChange(null, 'count', l)])"
    )
    assert changes == [
        [
            {"direction": "down", "arrow": "▼", "text": "−۰٫۵"},
            {"direction": "up", "arrow": "▲", "text": "+۱٬۲۰۰"},
            {"direction": "flat", "arrow": "=", "text": "۰"},
            {"direction": "none", "arrow": "", "text": "—"},
        ],
        [
            {"direction": "down", "arrow": "▼", "text": "−0.5"},
            {"direction": "up", "arrow": "▲", "text": "+1,200"},
            {"direction": "flat", "arrow": "=", "text": "0"},
            {"direction": "none", "arrow": "", "text": "—"},
        ],
    ]


@needs_node
def test_weeks_start_where_the_metrics_windows_start_them() -> None:
    labels: list[str] = []
    moment = datetime(2024, 3, 1, 12, tzinfo=UTC)
    while moment < datetime(2027, 4, 1, tzinfo=UTC):
        labels.append(window_of("week", moment).label)
        moment += timedelta(days=3)
    labels = sorted(set(labels))
    starts = _node(f"{json.dumps(labels)}.map(h.weekStartDay)")
    for label, number in zip(labels, starts, strict=True):
        start = window_from_label("week", label).start
        assert start is not None
        local: date = start.astimezone(TEHRAN).date()
        assert number == local.toordinal() + 1721425, label
    assert _node("[h.weekStartDay('1405-W60'), h.weekStartDay('week 3')]") == [None, None]


@needs_node
def test_weeks_and_their_days_read_in_both_languages() -> None:
    assert _node(
        "[h.formatWeek('1405-W36', 'fa'), h.formatWeek('1405-W36', 'en'), "
        "h.formatWeekRange('1405-08-24', '1405-08-30', 'fa'), "
        "h.formatWeekRange('1404-12-29', '1405-01-01', 'en')]"
    ) == [
        "هفته ۳۶ سال ۱۴۰۵",
        "Week 36 of 1405",
        "۲۴ آبان تا ۳۰ آبان ۱۴۰۵",
        "29 Esfand 1404 to 1 Farvardin 1405",
    ]


@needs_node
def test_the_summary_names_the_late_and_missing_provinces() -> None:
    overview = _overview(LAST_WEEK)
    summary = _node(f"h.summarize({json.dumps(overview)}, 'en')")
    assert summary["reported"] == 3
    assert summary["total"] == 31
    assert summary["ended"] is True
    assert summary["late"] == [{"code": "IR-16", "name": "Ilam"}]
    assert {"code": "IR-00", "name": "Markazi"} in summary["missing"]
    assert len(summary["missing"]) == 28
    persian = _node(f"h.summarize({json.dumps(overview)}, 'fa')")
    assert persian["late"] == [{"code": "IR-16", "name": "ایلام"}]
    standings = _node(f"{json.dumps(overview['provinces'])}.map(h.standing)")
    assert standings.count("late") == 1
    assert standings.count("reported") == 2
    assert standings.count("missing") == 28
    # This week has not ended: who has not reported is awaited, not missing.
    current = _node(f"h.summarize({json.dumps(_overview(THIS_WEEK))}, 'en')")
    assert (current["ended"], current["missing"], len(current["awaited"])) == (False, [], 30)


@needs_node
def test_a_provinces_figure_is_charted_week_by_week_with_gaps_dashed() -> None:
    reports = [
        {"week": "1405-W30", "figures": {"coverage_4g_share": 70}},
        {"week": "1405-W31", "figures": {"coverage_4g_share": 72, "villages_connected": 1200}},
        {"week": "1405-W34", "figures": {"coverage_4g_share": 75}},
        {"week": "1405-W35", "figures": {"villages_connected": 1245}},
        {"week": "1405-W36", "figures": {"coverage_4g_share": 76}},
    ]
    series = _node(f"h.figureSeries({json.dumps(reports)}, 'coverage_4g_share')")
    assert [(p["week"], p["value"]) for p in series] == [
        ("1405-W30", 70),
        ("1405-W31", 72),
        ("1405-W34", 75),
        ("1405-W36", 76),
    ]
    # The overview's shape ({value, previous, change}) reads the same.
    assert _node(
        "h.figureSeries([{week: '1405-W36', figures: {x: {value: 5, change: 1}}}], 'x')"
        ".map(p => p.value)"
    ) == [5]
    model = _node(f"h.historyModel({json.dumps(series)}, 'percent', 'fa', '1405-W34')")
    box = model["box"]
    xs = [p["x"] for p in model["points"]]
    assert xs[0] == box["left"]
    assert xs[-1] == box["width"] - box["right"]
    assert xs == sorted(xs)
    # Spaced by the weeks between them: W31 to W34 is three weeks, W30 to W31 one.
    assert xs[2] - xs[1] == pytest.approx(3 * (xs[1] - xs[0]))
    assert [s["gap"] for s in model["segments"]] == [False, True, True]
    assert model["shown"] == xs[2]
    ticks = {t["value"]: t["y"] for t in model["yTicks"]}
    assert [t["label"] for t in model["yTicks"]] == ["۷۰٪", "۷۲٪", "۷۴٪", "۷۶٪"]
    assert model["points"][0]["y"] == ticks[70]
    assert model["points"][2]["y"] == pytest.approx(ticks[74] + (ticks[76] - ticks[74]) / 2)
    labels = [(t["label"], t["year"]) for t in model["xTicks"]]
    assert labels[0] == ("هفته ۳۰", "۱۴۰۵")
    assert all(year == "" for _, year in labels[1:])
    one = _node(
        "h.historyModel([{week: '1405-W36', day: h.weekStartDay('1405-W36'), value: 1245}],"
        " 'count', 'en', '1405-W36')"
    )
    assert one["segments"] == []
    assert (
        one["points"][0]["x"]
        == one["box"]["left"] + (one["box"]["width"] - one["box"]["left"] - one["box"]["right"]) / 2
    )
    values = [t["value"] for t in one["yTicks"]]
    assert min(values) < 1245 < max(values)
    assert one["xTicks"] == [{"x": one["points"][0]["x"], "label": "W36", "year": "1405"}]
