"""The metrics service's HTTP API: current figures, time series, and the live dashboard.

Everything here reads the service's own projection of the metrics topics; nothing calls
another service. `/api/stream` pushes the dashboard's data (server-sent events) whenever
the projection changes, so the page updates without reloading.

`/api/programme/*` is the programme register: anyone reads its indicators, targets (each
with where it stands) and reported figures; operators' systems holding `programme:admin`
(identity gives it to the platform operator's agencies only) write them.

`/api/provinces/*` are the provincial ICT directorates' weekly reports: a directorate's
systems holding `programme:report` (identity gives it to the directorates only) submit
their own province's; anyone reads them, and who is missing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from importlib import resources
from string import Template
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sse_starlette.sse import EventSourceResponse

from services.metrics import evaluation_reports, use_cases
from services.metrics import messages as _messages  # noqa: F401  (registers the codes)
from services.metrics.documents import csv_document
from services.metrics.domain.programme_register import (
    IndicatorDefinition,
    ObservationReport,
    TargetEntry,
    day_in_tehran,
)
from services.metrics.domain.provincial_reports import load_projects
from services.metrics.domain.queries import FigureQuery, parse_dimensions, parse_granularity
from services.metrics.domain.reference import load_reference
from services.metrics.domain.windows import window_of
from services.metrics.evaluations_page import evaluations_page
from services.metrics.league_page import league_page
from services.metrics.programme_page import programme_page
from services.metrics.provinces_page import current_week, provinces_page
from services.metrics.report_page import report_page
from services.metrics.settings import MetricsSettings
from services.metrics.storage import (
    EvaluationsStorage,
    MetricsStorage,
    ProgrammeStorage,
    ReportFilesStorage,
)
from services.metrics.use_cases import evaluations, programme, provinces, weekly_reports
from services.metrics.use_cases.provinces import ReportEntry
from shared.auth import Principal
from shared.db import Pool
from shared.errors import Invalid, NotFound
from shared.events.programme import (
    INDICATOR_CODE_PATTERN,
    REPORT_PERIOD_PATTERN,
    REPORT_SUBJECT_PATTERN,
    TARGET_ID_PATTERN,
    ReportFormat,
    ReportKind,
    Scope,
)
from shared.http import ProblemError
from shared.runtime import RuntimeDep, require_scopes
from shared.unit_of_work import transaction

router = APIRouter()
reference = load_reference()
STREAM_INTERVAL_SECONDS = 1.0
_STATIC = resources.files("services.metrics") / "static"
_ASSETS = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "programme.js": "text/javascript",
    "programme.css": "text/css",
    "report.js": "text/javascript",
    "report.css": "text/css",
    "provinces.js": "text/javascript",
    "provinces.css": "text/css",
    "league.css": "text/css",
    "evaluations.css": "text/css",
}


@router.get("/api/metrics", tags=["figures"], summary="Current figures, filtered")
async def figures(
    runtime: RuntimeDep,
    metric: str | None = None,
    prefix: Annotated[str | None, Query(description="e.g. `exchange.`")] = None,
    granularity: str | None = None,
    window: Annotated[str | None, Query(description="A Jalali window label")] = None,
    dimensions: Annotated[
        str | None, Query(description="`name=value,...`; empty for totals only")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    query = FigureQuery.parse(
        metric=metric,
        prefix=prefix,
        granularity=granularity,
        window_label=window,
        dimensions=dimensions,
        limit=limit,
    )
    async with transaction(runtime.pool, MetricsStorage) as work:
        values = await use_cases.current_figures(work, query)
    return {"figures": [v.as_json() for v in values]}


@router.get("/api/metrics/{metric}/series", tags=["figures"], summary="A figure over time")
async def figure_series(
    metric: str,
    runtime: RuntimeDep,
    granularity: str = "day",
    dimensions: str = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 30,
) -> dict[str, Any]:
    chosen, named = parse_granularity(granularity), parse_dimensions(dimensions)
    async with transaction(runtime.pool, MetricsStorage) as work:
        values = await use_cases.figure_series(work, metric, chosen, named, limit)
    return {
        "metric": metric,
        "granularity": chosen,
        "dimensions": named,
        "points": [
            {
                "window_label": v.window_label,
                "window_start": v.window_start.isoformat() if v.window_start else None,
                "value": v.value,
                "unit": v.unit,
            }
            for v in values
        ],
    }


# -- the programme register: public reads, operators' writes (`programme:admin`) ---------

ProgrammeAdmin = Annotated[Principal, Depends(require_scopes("programme:admin"))]
IndicatorCodeInPath = Annotated[
    str, Path(pattern=INDICATOR_CODE_PATTERN, description="e.g. `smart_services_share`")
]
TargetIdInPath = Annotated[
    str, Path(pattern=TARGET_ID_PATTERN, description="e.g. `plan7.smart-services-1403`")
]


def _operator(principal: Principal) -> str:
    """Who the register's history names for a write: the operator's system, as its token
    names it."""
    return f"operator:{principal.agency}:{principal.subject}"


def _today() -> date:
    return day_in_tehran(datetime.now(UTC))


async def programme_targets(pool: Pool) -> list[dict[str, Any]]:
    """Where every target stands (as `GET /api/programme/targets` lists them)."""
    async with transaction(pool, ProgrammeStorage) as work:
        standings = await programme.target_standings(work, _today())
    return [standing.as_json() for standing in standings]


@router.get("/api/programme/indicators", tags=["programme"], summary="The programme's indicators")
async def programme_indicators(runtime: RuntimeDep) -> dict[str, Any]:
    async with transaction(runtime.pool, ProgrammeStorage) as work:
        indicators = await programme.list_indicators(work)
    return {"indicators": [i.model_dump(mode="json") for i in indicators]}


@router.get(
    "/api/programme/targets",
    tags=["programme"],
    summary="Where each target of the programme stands",
)
async def programme_target_list(runtime: RuntimeDep) -> dict[str, Any]:
    """Each target's latest progress as the metrics worker published it; a target it has
    not evaluated yet is listed with its own terms and status `no_data`."""
    return {"targets": await programme_targets(runtime.pool)}


@router.get(
    "/api/programme/targets/{target_id}",
    tags=["programme"],
    summary="Where a target stands, with every revision of it",
)
async def programme_target(target_id: TargetIdInPath, runtime: RuntimeDep) -> dict[str, Any]:
    async with transaction(runtime.pool, ProgrammeStorage) as work:
        page = await programme.target_page(work, target_id, _today())
    return {
        **page.standing.as_json(),
        "history": [
            {**kept.record.model_dump(mode="json"), "recorded_at": kept.recorded_at.isoformat()}
            for kept in page.history
        ],
    }


@router.get(
    "/api/programme/observations",
    tags=["programme"],
    summary="The figures reported for the programme's indicators",
)
async def programme_observations(
    runtime: RuntimeDep,
    indicator: Annotated[str | None, Query(pattern=INDICATOR_CODE_PATTERN)] = None,
    scope: Scope | None = None,
    scope_code: Annotated[str | None, Query(max_length=40, description="`IR-15`, `tax`")] = None,
) -> dict[str, Any]:
    """The current figure of each indicator, scope and day, and how many revisions it had
    (a correction supersedes; the earlier revisions are kept)."""
    async with transaction(runtime.pool, ProgrammeStorage) as work:
        figures = await programme.list_observations(work, indicator, scope, scope_code)
    return {
        "observations": [
            {**f.observation.model_dump(mode="json"), "revisions": f.revisions} for f in figures
        ]
    }


@router.put(
    "/api/programme/indicators/{code}",
    tags=["programme"],
    summary="Define or change an indicator (operators)",
)
async def put_programme_indicator(
    code: IndicatorCodeInPath,
    definition: IndicatorDefinition,
    principal: ProgrammeAdmin,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    async with transaction(runtime.pool, ProgrammeStorage) as work:
        written = await programme.record_indicator(work, code, definition, _operator(principal))
    return {"outcome": written.outcome, "indicator": written.record.model_dump(mode="json")}


@router.put(
    "/api/programme/targets/{target_id}",
    tags=["programme"],
    summary="Set or change a target (operators)",
)
async def put_programme_target(
    target_id: TargetIdInPath,
    entry: TargetEntry,
    principal: ProgrammeAdmin,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    async with transaction(runtime.pool, ProgrammeStorage) as work:
        written = await programme.record_target(work, target_id, entry, _operator(principal))
    return {"outcome": written.outcome, "target": written.record.model_dump(mode="json")}


@router.post(
    "/api/programme/observations",
    tags=["programme"],
    summary="Report a figure, or correct one (operators)",
)
async def post_programme_observation(
    report: ObservationReport, principal: ProgrammeAdmin, runtime: RuntimeDep
) -> dict[str, Any]:
    """A figure for an indicator, scope and Jalali day; a different figure for the same
    three is a correction: the next revision, the earlier one kept."""
    async with transaction(runtime.pool, ProgrammeStorage) as work:
        written = await programme.record_observation(work, report, _operator(principal), _today())
    return {"outcome": written.outcome, "observation": written.record.model_dump(mode="json")}


# -- the provincial directorates' weekly reports (`programme:report` to submit) ----------

Reporter = Annotated[Principal, Depends(require_scopes("programme:report"))]
ProvinceInPath = Annotated[str, Path(max_length=8, description="e.g. `IR-15`")]
WeekInPath = Annotated[str, Path(max_length=16, description="A Jalali week, e.g. `1405-W36`")]
PROJECTS = load_projects()


@router.put(
    "/api/provinces/{province}/reports/{week}",
    tags=["provinces"],
    summary="Submit or correct the province's weekly report (its directorate)",
)
async def put_provincial_report(
    province: ProvinceInPath,
    week: WeekInPath,
    entry: ReportEntry,
    principal: Reporter,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """The directorate's figures and projects' progress for a Jalali week. A refusal is a
    422 `report_refused` listing, in `errors`, each broken rule with its field and its
    message in Persian and English; a resubmission for the same week is a correction."""
    async with transaction(runtime.pool, ProgrammeStorage) as work:
        submitted = await provinces.submit_report(
            work,
            province,
            week,
            entry,
            agency=principal.agency,
            projects=PROJECTS,
            now=datetime.now(UTC),
        )
    kept = submitted.report
    return {
        "outcome": submitted.outcome,
        "report": {
            **kept.record.model_dump(mode="json"),
            "submitted_at": kept.recorded_at.isoformat(),
        },
        "observations": [o.model_dump(mode="json") for o in submitted.observations],
    }


@router.get(
    "/api/provinces/reports/{week}",
    tags=["provinces"],
    summary="Every province's report for a week, and who is missing",
)
async def provincial_reports_of_week(week: WeekInPath, runtime: RuntimeDep) -> dict[str, Any]:
    """Each province's current report (late flag, figures with the change since its
    previous report) or its status: `missing` once the week has ended, `awaited` before;
    the week's `league` (each reporting province's score and rank, and its rank the week
    before; the national summary: roll-up, who did not report, top and bottom five) as
    the reports stand now; and the `files` generated for the week (their latest revisions)."""
    return await week_with_league(runtime.pool, week)


async def week_with_league(pool: Pool, week: str) -> dict[str, Any]:
    """The week's overview with its league and files (as the API answers it)."""
    now = datetime.now(UTC)
    async with transaction(pool, ProgrammeStorage) as work:
        overview = await provinces.week_overview(work, week, now)
        league = await weekly_reports.week_league(work, week, now, PROJECTS)
    async with transaction(pool, ReportFilesStorage) as files:
        kept = [
            *await files.report_files_of("national-week", week),
            *await files.report_files_of("province-week", week),
        ]
    return overview.as_json() | {
        "league": league.as_json(),
        "files": [record.model_dump(mode="json") for record in kept],
    }


