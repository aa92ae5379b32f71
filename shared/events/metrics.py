"""Events of the metrics worker: the programme's figures, one record per metric value.

Each metrics topic is compacted by key `<metric>|<dimensions>|<window>`, so its latest
record per key is the current value; analysts consume them with any Kafka client.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.envelope import Event
from shared.registry import event
from shared.topics import Topic

Granularity = Literal["minute", "hour", "day", "week", "quarter", "year", "all_time"]

_EXAMPLE: dict[str, Any] = {
    "metric": "exchange.transactions",
    "dimensions": {"outcome": "answered"},
    "granularity": "day",
    "window_start": "2024-03-19T20:30:00Z",
    "window_end": "2024-03-20T20:30:00Z",
    "window_label": "1403-01-01",
    "value": 1234567.0,
    "unit": "count",
}


class _MetricValue(Event):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    metric: str = Field(pattern=r"^[a-z][a-z0-9_.]*$")
    dimensions: dict[str, str] = Field(description="e.g. {'province': 'IR-15'}; {} for totals.")
    granularity: Granularity
    window_start: AwareDatetime | None = Field(description="None for all-time values.")
    window_end: AwareDatetime | None
    window_label: str = Field(description="The window in the Jalali calendar, e.g. 1403-Q1.")
    value: float
    unit: Literal["count", "ratio", "milliseconds", "people"]

    def record_key(self) -> str:
        dimensions = ",".join(f"{k}={v}" for k, v in sorted(self.dimensions.items()))
        return f"{self.metric}|{dimensions}|{self.granularity}:{self.window_label}"


@event
class ExchangeMetricUpdated(_MetricValue):
    """A figure about the information exchange changed."""

    event_type = "ExchangeMetricUpdated"
    schema_version = 1
    topic = Topic.METRICS_EXCHANGE


@event
class IdentityMetricUpdated(_MetricValue):
    """A figure about sign-ins and people authenticated changed."""

    event_type = "IdentityMetricUpdated"
    schema_version = 1
    topic = Topic.METRICS_IDENTITY


@event
class AdoptionMetricUpdated(_MetricValue):
    """A figure about the window's services and agencies changed."""

    event_type = "AdoptionMetricUpdated"
    schema_version = 1
    topic = Topic.METRICS_ADOPTION


@event
class DeliveryMetricUpdated(_MetricValue):
    """A figure about service deliveries changed."""

    event_type = "DeliveryMetricUpdated"
    schema_version = 1
    topic = Topic.METRICS_DELIVERIES


ProgressStatus = Literal["achieved", "on_track", "at_risk", "behind", "missed", "no_data"]

_PROGRESS_EXAMPLE: dict[str, Any] = {
    "target_id": "plan7.smart-services-1403",
    "indicator": "smart_services_share",
    "indicator_name_fa": "سهم خدمات هوشمند",
    "indicator_name_en": "Share of services that are smart",
    "unit": "percent",
    "direction": "increase",
    "scope": "national",
    "scope_code": None,
    "baseline_value": 10.0,
    "baseline_date": "1403-01-01",
    "target_value": 30.0,
    "deadline": "1403-12-30",
    "current_value": 21.5,
    "current_as_of": "1403-08-10",
    "progress": 0.575,
    "expected_progress": 0.61,
    "trend_per_year": 17.2,
    "projected_value": 27.9,
    "status": "at_risk",
    "series": [{"day": "1403-01-01", "value": 10.0}, {"day": "1403-08-10", "value": 21.5}],
    "basis_fa": "قانون برنامه هفتم توسعه",
    "basis_en": "7th development plan",
    "citation": "seeds/001_a106199b50bfd4a8.txt",
    "evaluated_on": "1403-08-10",
}


class ProgressPoint(BaseModel):
    """One figure of a target's series: a Jalali day and the indicator's value on it."""

    model_config = ConfigDict(frozen=True)

    day: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    value: float


@event
class TargetProgressUpdated(Event):
    """Where a target of the programme stands: its value, trend, projection and status.

    `progress` is the share of the way from the baseline to the target covered (1: reached);
    `expected_progress` the share a straight path would have covered by `evaluated_on`;
    `projected_value` the least-squares trend of `series` carried to the deadline. The
    status rule is in `services/metrics/domain/programme.py`.
    """

    event_type = "TargetProgressUpdated"
    schema_version = 1
    topic = Topic.METRICS_PROGRAMME
    model_config = ConfigDict(json_schema_extra={"examples": [_PROGRESS_EXAMPLE]})

    target_id: str
    indicator: str
    indicator_name_fa: str
    indicator_name_en: str
    unit: str
    direction: Literal["increase", "decrease"]
    scope: Literal["national", "province", "agency"]
    scope_code: str | None
    baseline_value: float
    baseline_date: str
    target_value: float
    deadline: str
    current_value: float | None = Field(description="None until a figure exists.")
    current_as_of: str | None = Field(description="The Jalali day of the current value.")
    progress: float | None
    expected_progress: float
    trend_per_year: float | None = Field(description="None with fewer than two days of figures.")
    projected_value: float | None
    status: ProgressStatus
    series: list[ProgressPoint] = Field(max_length=400)
    basis_fa: str
    basis_en: str
    citation: str
    evaluated_on: str = Field(description="The Jalali day the status was decided on.")


