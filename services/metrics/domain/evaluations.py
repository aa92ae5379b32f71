"""The quarterly evaluation of agencies: each agency's scorecard, score, rank and change.

The seeds say agencies' services are evaluated quarterly against indicators, and the results
go to the responsible bodies. Per agency and Jalali quarter the scorecard holds ten measures,
each an indicator of the programme register (`reference/programme.yaml`, source
`evaluation`), whose `evaluation_weight` is its weight in the score:

- `agency_electronic_services_share`: its published services at maturity 3 or more, in %;
  scores the percentage.
- `agency_smart_services_share`: its published services at maturity 5 (smart), in %; scores
  the percentage.
- `agency_window_connected`: connected to the window by the quarter's last day; 100 or 0.
- `agency_exchange_use_as_consumer`: requests it sent through the exchange in the quarter;
  100 if any, else 0.
- `agency_exchange_use_as_provider`: requests the exchange addressed to it; 100 if any.
- `agency_online_deliveries_share`: its deliveries through the online channel, in %.
- `agency_completion_rate`: its deliveries completed, in %.
- `agency_refusals_and_denials_share`: requests it refused as a provider plus requests of its
  own the exchange denied, in % of all it sent and received; each point costs 5, so 20% or
  more scores 0 (refusing data to another agency is a crime under the National Data and
  Information Law).
- `agency_provider_p95_ms`: the 95th percentile of its time to answer as a provider (from the
  exchange's latency buckets, interpolated); 100 up to 500 ms, 0 from 5 s, linear between.
- `agency_reporting_timeliness`: its deliveries the catalog recorded within a day of their
  finishing, in %.

Where the figures come from: the exchange's own transactions (`exchange.transactions`, by
`completed_at`: use, not a typed date), the catalog's deliveries (`catalog.deliveries`, by
`finished_at`; a delivery is reported on time when the catalog recorded it within
`REPORTED_WITHIN` of its finishing), and the catalog's register of services and agencies as
it stood at the quarter's end (or now, for the running quarter). A timed-out request counts
in the provider's response times as slower than any bound.

An agency without data for a measure: no published services, no deliveries, or no use of the
exchange are figures of nothing, and score 0 (an agency that reports nothing does not score
better than one that reports badly). Two measures only say something of an agency that took
part: refusals and denials (no requests sent or received) and the response time as a provider
(no request forwarded to it); for others they are not applicable and left out.

The score is the weighted mean of the applicable measures' scores, over the weights of those
measures (a measure whose indicator is missing from the register, or has weight 0, is not
scored); rounded to two decimals. With no weight at all there is no score and no rank. The
rank orders the quarter's scored agencies by score, highest first; equal scores share a rank
(1, 2, 2, 4). The change is the score (and the rank) against the agency's evaluation in the
previous Jalali quarter, if it was scored then. `weakest` names the measures that cost the
agency most points (weight share x (100 - score)), worst first: why it ranks where it does.

Which agencies are evaluated in a quarter: the programme's agencies (national, as the catalog
registers them; the provincial ICT directorates report for provinces and are not evaluated)
that had entered the register before the quarter ended and had not left it before it began
(an agency deactivated later stays in the quarters it was active in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from services.metrics.domain.figures import Cell, Counts, dims
from services.metrics.domain.histogram import BOUNDS_MS, bucket_of, label, percentile
from services.metrics.domain.windows import TEHRAN, Window, window_of
from shared.events.catalog import AgencyRecorded, DeliveryRecorded, ServiceRecorded
from shared.events.exchange import TransactionRecorded
from shared.events.metrics import AgencyEvaluated, EvaluationUnit, MeasureScore

ELECTRONIC = "agency_electronic_services_share"
SMART = "agency_smart_services_share"
WINDOW = "agency_window_connected"
AS_CONSUMER = "agency_exchange_use_as_consumer"
AS_PROVIDER = "agency_exchange_use_as_provider"
ONLINE = "agency_online_deliveries_share"
COMPLETION = "agency_completion_rate"
REFUSALS = "agency_refusals_and_denials_share"
PROVIDER_P95 = "agency_provider_p95_ms"
TIMELINESS = "agency_reporting_timeliness"

ELECTRONIC_FROM = 3
SMART_MATURITY = 5
#: A delivery is reported on time when the catalog recorded it within this of its end.
REPORTED_WITHIN = timedelta(hours=24)
#: Each point (%) of refusals and denials costs this many points of the measure's score.
REFUSAL_PENALTY = 5.0
#: The provider's p95 scores 100 up to FAST_MS and 0 from SLOW_MS, linearly in between.
FAST_MS = 500.0
SLOW_MS = 5_000.0
#: How many measures `weakest` names at most.
WEAKEST = 3

# The quarter counters the worker keeps (metric names of `Cell`s, by agency).
CONSUMER_REQUESTS = "evaluation.consumer_requests"
PROVIDER_REQUESTS = "evaluation.provider_requests"
REFUSED_AS_PROVIDER = "evaluation.refused_as_provider"
DENIED_AS_CONSUMER = "evaluation.denied_as_consumer"
PROVIDER_LATENCY = "evaluation.provider_latency_bucket"
DELIVERIES = "evaluation.deliveries"
DELIVERIES_ONLINE = "evaluation.deliveries_online"
DELIVERIES_COMPLETED = "evaluation.deliveries_completed"
DELIVERIES_TIMELY = "evaluation.deliveries_timely"


@dataclass(frozen=True)
class Measure:
    """One measure of the scorecard: its indicator, default names and unit."""

    indicator: str
    name_fa: str
    name_en: str
    unit: EvaluationUnit


MEASURES: tuple[Measure, ...] = (
    Measure(
        ELECTRONIC, "سهم خدمات الکترونیکی دستگاه", "Share of its services electronic", "percent"
    ),
    Measure(SMART, "سهم خدمات هوشمند دستگاه", "Share of its services smart", "percent"),
    Measure(WINDOW, "اتصال به پنجره ملی", "Connected to the window", "yes_no"),
    Measure(
        AS_CONSUMER,
        "استفاده از مرکز تبادل به عنوان متقاضی",
        "Exchange used as a consumer",
        "count",
    ),
    Measure(
        AS_PROVIDER,
        "استفاده از مرکز تبادل به عنوان ارائه‌دهنده",
        "Exchange used as a provider",
        "count",
    ),
    Measure(ONLINE, "سهم ارائه برخط خدمات", "Share of deliveries online", "percent"),
    Measure(COMPLETION, "نرخ تکمیل خدمات", "Completion rate", "percent"),
    Measure(
        REFUSALS,
        "سهم امتناع‌ها و ردها از درخواست‌ها",
        "Refusals and denials, share of requests",
        "percent",
    ),
    Measure(
        PROVIDER_P95,
        "زمان پاسخ ارائه‌دهنده (صدک ۹۵)",
        "Response time as a provider (p95)",
        "milliseconds",
    ),
    Measure(TIMELINESS, "به‌هنگامی گزارش‌دهی", "Reporting timeliness", "percent"),
)
INDICATORS: tuple[str, ...] = tuple(m.indicator for m in MEASURES)


# -- what events add to the quarter counters --------------------------------------------


def quarter_of(moment: datetime) -> Window:
    return window_of("quarter", moment)


def transaction_increments(transaction: TransactionRecorded) -> list[Cell]:
    """The quarter counters one finished transaction adds one to (by `completed_at`)."""
    quarter = quarter_of(transaction.completed_at)
    consumer = dims(agency=transaction.consumer)
    cells = [Cell(CONSUMER_REQUESTS, consumer, quarter)]
    if transaction.outcome == "denied":
        cells.append(Cell(DENIED_AS_CONSUMER, consumer, quarter))
    provider = transaction.provider
    if provider is not None:
        cells.append(Cell(PROVIDER_REQUESTS, dims(agency=provider), quarter))
        if transaction.outcome == "refused":
            cells.append(Cell(REFUSED_AS_PROVIDER, dims(agency=provider), quarter))
        # The provider's own time: answered or refused, it answered; timed out, it was
        # slower than any bound. Denied and failed requests never waited on it.
        if transaction.outcome in ("answered", "refused") and transaction.provider_ms is not None:
            bucket = bucket_of(transaction.provider_ms)
        elif transaction.outcome == "timed_out":
            bucket = label(BOUNDS_MS[-1])
        else:
            bucket = None
        if bucket is not None:
            cells.append(Cell(PROVIDER_LATENCY, dims(agency=provider, le=bucket), quarter))
    return cells


def delivery_increments(delivery: DeliveryRecorded, recorded_at: datetime) -> list[Cell]:
    """The quarter counters one delivery adds one to (by `finished_at`); `recorded_at` is
    when the catalog recorded the agency's report of it."""
    quarter = quarter_of(delivery.finished_at)
    agency = dims(agency=delivery.agency)
    cells = [Cell(DELIVERIES, agency, quarter)]
    if delivery.channel == "online":
        cells.append(Cell(DELIVERIES_ONLINE, agency, quarter))
    if delivery.outcome == "completed":
        cells.append(Cell(DELIVERIES_COMPLETED, agency, quarter))
    if recorded_at - delivery.finished_at <= REPORTED_WITHIN:
        cells.append(Cell(DELIVERIES_TIMELY, agency, quarter))
    return cells