@router.get(
    "/api/provinces/allocation",
    tags=["provinces"],
    summary="A budget split among the provinces by their scores for a week",
    response_model=None,
)
async def provincial_allocation(
    runtime: RuntimeDep,
    week: Annotated[str, Query(max_length=16, description="A Jalali week, e.g. `1405-W36`")],
    budget: Annotated[
        str, Query(max_length=40, description="Whole rials; Persian digits and separators too")
    ],
    answer_as: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> dict[str, Any] | Response:
    """The rule (services/metrics/README.md): in proportion to each province's score for
    the week; a province that did not report, or scored 0, gets nothing; whole rials that
    sum exactly to the budget (largest remainder). A 422 `week_malformed`,
    `week_in_future`, `budget_invalid` or `no_scores` says why, in Persian and English."""
    async with transaction(runtime.pool, ProgrammeStorage) as work:
        split = await weekly_reports.allocation(work, week, budget, datetime.now(UTC), PROJECTS)
    answer = split.as_json()
    if answer_as == "json":
        return answer
    content = csv_document(
        [
            "rank / رتبه",
            "province / استان",
            "name_fa / نام",
            "name_en",
            "score / امتیاز",
            "amount (rials) / سهم (ریال)",
        ],
        [
            [r["rank"], r["province"], r["name_fa"], r["name_en"], r["score"], r["amount"]]
            for r in answer["provinces"]
        ],
    )
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="allocation-{split.league.week}.csv"'
        },
    )