EvaluationUnit = Literal["percent", "count", "milliseconds", "yes_no"]

_EVALUATION_EXAMPLE: dict[str, Any] = {
    "agency": "tax",
    "agency_name_fa": "سازمان امور مالیاتی",
    "agency_name_en": "Tax Administration",
    "quarter": "1405-Q3",
    "first_day": "1405-07-01",
    "last_day": "1405-09-30",
    "quarter_start": "2026-09-22T20:30:00Z",
    "quarter_end": "2026-12-20T20:30:00Z",
    "closed": False,
    "measures": [
        {
            "indicator": "agency_online_deliveries_share",
            "name_fa": "سهم ارائه برخط خدمات",
            "name_en": "Share of deliveries online",
            "unit": "percent",
            "value": 62.5,
            "numerator": 5.0,
            "denominator": 8.0,
            "score": 62.5,
            "weight": 0.1,
            "applicable": True,
            "points_lost": 3.75,
        }
    ],
    "score": 71.25,
    "rank": 4,
    "agencies_ranked": 12,
    "previous_quarter": "1405-Q2",
    "previous_score": 68.0,
    "previous_rank": 5,
    "score_change": 3.25,
    "rank_change": 1,
    "weakest": ["agency_online_deliveries_share"],
}


class MeasureScore(BaseModel):
    """One measure of an agency's quarterly scorecard: the indicator it is, the agency's
    figure (`value`, from `numerator` of `denominator` where it is a share), that figure
    normalised to 0-100 (`score`), the indicator's weight, and how many points of 100 the
    measure cost the agency's score (`points_lost`). `applicable` is false where the
    measure says nothing of the agency (no requests as a provider: no response time), and
    it is then left out of the score."""

    model_config = ConfigDict(frozen=True)

    indicator: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    name_fa: str
    name_en: str
    unit: EvaluationUnit
    value: float | None = Field(description="None where there is no figure.")
    numerator: float | None
    denominator: float | None
    score: float | None = Field(ge=0, le=100, description="0-100; None where not applicable.")
    weight: float = Field(ge=0, le=1)
    applicable: bool
    points_lost: float = Field(ge=0, le=100)


@event
class AgencyEvaluated(Event):
    """An agency's scorecard for a Jalali quarter: each measure, the weighted score, its
    rank among the agencies evaluated that quarter (1 is best; equal scores share a rank),
    and the change since the previous quarter. The rules (normalisation, weights, an
    agency without data) are in `services/metrics/domain/evaluations.py`; one record per
    agency and quarter, its latest state."""

    event_type = "AgencyEvaluated"
    schema_version = 1
    topic = Topic.METRICS_EVALUATIONS
    model_config = ConfigDict(json_schema_extra={"examples": [_EVALUATION_EXAMPLE]})

    agency: str = Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")
    agency_name_fa: str
    agency_name_en: str
    quarter: str = Field(pattern=r"^[0-9]{4}-Q[1-4]$", description="A Jalali quarter.")
    first_day: str = Field(description="The quarter's first Jalali day, `1405-07-01`.")
    last_day: str = Field(description="The quarter's last Jalali day.")
    quarter_start: AwareDatetime
    quarter_end: AwareDatetime
    closed: bool = Field(description="Whether the quarter had ended when this was computed.")
    measures: list[MeasureScore] = Field(max_length=40)
    score: float | None = Field(ge=0, le=100, description="None while no measure has weight.")
    rank: int | None = Field(ge=1, description="1 is best; None without a score.")
    agencies_ranked: int = Field(ge=0)
    previous_quarter: str = Field(pattern=r"^[0-9]{4}-Q[1-4]$")
    previous_score: float | None = Field(description="None if not scored then.")
    previous_rank: int | None
    score_change: float | None = Field(description="This score less the previous one.")
    rank_change: int | None = Field(description="Places gained since then (negative: lost).")
    weakest: list[str] = Field(
        max_length=40, description="The measures that cost it most points, worst first."
    )

    def record_key(self) -> str:
        """Its key on `metrics.evaluations`: the agency and the quarter, `tax|1405-Q3`."""
        return f"{self.agency}|{self.quarter}"