# -- the register, as it stood ----------------------------------------------------------


@dataclass(frozen=True)
class ServiceVersion:
    """One revision of a service, and when the catalog recorded it."""

    recorded_at: datetime
    revision: int
    agency: str
    maturity: int
    published: bool

    @classmethod
    def of(cls, service: ServiceRecorded, recorded_at: datetime) -> ServiceVersion:
        return cls(
            recorded_at,
            service.revision,
            service.agency,
            service.maturity,
            service.status == "published",
        )


def with_version(history: list[ServiceVersion], version: ServiceVersion) -> list[ServiceVersion]:
    """The service's revisions with `version` added (by revision; a revision already
    there changes nothing)."""
    if any(v.revision == version.revision for v in history):
        return history
    return sorted([*history, version], key=lambda v: v.revision)


def version_at(history: Iterable[ServiceVersion], moment: datetime) -> ServiceVersion | None:
    """The service's latest revision recorded before `moment`, if any."""
    before = [v for v in history if v.recorded_at < moment]
    return max(before, key=lambda v: v.revision) if before else None


@dataclass(frozen=True)
class AgencyEntry:
    """An agency as the evaluation needs it: names, whether it is one of the programme's
    (national), since when it is connected to the window, and when it entered and left
    the register."""

    code: str
    name_fa: str
    name_en: str
    national: bool
    window_since: date | None
    entered: datetime
    left: datetime | None
    revision: int

    def evaluated_in(self, quarter: Window) -> bool:
        """Whether the agency is evaluated in the quarter (the module's rule)."""
        assert quarter.start is not None
        assert quarter.end is not None
        return (
            self.national
            and self.entered < quarter.end
            and (self.left is None or self.left > quarter.start)
        )


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=TEHRAN)