@router.get(
    "/api/provinces/{province}/reports",
    tags=["provinces"],
    summary="A province's weekly reports, each with its revisions",
)
async def provincial_reports_of_province(
    province: ProvinceInPath, runtime: RuntimeDep
) -> dict[str, Any]:
    async with transaction(runtime.pool, ProgrammeStorage) as work:
        weeks = await provinces.province_reports(work, province)
    return {
        "province": province,
        "projects": [
            {"code": p.code, "scope": p.scope, "name_fa": p.name_fa, "name_en": p.name_en}
            for p in PROJECTS
            if province in p.provinces
        ],
        "reports": [week.as_json() for week in weeks],
    }


# -- the quarterly evaluation of agencies ------------------------------------------------

QuarterInPath = Annotated[str, Path(max_length=16, description="A Jalali quarter, `1405-Q3`")]
AgencyInPath = Annotated[str, Path(max_length=40, description="An agency's code, `tax`")]


async def evaluation_table(pool: Pool, quarter: str) -> dict[str, Any]:
    """The quarter's league table as `GET /api/evaluations/{quarter}` answers it."""
    async with transaction(pool, EvaluationsStorage) as work:
        table = await evaluations.league_table(work, quarter)
    return table.as_json()


@router.get(
    "/api/evaluations",
    tags=["evaluations"],
    summary="The quarters agencies have been evaluated in",
)
async def evaluation_quarters(runtime: RuntimeDep) -> dict[str, Any]:
    async with transaction(runtime.pool, EvaluationsStorage) as work:
        quarters = await work.evaluated_quarters()
    return {"current": window_of("quarter", datetime.now(UTC)).label, "quarters": quarters}


