"""The weekly reports' generation: when a Jalali week closes (Asia/Tehran), and again
when a late report or a correction arrives for it.

`generate_week` computes the week's league (`use_cases.weekly_reports.week_league`),
makes the national summary and a report per province that reported, as HTML, PDF and
CSV (`weekly_report_files.py`), and keeps each file whose content changed as its next
revision, announced on `programme.reports` (`documents.keep_file`), all in one
transaction with the record of the run. A PDF is rendered only when its HTML changed.

`run` is the metrics service's background task: every `interval` seconds it generates the
weeks that ended lately (the last `catch_up` weeks) and were never generated, then every
generated week that has a report (of its own, or of the week before, whose figures its
changes are measured against) submitted after it was generated. A week that fails is
logged and does not stop the others; the pass then fails, so the runtime's supervision
restarts the task with backoff and `/health` says so until a pass succeeds.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from services.metrics import documents
from services.metrics.documents import Kept
from services.metrics.domain.provincial_reports import Project, load_projects, recent_weeks
from services.metrics.domain.windows import window_from_label
from services.metrics.settings import MetricsSettings
from services.metrics.storage import ProgrammeStorage, ReportFilesStorage, WeeklyReportsStorage
from services.metrics.use_cases.weekly_reports import WeekLeague, week_league
from services.metrics.weekly_report_files import (
    national_csv,
    national_html,
    province_csv,
    province_html,
)
from shared.db import Pool
from shared.events.programme import ReportFormat, ReportKind
from shared.logging import get_logger
from shared.runtime import Runtime
from shared.unit_of_work import transaction

log = get_logger(__name__)

#: A report is stamped before its transaction commits; one stamped up to this long before
#: a run read the reports, but committed after, still makes the week due again.
COMMIT_MARGIN = timedelta(minutes=1)
PROJECTS = load_projects()

Made = tuple[ReportKind, str | None, str, bytes]


def _files(league: WeekLeague, projects: tuple[Project, ...]) -> list[Made]:
    """Each report's HTML and CSV: (kind, subject, html, csv)."""
    made: list[Made] = [("national-week", None, national_html(league), national_csv(league))]
    for standing in league.ranked():
        made.append(
            (
                "province-week",
                standing.province,
                province_html(league, standing.province, projects),
                province_csv(league, standing.province),
            )
        )
    return made


async def _needs_pdf(
    pool: Pool, kind: ReportKind, week: str, subject: str | None, html: str
) -> bool:
    # The PDF is rendered from the HTML: the same HTML, the same PDF (a second per page
    # saved on every regeneration that changed nothing).
    async with transaction(pool, ReportFilesStorage) as files:
        kept_html = await files.report_file(kind, week, subject, "html")
        kept_pdf = await files.report_file(kind, week, subject, "pdf")
    same = kept_html is not None and kept_html.record.sha256 == documents.sha256_of(
        html.encode("utf-8")
    )
    return not same or kept_pdf is None


async def generate_week(
    pool: Pool, week: str, now: datetime, projects: tuple[Project, ...] = PROJECTS
) -> list[Kept]:
    """Generate the week's reports from the reports as they stand; returns what keeping
    each file left (`unchanged` for a file whose content did not change)."""
    window = window_from_label("week", week)
    if window.start is None or window.end is None:
        raise ValueError("a week has bounds")
    async with transaction(pool, ProgrammeStorage) as work:
        league = await week_league(work, week, now, projects)
    made = _files(league, projects)
    pdfs: dict[tuple[ReportKind, str | None], bytes] = {}
    for kind, subject, html, _ in made:
        if await _needs_pdf(pool, kind, week, subject, html):
            pdfs[(kind, subject)] = await documents.render_pdf(html)
    kept: list[Kept] = []
    async with transaction(pool, WeeklyReportsStorage) as work:
        for kind, subject, html, csv in made:
            contents: list[tuple[ReportFormat, bytes]] = [
                ("html", html.encode("utf-8")),
                ("csv", csv),
            ]
            if (kind, subject) in pdfs:
                contents.append(("pdf", pdfs[(kind, subject)]))
            for file_format, content in contents:
                kept.append(
                    await documents.keep_file(work, kind, week, subject, file_format, content, now)
                )
        await work.record_run(week, window.start, window.end, now - COMMIT_MARGIN, now)
    changed = [k.file.record.record_key() for k in kept if k.outcome != "unchanged"]
    if changed:
        log.info("weekly reports generated", week=week, files=len(changed))
    return kept


async def weeks_due(pool: Pool, now: datetime, catch_up: int) -> list[str]:
    """The weeks to generate now, oldest first: those of the last `catch_up` that ended
    and were never generated, and those with reports newer than their generation."""
    ended = list(reversed(recent_weeks(now, catch_up + 1)[1:]))
    async with transaction(pool, WeeklyReportsStorage) as work:
        generated = await work.weeks_generated(ended)
        changed = await work.weeks_with_new_reports()
    due = [week for week in ended if week not in generated]
    return due + [week for week in changed if week not in due]


class PassFailed(Exception):
    """Some weeks' reports could not be generated in this pass."""


async def generate_due(pool: Pool, now: datetime, catch_up: int) -> list[str]:
    """Generate every week due; the weeks generated. PassFailed (after trying every week)
    names those that failed."""
    failed: list[str] = []
    done: list[str] = []
    for week in await weeks_due(pool, now, catch_up):
        try:
            await generate_week(pool, week, now)
        except Exception:  # one week's failure must not keep the others from their reports
            log.exception("weekly reports of a week failed", week=week)
            failed.append(week)
        else:
            done.append(week)
    if failed:
        raise PassFailed(f"weekly reports failed for {', '.join(failed)}")
    return done


async def run(runtime: Runtime) -> None:
    """The background task: a pass every `weekly_reports_interval_seconds`, until the
    service stops (a failed pass raises: supervision restarts the task)."""
    settings = runtime.settings
    if not isinstance(settings, MetricsSettings):
        raise TypeError("the metrics service runs with MetricsSettings")
    while True:
        await generate_due(runtime.pool, datetime.now(UTC), settings.weekly_reports_catch_up)
        await asyncio.sleep(settings.weekly_reports_interval_seconds)
