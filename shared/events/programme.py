"""Events of the programme register, kept by the metrics service: the indicators the
programme is monitored by, the targets the plans and laws set on them, and the figures
reported for them (historical baselines, and what provinces and the operator report).

Each topic is compacted by its key, so its latest record per key is the register's
current state; the metrics service's tables keep the history. The metrics worker follows
all three and publishes each target's progress on `metrics.programme`.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from shared.envelope import Event
from shared.jalali import JalaliDay
from shared.reference.provinces import BY_CODE
from shared.registry import event
from shared.topics import Topic
from shared.vocabulary import Localized

IndicatorCode = str
INDICATOR_CODE_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
TARGET_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{1,79}$"
AGENCY_CODE_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"

Scope = Literal["national", "province", "agency"]
IndicatorUnit = Literal["percent", "count", "people", "transactions"]
Direction = Literal["increase", "decrease"]
#: Where an indicator's figures come from: computed live by the metrics worker, or
#: reported (by the operator, by a provincial directorate, or as a historical baseline), or
#: computed per agency and Jalali quarter by the worker's evaluation of agencies (published
#: on `metrics.evaluations`, read from no other metric).
IndicatorSource = Literal["live", "reported", "evaluation"]
#: How a live indicator reads its metric: the all-time value, the Jalali year's (the running
#: year annualised, so years compare), or each day's.
LiveWindow = Literal["all_time", "year", "day"]


class _Scoped(Event):
    scope: Scope = Field(description="Whom it is about: the country, a province, an agency.")
    scope_code: str | None = Field(
        default=None,
        description="The province (`IR-15`) or agency code; None for national.",
        max_length=40,
    )

    @model_validator(mode="after")
    def _scope_code_fits(self) -> Self:
        check_scope(self.scope, self.scope_code)
        return self


def check_scope(scope: Scope, code: str | None) -> None:
    """ValueError unless `code` names what `scope` needs (nothing for national)."""
    if scope == "national":
        if code is not None:
            raise ValueError("a national figure names no province or agency")
    elif scope == "province":
        if code not in BY_CODE:
            raise ValueError("a provincial figure names one of the 31 provinces, e.g. IR-15")
    elif code is None or not re.fullmatch(AGENCY_CODE_PATTERN, code):
        raise ValueError("an agency's figure names the agency's code")


_INDICATOR_EXAMPLE: dict[str, Any] = {
    "code": "smart_services_share",
    "name_fa": "سهم خدمات هوشمند",
    "name_en": "Share of services that are smart",
    "definition_fa": "درصد خدمات منتشرشده در پنجره که کاملاً خودکار و بدون کاغذ و مراجعه‌اند.",
    "definition_en": "Published services of the window that are fully automated, in percent.",
    "unit": "percent",
    "direction": "increase",
    "source": "live",
    "live_metric": "adoption.smart_share",
    "live_window": "all_time",
    "live_scale": 100.0,
    "evaluation_weight": 0.2,
    "revision": 1,
    "changed_by": "operator:reference-data",
}


@event
class IndicatorRecorded(Event):
    """An indicator of the programme was defined or changed: its latest definition."""

    event_type = "IndicatorRecorded"
    schema_version = 1
    topic = Topic.PROGRAMME_INDICATORS
    model_config = ConfigDict(json_schema_extra={"examples": [_INDICATOR_EXAMPLE]})

    code: IndicatorCode = Field(pattern=INDICATOR_CODE_PATTERN)
    name_fa: Localized
    name_en: Localized
    definition_fa: Localized
    definition_en: Localized
    unit: IndicatorUnit
    direction: Direction = Field(description="Whether the programme wants it higher or lower.")
    source: IndicatorSource
    live_metric: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_.]*$",
        description="For a live indicator: the metric on the metrics topics it reads.",
    )
    live_dimensions: dict[str, str] = Field(
        default_factory=dict,
        description="Dimensions the live metric is read at, besides the target's scope "
        "(e.g. `{'maturity': '5'}`).",
    )
    live_window: LiveWindow | None = None
    live_scale: float = Field(
        default=1.0, gt=0, description="Multiplies the metric's value (100 for a ratio in %)."
    )
    evaluation_weight: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Its weight in the quarterly evaluation of agencies; 0: not scored.",
    )
    revision: int = Field(ge=1, description="Grows by one with every change.")
    changed_by: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _live_source_named(self) -> Self:
        live = self.live_metric is not None and self.live_window is not None
        if self.source == "live" and not live:
            raise ValueError("a live indicator names its metric and window")
        if self.source != "live" and (self.live_metric or self.live_window or self.live_dimensions):
            raise ValueError(f"a {self.source} indicator names no live metric")
        return self


_TARGET_EXAMPLE: dict[str, Any] = {
    "target_id": "plan7.smart-services-1403",
    "indicator": "smart_services_share",
    "scope": "national",
    "scope_code": None,
    "baseline_value": 10.0,
    "baseline_date": "1403-01-01",
    "target_value": 30.0,
    "deadline": "1403-12-30",
    "basis_fa": "قانون برنامه هفتم توسعه: دست‌کم ۳۰ درصد خدمات تا پایان سال جاری هوشمند",
    "basis_en": "7th development plan: at least 30% of services smart by the end of the year",
    "citation": "seeds/001_a106199b50bfd4a8.txt",
    "active": True,
    "revision": 1,
    "changed_by": "operator:reference-data",
}


@event
class TargetRecorded(_Scoped):
    """A target was set or changed: an indicator's value to reach, for whom, by when."""

    event_type = "TargetRecorded"
    schema_version = 1
    topic = Topic.PROGRAMME_TARGETS
    model_config = ConfigDict(json_schema_extra={"examples": [_TARGET_EXAMPLE]})

    target_id: str = Field(pattern=TARGET_ID_PATTERN)
    indicator: IndicatorCode = Field(pattern=INDICATOR_CODE_PATTERN)
    baseline_value: float
    baseline_date: JalaliDay
    target_value: float
    deadline: JalaliDay
    basis_fa: Localized = Field(description="The plan, law or commitment that sets it.")
    basis_en: Localized
    citation: str = Field(
        min_length=1, max_length=500, description="Where it is written (a source document)."
    )
    active: bool = Field(description="False once withdrawn; kept for history.")
    revision: int = Field(ge=1)
    changed_by: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _deadline_after_baseline(self) -> Self:
        # Jalali days written YYYY-MM-DD compare as text.
        if self.deadline <= self.baseline_date:
            raise ValueError("a target's deadline comes after its baseline date")
        if self.target_value == self.baseline_value:
            raise ValueError("a target's value differs from its baseline")
        return self