@router.get(
    "/api/evaluations/{quarter}",
    tags=["evaluations"],
    summary="A quarter's evaluation of agencies: the league table",
)
async def evaluation_league(quarter: QuarterInPath, runtime: RuntimeDep) -> dict[str, Any]:
    """Every agency evaluated in the Jalali quarter (`1405-Q3`), best rank first (equal
    scores share a rank; unscored agencies last): each measure's figure, score and weight,
    the score, the rank, the change since the previous quarter and the measures that cost it
    most. A malformed quarter is a 422 `invalid_quarter`; one without evaluations a 404
    `evaluation_not_found`."""
    return await evaluation_table(runtime.pool, quarter)


@router.get(
    "/api/evaluations/{quarter}/{agency}",
    tags=["evaluations"],
    summary="An agency's scorecard in a quarter",
)
async def evaluation_of_agency(
    quarter: QuarterInPath, agency: AgencyInPath, runtime: RuntimeDep
) -> dict[str, Any]:
    async with transaction(runtime.pool, EvaluationsStorage) as work:
        evaluation, changed = await evaluations.agency_evaluation(work, quarter, agency)
    return {**evaluation.model_dump(mode="json"), "updated_at": changed.isoformat()}


@router.post(
    "/api/evaluations/{quarter}/report",
    tags=["evaluations"],
    summary="Generate the quarter's printable report now (operators)",
)
async def generate_evaluation_report(
    quarter: QuarterInPath, principal: ProgrammeAdmin, runtime: RuntimeDep
) -> dict[str, Any]:
    """The report (HTML and PDF) from the quarter's scorecards as they stand, also for a
    running quarter; a file whose content changed is its next revision, announced on
    `programme.reports` (it is generated by itself once the quarter ends, and again as its
    figures change)."""
    generated = await evaluation_reports.generate_report(runtime.pool, quarter, datetime.now(UTC))
    return {
        "quarter": quarter,
        "requested_by": _operator(principal),
        "files": [
            {"outcome": kept.outcome, **kept.file.record.model_dump(mode="json")}
            for kept in (generated.html, generated.pdf)
        ],
    }


