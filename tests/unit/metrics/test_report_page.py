"""The weekly report form: the weeks it offers, what it embeds (escaped), its script's
safety, and (under node) the script's pure helpers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from services.metrics.domain.provincial_reports import FIGURES, recent_weeks, sample_weeks
from services.metrics.domain.windows import window_from_label
from services.metrics.report_page import WEEKS_OFFERED, form_config, report_page

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # a Monday in 1405-W37
STATIC = resources.files("services.metrics") / "static"
SCRIPT = STATIC / "report.js"
IDENTITY = "http://127.0.0.1:8001"


def test_the_form_offers_the_current_week_first_then_the_weeks_before() -> None:
    weeks = recent_weeks(NOW, WEEKS_OFFERED)
    assert weeks[:3] == ["1405-W37", "1405-W36", "1405-W35"]
    assert len(weeks) == len(set(weeks)) == 12
    for label in weeks:
        window_from_label("week", label)
    # Across a year's edge, the cut weeks are each offered once.
    edge = recent_weeks(datetime(2026, 3, 25, 9, 0, tzinfo=UTC), 4)
    assert edge[0].startswith("1405-W01")
    assert edge[1].startswith("1404-")
    # The development sample: its weeks oldest first, ending with the current one.
    assert sample_weeks(NOW) == list(reversed(recent_weeks(NOW, 8)))


def test_the_form_knows_every_figure_by_name_and_where_identity_issues_tokens() -> None:
    config = form_config(IDENTITY + "/", NOW)
    assert config["token_endpoint"] == f"{IDENTITY}/oauth/token"
    assert config["scope"] == "programme:report"
    assert [f["code"] for f in config["figures"]] == list(FIGURES)
    by_code = {f["code"]: f for f in config["figures"]}
    assert by_code["villages_connected"]["name_en"].startswith("Villages of more than 20")
    assert by_code["coverage_4g_share"]["kind"] == "share"
    assert len(config["provinces"]) == 31
    assert {"code": "IR-15", "directorate": "ict-ir-15"}.items() <= next(
        p for p in config["provinces"] if p["code"] == "IR-15"
    ).items()


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_the_page_is_in_its_language_and_embeds_nothing_that_can_leave_its_script(
    lang: str,
) -> None:
    page = report_page(lang, "http://identity.example/</script><script>alert(1)", NOW)  # type: ignore[arg-type]
    assert f'lang="{lang}"' in page
    assert ('dir="rtl"' in page) == (lang == "fa")
    assert "</script><script>alert" not in page
    match = re.search(r'<script id="config" type="application/json">(.*?)</script>', page, re.S)
    assert match is not None
    assert json.loads(match.group(1))["weeks"][0] == "1405-W37"
    assert not re.search(r"\son[a-z]+\s*=", page), "an inline event handler"


def test_the_script_writes_text_only_and_reaches_only_the_service_and_identity() -> None:
    text = SCRIPT.read_text("utf-8")
    for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert unsafe not in text
    assert not re.search(r"https?://", text), "a network address"


NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def _node(expression: str) -> Any:
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
def test_numbers_typed_in_persian_digits_are_read() -> None:
    got = _node("['۱٬۲۴۵', '۷۶٫۵', '98', ' 1,245 ', '12abc', '', '-3'].map(h.parseNumber)")
    assert got[:4] == [1245, 76.5, 98, 1245]
    assert got[4] is None  # NaN
    assert got[5] is None
    assert got[6] == -3


@needs_node
def test_the_report_body_holds_what_was_typed_and_names_what_is_not_a_number() -> None:
    got = _node(
        "h.buildReport({coverage_4g_share: '۷۶', villages_connected: '', rural_ict_offices: 'x'},"
        " {'nin-fixed-broadband': '40'}, {coverage_4g_share: '  ', 'projects.a': 'سیل'})"
    )
    assert got["body"] == {
        "figures": {"coverage_4g_share": 76},
        "projects": {"nin-fixed-broadband": 40},
        "reasons": {"projects.a": "سیل"},
    }
    assert got["bad"] == ["rural_ict_offices"]


@needs_node
def test_a_problem_goes_next_to_its_field_or_to_the_general_place() -> None:
    known = json.dumps(["week", "coverage_4g_share", "reasons.coverage_4g_share", "general"])
    got = _node(
        f"[{{field: 'reasons.coverage_4g_share'}}, {{field: 'tea'}}, {{}}, null]"
        f".map(e => h.placeOf(e, {known}))"
    )
    assert got == ["reasons.coverage_4g_share", "general", "general", "general"]


@needs_node
def test_earlier_figures_are_the_latest_of_weeks_before_the_chosen_one() -> None:
    reports = [
        {"week": "1405-W35", "figures": {"a": 1, "b": 2}, "projects": {"p": 10}},
        {"week": "1405-W36", "figures": {"a": 3}, "projects": {}},
        {"week": "1405-W37", "figures": {"a": 9}, "projects": {}},
    ]
    got = _node(f"h.figuresAround({json.dumps(reports)}, '1405-W37')")
    assert got["earlier"] == {
        "a": {"value": 3, "week": "1405-W36"},
        "b": {"value": 2, "week": "1405-W35"},
        "projects.p": {"value": 10, "week": "1405-W35"},
    }
    assert got["current"]["figures"] == {"a": 9}


@needs_node
def test_a_directorates_client_id_names_its_province() -> None:
    got = _node(
        "['ict-ir-15.3f9a', ' ICT-IR-03.x ', 'tax.3f9a', 'ict-ir-15', ''].map(h.provinceOfClient)"
    )
    assert got == ["IR-15", "IR-03", None, None, None]
