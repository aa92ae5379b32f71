"""The printable report of a quarter's evaluation of agencies: generated as files (HTML and
PDF) and announced on `programme.reports`, so the results reach the responsible bodies.

A quarter's report is generated once the quarter has ended, and again, as the file's next
revision, whenever its scorecards change after (a late delivery, a new weight): the service
checks every `CHECK_SECONDS`. An operator may ask for it at any time
(`POST /api/evaluations/{quarter}/report`, `programme:admin`), also for the running quarter.
The document is a function of the league table alone, so the same figures give the same
file, and `documents.keep_file` keeps and announces nothing new for it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from services.metrics import documents
from services.metrics.evaluations_page import report_html
from services.metrics.storage import EvaluationsStorage, ReportFilesStorage
from services.metrics.use_cases.evaluations import league_table
from shared.db import Pool
from shared.events.programme import ReportKind
from shared.logging import get_logger
from shared.runtime import Runtime
from shared.unit_of_work import transaction

log = get_logger(__name__)

KIND: ReportKind = "agency-evaluation"
#: Seconds between checks for quarters whose report is due.
CHECK_SECONDS = 30.0


@dataclass(frozen=True)
class Generated:
    """The quarter's report files as generation left them."""

    quarter: str
    html: documents.Kept
    pdf: documents.Kept


async def generate_report(pool: Pool, quarter: str, now: datetime) -> Generated:
    """Generate the quarter's report from its league table as it stands and keep both files
    (each a new revision only if its content changed); Invalid or NotFound as the league
    table. Rendering runs outside any transaction."""
    async with transaction(pool, EvaluationsStorage) as work:
        table = await league_table(work, quarter)
    html = report_html(table.as_json()).encode("utf-8")
    async with transaction(pool, ReportFilesStorage) as files:
        kept_html = await files.report_file(KIND, quarter, None, "html")
        kept_pdf = await files.report_file(KIND, quarter, None, "pdf")
    if kept_html is None or kept_pdf is None or kept_html.content != html:
        pdf = await documents.render_pdf(html.decode("utf-8"))
    else:
        # The document did not change: its PDF (rendered from it) stands.
        pdf = kept_pdf.content
    async with transaction(pool, ReportFilesStorage) as files:
        html_file = await documents.keep_file(files, KIND, quarter, None, "html", html, now)
        pdf_file = await documents.keep_file(files, KIND, quarter, None, "pdf", pdf, now)
    async with transaction(pool, EvaluationsStorage) as work:
        await work.mark_report(quarter, table.updated_at, now)
    return Generated(quarter, html_file, pdf_file)


async def generate_due_reports(pool: Pool, now: datetime) -> list[Generated]:
    """Generate the report of every ended quarter whose scorecards changed since its report
    was last generated (or that has none)."""
    async with transaction(pool, EvaluationsStorage) as work:
        due = await work.reports_due(now)
    return [await generate_report(pool, quarter, now) for quarter, _ in due]


async def keep_reports_current(runtime: Runtime) -> None:
    """The service's background task: generate due reports every `CHECK_SECONDS`; a failure
    is logged and tried again at the next check (the task never ends)."""
    while True:
        try:
            for generated in await generate_due_reports(runtime.pool, datetime.now(UTC)):
                log.info(
                    "evaluation report generated",
                    quarter=generated.quarter,
                    html=generated.html.outcome,
                    pdf=generated.pdf.outcome,
                    revision=generated.pdf.file.record.revision,
                )
        except Exception:
            log.exception("evaluation reports not generated; trying again")
        await asyncio.sleep(CHECK_SECONDS)