# -- generated report files (weekly reports, evaluations), every revision kept ----------

ReportKindInPath = Annotated[ReportKind, Path(description="`province-week`, `national-week`, ...")]
PeriodInPath = Annotated[
    str, Path(pattern=REPORT_PERIOD_PATTERN, description="A Jalali week or quarter")
]
SubjectInPath = Annotated[
    str, Path(pattern=REPORT_SUBJECT_PATTERN, description="Whom it is about, e.g. `IR-15`")
]
RevisionQuery = Annotated[
    int | None, Query(ge=1, le=1_000_000, description="A revision; the latest if none")
]
# A report's HTML carries its own styles and fetches nothing.
_REPORT_FILE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none';"
    " base-uri 'none'; form-action 'none'"
)


async def _report_file(
    pool: Pool,
    kind: ReportKind,
    period: str,
    subject: str | None,
    file_format: ReportFormat,
    revision: int | None,
) -> Response:
    async with transaction(pool, ReportFilesStorage) as work:
        stored = await work.report_file(kind, period, subject, file_format, revision=revision)
    if stored is None:
        raise ProblemError(404, "report_file_not_found")
    record = stored.record
    headers = {
        "content-disposition": f'inline; filename="{stored.file_name}"',
        "etag": f'"{record.sha256}"',
        "x-report-revision": str(record.revision),
    }
    if file_format == "html":
        headers["content-security-policy"] = _REPORT_FILE_POLICY
    return Response(stored.content, media_type=stored.media_type, headers=headers)


@router.get(
    "/api/reports/{kind}/{period}.{file_format}",
    tags=["reports"],
    summary="A generated report file of a whole period (HTML, PDF or CSV)",
    response_class=Response,
)
async def report_file(
    kind: ReportKindInPath,
    period: PeriodInPath,
    file_format: ReportFormat,
    runtime: RuntimeDep,
    revision: RevisionQuery = None,
) -> Response:
    """The file's latest revision, or the one asked for; each revision was announced on
    `programme.reports`. A 404 `report_file_not_found` if it was never generated."""
    return await _report_file(runtime.pool, kind, period, None, file_format, revision)


@router.get(
    "/api/reports/{kind}/{period}/{subject}.{file_format}",
    tags=["reports"],
    summary="A generated report file about one province or agency (HTML, PDF or CSV)",
    response_class=Response,
)
async def subject_report_file(
    kind: ReportKindInPath,
    period: PeriodInPath,
    subject: SubjectInPath,
    file_format: ReportFormat,
    runtime: RuntimeDep,
    revision: RevisionQuery = None,
) -> Response:
    """As `/api/reports/{kind}/{period}.{format}`, for a file about one subject (a
    province's weekly report: `/api/reports/province-week/1405-W36/IR-15.pdf`)."""
    return await _report_file(runtime.pool, kind, period, subject, file_format, revision)