_OBSERVATION_EXAMPLE: dict[str, Any] = {
    "indicator": "exchange_transactions_per_year",
    "scope": "national",
    "scope_code": None,
    "observed_on": "1399-12-30",
    "value": 1_500_000_000.0,
    "source_fa": "گزارش وزیر ارتباطات به مجلس، ۳ تیر ۱۴۰۳",
    "source_en": "The ICT minister's report to parliament, 3 Tir 1403",
    "citation": "seeds/001_a106199b50bfd4a8.txt",
    "reported_by": "operator:reference-data",
    "revision": 1,
}


@event
class ObservationRecorded(_Scoped):
    """A figure was reported for an indicator on a day (a correction: a higher revision)."""

    event_type = "ObservationRecorded"
    schema_version = 1
    topic = Topic.PROGRAMME_OBSERVATIONS
    model_config = ConfigDict(json_schema_extra={"examples": [_OBSERVATION_EXAMPLE]})

    indicator: IndicatorCode = Field(pattern=INDICATOR_CODE_PATTERN)
    observed_on: JalaliDay = Field(description="The day the figure describes.")
    value: float
    source_fa: Localized
    source_en: Localized
    citation: str = Field(min_length=1, max_length=500)
    reported_by: str = Field(min_length=1, max_length=200)
    revision: int = Field(ge=1, description="A correction supersedes with a higher revision.")

    def record_key(self) -> str:
        """Its key on the topic: one current figure per indicator, scope and day."""
        return f"{self.indicator}|{self.scope}:{self.scope_code or ''}|{self.observed_on}"