def next_entry(
    current: AgencyEntry | None, agency: AgencyRecorded, recorded_at: datetime
) -> AgencyEntry | None:
    """The agency's entry after this record; None if the record is one already applied
    (an earlier or the same revision)."""
    if current is not None and current.revision >= agency.revision:
        return None
    # It entered when first seen, or earlier if the register says it was connected before.
    known = [recorded_at if current is None else current.entered]
    known += [
        _midnight(d)
        for d in (agency.window_connected_since, agency.exchange_connected_since)
        if d is not None
    ]
    if agency.active:
        left = None
    elif current is not None and current.left is not None:
        left = current.left
    else:
        left = recorded_at
    return AgencyEntry(
        code=agency.code,
        name_fa=agency.name_fa,
        name_en=agency.name_en,
        national=agency.province is None,
        window_since=agency.window_connected_since,
        entered=min(known),
        left=left,
        revision=agency.revision,
    )


# -- the scorecard ----------------------------------------------------------------------


@dataclass(frozen=True)
class Weighting:
    """What the register says of a measure's indicator: its weight and names."""

    weight: float
    name_fa: str
    name_en: str


@dataclass(frozen=True)
class Reading:
    """An agency's figure for a measure, before it is scored."""

    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    applicable: bool = True


def share(numerator: float, denominator: float) -> Reading:
    """A percentage figure; without a denominator there is no figure (value None)."""
    if denominator <= 0:
        return Reading(None, numerator, denominator)
    return Reading(round(100.0 * numerator / denominator, 4), numerator, denominator)


def normalised(indicator: str, figure: Reading) -> float | None:
    """The figure's score, 0-100 (the module's table); None if not applicable; a figure
    of nothing scores 0."""
    if not figure.applicable:
        return None
    value = figure.value
    if value is None:
        return 0.0
    if indicator in (AS_CONSUMER, AS_PROVIDER):
        return 100.0 if value >= 1 else 0.0
    if indicator == WINDOW:
        return 100.0 if value >= 1 else 0.0
    if indicator == REFUSALS:
        return _clamp(100.0 - REFUSAL_PENALTY * value)
    if indicator == PROVIDER_P95:
        return _clamp(100.0 * (SLOW_MS - value) / (SLOW_MS - FAST_MS))
    return _clamp(value)


def _clamp(score: float) -> float:
    return round(min(100.0, max(0.0, score)), 4)


def _count(counts: Counts, metric: str, agency: str, quarter: Window) -> float:
    return counts.value(Cell(metric, dims(agency=agency), quarter))