@router.get(
    "/provinces/report",
    tags=["provinces"],
    summary="The weekly report form of a provincial directorate (HTML)",
    response_class=HTMLResponse,
)
async def provincial_report_form(
    runtime: RuntimeDep, lang: Literal["fa", "en"] = "fa"
) -> HTMLResponse:
    """A plain form: the browser gets the directorate's token from identity itself, then
    submits with `PUT /api/provinces/{province}/reports/{week}`."""
    settings = runtime.settings
    if not isinstance(settings, MetricsSettings):
        raise TypeError("the metrics service runs with MetricsSettings")
    page = report_page(lang, settings.identity_public_url, datetime.now(UTC))
    # The page talks to this service and to identity's token endpoint, and nothing else.
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        f" connect-src 'self' {settings.identity_public_url.rstrip('/')};"
        " form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    )
    return HTMLResponse(page, headers={"content-security-policy": policy})


async def dashboard_data(pool: Pool) -> dict[str, Any]:
    """Everything the dashboard shows, from the projection."""
    async with transaction(pool, MetricsStorage) as work:
        return await use_cases.dashboard(work, reference, datetime.now(UTC))


async def last_change(pool: Pool) -> datetime | None:
    async with transaction(pool, MetricsStorage) as work:
        return await use_cases.last_change(work)


@router.get("/api/dashboard", tags=["dashboard"], summary="The dashboard's data")
async def dashboard_json(runtime: RuntimeDep) -> dict[str, Any]:
    return await dashboard_data(runtime.pool)


@router.get("/api/stream", tags=["dashboard"], summary="The dashboard's data, live (SSE)")
async def dashboard_stream(request: Request, runtime: RuntimeDep) -> EventSourceResponse:
    async def changes() -> AsyncIterator[dict[str, str]]:
        seen: datetime | None = None
        first = True
        while not await request.is_disconnected():
            changed = await last_change(runtime.pool)
            if first or changed != seen:
                first, seen = False, changed
                data = await dashboard_data(runtime.pool)
                yield {"event": "dashboard", "data": json.dumps(data, ensure_ascii=False)}
            await asyncio.sleep(STREAM_INTERVAL_SECONDS)

    return EventSourceResponse(changes(), ping=15)


@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    return RedirectResponse("/dashboard")


@router.get(
    "/dashboard",
    tags=["dashboard"],
    summary="The live dashboard (HTML)",
    response_class=HTMLResponse,
)
async def dashboard_page(runtime: RuntimeDep, lang: Literal["fa", "en"] = "fa") -> HTMLResponse:
    data = await dashboard_data(runtime.pool)
    # Embedded as JSON in a script element: `<` is escaped so no text can close it.
    initial = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    page = Template((_STATIC / "dashboard.html").read_text("utf-8")).substitute(
        lang=lang,
        dir="rtl" if lang == "fa" else "ltr",
        title="پایش برنامه دولت هوشمند" if lang == "fa" else "Smart government programme",
        initial=initial,
    )
    return HTMLResponse(page)