_REPORT_EXAMPLE: dict[str, Any] = {
    "province": "IR-15",
    "week": "1405-W36",
    "figures": {"coverage_4g_share": 76.0, "villages_connected": 1245.0},
    "projects": {"nin-rural-fibre": 40.0},
    "reasons": {},
    "late": False,
    "revision": 1,
    "submitted_by": "ict-ir-15",
}


@event
class ProvincialReportRecorded(Event):
    """A provincial ICT directorate's weekly report was accepted (a correction: a higher
    revision, superseding the earlier one for the same week)."""

    event_type = "ProvincialReportRecorded"
    schema_version = 1
    topic = Topic.PROGRAMME_PROVINCIAL_REPORTS
    model_config = ConfigDict(json_schema_extra={"examples": [_REPORT_EXAMPLE]})

    province: str = Field(pattern=r"^IR-[0-9]{2}$")
    week: str = Field(pattern=r"^[0-9]{4}-W[0-9]{2}$", description="A Jalali week, Saturday on.")
    figures: dict[str, float] = Field(description="Indicator code → the province's figure.")
    projects: dict[str, float] = Field(description="Project code → progress in percent.")
    reasons: dict[str, str] = Field(description="Why a figure fell against the week before.")
    late: bool = Field(description="Submitted after its week ended.")
    revision: int = Field(ge=1)
    submitted_by: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _known_province(self) -> Self:
        check_scope("province", self.province)
        return self


#: What a generated report file is: a province's weekly report, the national weekly
#: summary, or the quarterly evaluation of agencies.
ReportKind = Literal["province-week", "national-week", "agency-evaluation"]
ReportFormat = Literal["html", "pdf", "csv"]
REPORT_PERIOD_PATTERN = r"^[0-9]{4}-(W[0-9]{2}|Q[1-4])$"
REPORT_SUBJECT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$"

_REPORT_FILE_EXAMPLE: dict[str, Any] = {
    "kind": "province-week",
    "period": "1405-W36",
    "subject": "IR-15",
    "format": "pdf",
    "revision": 1,
    "sha256": "9c1917d2" * 8,
    "size": 48213,
    "path": "/api/reports/province-week/1405-W36/IR-15.pdf",
}


@event
class ReportPublished(Event):
    """A report file was generated, or regenerated with new content as its next revision.

    A late report or a correction changes a weekly report's content; the file is served
    at `path`."""

    event_type = "ReportPublished"
    schema_version = 1
    topic = Topic.PROGRAMME_REPORTS
    model_config = ConfigDict(json_schema_extra={"examples": [_REPORT_FILE_EXAMPLE]})

    kind: ReportKind
    period: str = Field(
        pattern=REPORT_PERIOD_PATTERN, description="A Jalali week (`1405-W36`) or quarter."
    )
    subject: str | None = Field(
        default=None,
        pattern=REPORT_SUBJECT_PATTERN,
        description="Whom the file is about within its period (a province, `IR-15`); None "
        "for a report of the whole period.",
    )
    format: ReportFormat
    revision: int = Field(ge=1, description="Grows by one each time the file's content changes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Of the file's bytes.")
    size: int = Field(ge=0, description="The file's size in bytes.")
    path: str = Field(
        min_length=1, max_length=300, description="Where the metrics service serves it."
    )

    def record_key(self) -> str:
        """Its key on the topic: one current revision per file."""
        return f"{self.kind}|{self.period}|{self.subject or ''}|{self.format}"


def report_path(
    kind: ReportKind, period: str, subject: str | None, file_format: ReportFormat
) -> str:
    """Where the metrics service serves a report file's latest revision."""
    tail = f"{period}/{subject}" if subject is not None else period
    return f"/api/reports/{kind}/{tail}.{file_format}"