def provider_p95(counts: Counts, agency: str, quarter: Window) -> Reading:
    histogram = {
        label(bound): counts.value(
            Cell(PROVIDER_LATENCY, dims(agency=agency, le=label(bound)), quarter)
        )
        for bound in BOUNDS_MS
    }
    observed = sum(histogram.values())
    if observed == 0:
        return Reading(None, None, 0.0, applicable=False)
    return Reading(round(percentile(histogram, 0.95), 3), None, observed)


def figures_of(
    agency: AgencyEntry,
    quarter: Window,
    counts: Counts,
    services: Iterable[ServiceVersion],
) -> dict[str, Reading]:
    """The agency's figure for each measure in the quarter; `services` are its services as
    the register held them at the quarter's end (or now)."""
    assert quarter.end is not None
    code = agency.code
    published = [s for s in services if s.published]
    last_day = (quarter.end.astimezone(TEHRAN) - timedelta(seconds=1)).date()
    consumer = _count(counts, CONSUMER_REQUESTS, code, quarter)
    provider = _count(counts, PROVIDER_REQUESTS, code, quarter)
    refused = _count(counts, REFUSED_AS_PROVIDER, code, quarter)
    denied = _count(counts, DENIED_AS_CONSUMER, code, quarter)
    deliveries = _count(counts, DELIVERIES, code, quarter)
    requests = consumer + provider
    refusals = share(refused + denied, requests)
    return {
        ELECTRONIC: share(
            sum(1 for s in published if s.maturity >= ELECTRONIC_FROM), len(published)
        ),
        SMART: share(sum(1 for s in published if s.maturity == SMART_MATURITY), len(published)),
        WINDOW: Reading(
            1.0 if agency.window_since is not None and agency.window_since <= last_day else 0.0
        ),
        AS_CONSUMER: Reading(consumer),
        AS_PROVIDER: Reading(provider),
        ONLINE: share(_count(counts, DELIVERIES_ONLINE, code, quarter), deliveries),
        COMPLETION: share(_count(counts, DELIVERIES_COMPLETED, code, quarter), deliveries),
        REFUSALS: Reading(
            refusals.value, refusals.numerator, refusals.denominator, applicable=requests > 0
        ),
        PROVIDER_P95: provider_p95(counts, code, quarter),
        TIMELINESS: share(_count(counts, DELIVERIES_TIMELY, code, quarter), deliveries),
    }


@dataclass(frozen=True)
class Scorecard:
    """An agency's measures and score in a quarter, before ranking."""

    agency: AgencyEntry
    quarter: Window
    measures: tuple[MeasureScore, ...]
    score: float | None


def scorecard(
    agency: AgencyEntry,
    quarter: Window,
    figures: Mapping[str, Reading],
    weighting: Mapping[str, Weighting],
) -> Scorecard:
    """The agency's measures, each scored and weighted, and its weighted score."""
    scored: list[tuple[Measure, Reading, float | None, float]] = []
    for measure in MEASURES:
        figure = figures[measure.indicator]
        known = weighting.get(measure.indicator)
        weight = known.weight if known is not None else 0.0
        scored.append((measure, figure, normalised(measure.indicator, figure), weight))
    total = sum(w for _, _, s, w in scored if s is not None)
    measures = []
    for measure, figure, score, weight in scored:
        known = weighting.get(measure.indicator)
        lost = weight / total * (100.0 - score) if total > 0 and score is not None else 0.0
        measures.append(
            MeasureScore(
                indicator=measure.indicator,
                name_fa=known.name_fa if known else measure.name_fa,
                name_en=known.name_en if known else measure.name_en,
                unit=measure.unit,
                value=figure.value,
                numerator=figure.numerator,
                denominator=figure.denominator,
                score=score,
                weight=weight,
                applicable=figure.applicable,
                points_lost=round(lost, 2),
            )
        )
    score = None
    if total > 0:
        points = sum(w * s for _, _, s, w in scored if s is not None)
        score = round(points / total, 2)
    return Scorecard(agency, quarter, tuple(measures), score)


def ranks(scores: Mapping[str, float | None]) -> dict[str, int]:
    """Each scored agency's rank, highest score first; equal scores share a rank."""
    ordered = sorted(
        ((score, code) for code, score in scores.items() if score is not None),
        key=lambda pair: (-pair[0], pair[1]),
    )
    out: dict[str, int] = {}
    previous: float | None = None
    rank = 0
    for position, (score, code) in enumerate(ordered, start=1):
        if score != previous:
            rank, previous = position, score
        out[code] = rank
    return out