@router.get("/static/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    if name not in _ASSETS:
        raise ProblemError(404, "not_found")
    return Response((_STATIC / name).read_bytes(), media_type=_ASSETS[name])


@router.get(
    "/dashboard/programme",
    tags=["dashboard"],
    summary="The programme's targets and where each stands (HTML)",
    response_class=HTMLResponse,
)
async def programme_dashboard(
    runtime: RuntimeDep, lang: Literal["fa", "en"] = "fa"
) -> HTMLResponse:
    """The targets as `GET /api/programme/targets` lists them, embedded in the page, whose
    script renders them and polls that API every 30 seconds."""
    return HTMLResponse(programme_page(lang, await programme_targets(runtime.pool)))


@router.get(
    "/dashboard/provinces",
    tags=["dashboard"],
    summary="The provinces' weekly reports, a week at a time (HTML)",
    response_class=HTMLResponse,
)
async def provinces_dashboard(
    runtime: RuntimeDep,
    lang: Literal["fa", "en"] = "fa",
    week: Annotated[
        str | None, Query(max_length=16, description="A Jalali week, e.g. `1405-W36`")
    ] = None,
    province: Annotated[
        str | None, Query(max_length=8, description="The province charted, e.g. `IR-15`")
    ] = None,
) -> HTMLResponse:
    """The week's overview as `GET /api/provinces/reports/{week}` answers it (the current
    week by default), embedded in the page, whose script renders it, polls that API every
    30 seconds and charts the chosen province's weeks from
    `GET /api/provinces/{province}/reports`. A malformed week is a 422 `report_refused`."""
    now = datetime.now(UTC)
    async with transaction(runtime.pool, ProgrammeStorage) as work:
        overview = await provinces.week_overview(work, week or current_week(now), now)
    page = provinces_page(lang, overview.as_json(), now, province)
    # The page talks to this service alone; its form (the province) comes back here.
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return HTMLResponse(page, headers={"content-security-policy": policy})


@router.get(
    "/dashboard/provinces/league",
    tags=["dashboard"],
    summary="The provinces' weekly league table, and a budget split by it (HTML)",
    response_class=HTMLResponse,
)
async def provinces_league_dashboard(
    runtime: RuntimeDep,
    lang: Literal["fa", "en"] = "fa",
    week: Annotated[
        str | None, Query(max_length=16, description="A Jalali week; the last ended by default")
    ] = None,
    budget: Annotated[str | None, Query(max_length=40, description="Rials to split")] = None,
) -> HTMLResponse:
    """The week's league table, top and bottom five, the provinces that did not report,
    the week's files, and (with `budget`) the performance-based allocation; rendered on
    the server, so it reads without a script. A malformed week is a 422."""
    now = datetime.now(UTC)
    chosen = week or weekly_reports.previous_week(current_week(now))
    data = await week_with_league(runtime.pool, chosen)
    split: dict[str, Any] | None = None
    refusal: str | None = None
    if budget:
        try:
            async with transaction(runtime.pool, ProgrammeStorage) as work:
                allocated = await weekly_reports.allocation(work, chosen, budget, now, PROJECTS)
            split = allocated.as_json()
        except Invalid as refused:
            refusal = refused.code
    page = league_page(lang, data, now, budget=budget, allocation=split, refusal=refusal)
    policy = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    )
    return HTMLResponse(page, headers={"content-security-policy": policy})


@router.get(
    "/dashboard/evaluations",
    tags=["dashboard"],
    summary="The quarterly evaluation of agencies: who ranks lowest, and why (HTML)",
    response_class=HTMLResponse,
)
async def evaluations_dashboard(
    runtime: RuntimeDep,
    lang: Literal["fa", "en"] = "fa",
    quarter: Annotated[
        str | None, Query(max_length=16, description="A Jalali quarter, e.g. `1405-Q3`")
    ] = None,
) -> HTMLResponse:
    """The quarter's league table (the running quarter's by default, else the latest
    evaluated), its lowest-ranked agencies first with the measures that pull them down,
    rendered on the server; a malformed quarter is a 422 `invalid_quarter`."""
    async with transaction(runtime.pool, EvaluationsStorage) as work:
        now_quarter = window_of("quarter", datetime.now(UTC)).label
        chosen = quarter or await evaluations.latest_quarter(work, now_quarter)
        evaluations.parse_quarter(chosen)
        quarters = await work.evaluated_quarters()
        try:
            table: dict[str, Any] | None = (await evaluations.league_table(work, chosen)).as_json()
        except NotFound:
            table = None
    policy = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    )
    return HTMLResponse(
        evaluations_page(lang, chosen, table, quarters),
        headers={"content-security-policy": policy},
    )