def weakest(measures: Iterable[MeasureScore]) -> list[str]:
    """The measures that cost the agency points, most first (ties in the scorecard's order)."""
    costly = [m for m in measures if m.points_lost > 0]
    costly.sort(key=lambda m: -m.points_lost)
    return [m.indicator for m in costly[:WEAKEST]]


def previous_quarter(quarter: Window) -> Window:
    assert quarter.start is not None
    return quarter_of(quarter.start - timedelta(seconds=1))


def _jalali_day_of(moment: datetime) -> str:
    return window_of("day", moment).label


@dataclass
class Evaluation:
    """One quarter's scorecards, ranked."""

    quarter: Window
    cards: dict[str, Scorecard] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)


def evaluate_quarter(
    quarter: Window,
    agencies: Iterable[AgencyEntry],
    counts: Counts,
    services_of: Mapping[str, list[ServiceVersion]],
    weighting: Mapping[str, Weighting],
) -> Evaluation:
    """Every evaluated agency's scorecard in the quarter, and the ranks."""
    evaluation = Evaluation(quarter)
    for agency in agencies:
        if not agency.evaluated_in(quarter):
            continue
        figures = figures_of(agency, quarter, counts, services_of.get(agency.code, []))
        evaluation.cards[agency.code] = scorecard(agency, quarter, figures, weighting)
    evaluation.ranks = ranks({code: card.score for code, card in evaluation.cards.items()})
    return evaluation


def published_event(
    evaluation: Evaluation, code: str, previous: Evaluation | None, now: datetime
) -> AgencyEvaluated:
    """The record of one agency's evaluation, with its change since `previous`."""
    card = evaluation.cards[code]
    quarter = evaluation.quarter
    assert quarter.start is not None
    assert quarter.end is not None
    rank = evaluation.ranks.get(code)
    before = previous.cards.get(code) if previous is not None else None
    previous_score = before.score if before is not None else None
    previous_rank = previous.ranks.get(code) if previous is not None else None
    return AgencyEvaluated(
        agency=code,
        agency_name_fa=card.agency.name_fa,
        agency_name_en=card.agency.name_en,
        quarter=quarter.label,
        first_day=_jalali_day_of(quarter.start),
        last_day=_jalali_day_of(quarter.end - timedelta(seconds=1)),
        quarter_start=quarter.start,
        quarter_end=quarter.end,
        closed=now >= quarter.end,
        measures=list(card.measures),
        score=card.score,
        rank=rank,
        agencies_ranked=len(evaluation.ranks),
        previous_quarter=previous_quarter(quarter).label,
        previous_score=previous_score,
        previous_rank=previous_rank,
        score_change=(
            round(card.score - previous_score, 2)
            if card.score is not None and previous_score is not None
            else None
        ),
        rank_change=(
            previous_rank - rank if rank is not None and previous_rank is not None else None
        ),
        weakest=weakest(card.measures),
    )


def quarters_to_evaluate(counted: Iterable[Cell], now: datetime) -> list[Window]:
    """The quarters with any counted activity, and the running one, oldest first."""
    found = {cell.window for cell in counted if cell.window.granularity == "quarter"}
    found.add(quarter_of(now))
    return sorted(found, key=lambda w: w.start or now)


def evaluate(
    counted: Iterable[Cell],
    counts: Counts,
    agencies: Iterable[AgencyEntry],
    services: Iterable[list[ServiceVersion]],
    weighting: Mapping[str, Weighting],
    now: datetime,
) -> list[AgencyEvaluated]:
    """Every evaluated agency's record in every quarter to evaluate, as things stand at
    `now`; `counted` are the counters' cells, `services` each service's revisions."""
    histories = list(services)
    roster = list(agencies)
    out: list[AgencyEvaluated] = []
    done: dict[str, Evaluation] = {}
    for quarter in quarters_to_evaluate(counted, now):
        assert quarter.end is not None
        as_of = min(quarter.end, now)
        services_of: dict[str, list[ServiceVersion]] = {}
        for history in histories:
            version = version_at(history, as_of)
            if version is not None:
                services_of.setdefault(version.agency, []).append(version)
        evaluation = evaluate_quarter(quarter, roster, counts, services_of, weighting)
        done[quarter.label] = evaluation
        # A previous quarter without any activity was not evaluated: no change to show.
        previous = done.get(previous_quarter(quarter).label)
        for code in sorted(evaluation.cards):
            out.append(published_event(evaluation, code, previous, now))
    return out
