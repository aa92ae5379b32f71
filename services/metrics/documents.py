"""Report files: HTML rendered to PDF, CSV for spreadsheets, every file kept and announced.

A report (a province's week, the national week, a quarter's evaluation of agencies) is
made as HTML, PDF and CSV. Each file is kept by its kind, period, subject and format,
every changed content its next revision; the same content again is no new revision, so a
file must be a function of its data alone (no "generated at" clock inside it). A CSV
starts with a UTF-8 byte order mark, or Excel would not read its Persian.

`render_pdf` turns a report's HTML into PDF bytes with WeasyPrint. Persian is shaped and
laid out right to left by Pango and HarfBuzz as long as the page's font covers Arabic
script: write reports in `FONT_STACK` (DejaVu Sans, installed with the system's fonts,
covers Persian). The page may fetch nothing: an image is a `data:` URL, a stylesheet is
inline; any other address is refused, so a report's text can never make the renderer read
a file or call a server.

`keep_file` keeps a file as its next revision, in the caller's transaction, and publishes
`ReportPublished` on `programme.reports` through the outbox in that same transaction; the
same content again keeps and publishes nothing. Render outside the transaction (rendering
a page takes a good part of a second), then keep:

    pdf = await documents.render_pdf(html)
    async with transaction(pool, ReportFilesStorage) as work:
        await documents.keep_file(work, "agency-evaluation", "1405-Q3", None, "pdf", pdf, now)

The file is then served at `GET /api/reports/{kind}/{period}.{format}` (or
`/api/reports/{kind}/{period}/{subject}.{format}`), its latest revision, or any with
`?revision=`.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from shared.envelope import Envelope
from shared.events.programme import ReportFormat, ReportKind, ReportPublished, report_path
from shared.unit_of_work import Publisher

SOURCE = "metrics"
MEDIA_TYPES: dict[ReportFormat, str] = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
}
#: Excel opens a CSV as UTF-8 (so Persian reads) only when it starts with this mark.
UTF8_BOM = "\ufeff"


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def csv_document(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """A CSV file Excel opens with its Persian intact: UTF-8 with a byte order mark, CRLF
    line ends, every field quoted where it must be; None is an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return (UTF8_BOM + buffer.getvalue()).encode("utf-8")


@dataclass(frozen=True)
class StoredFile:
    """A revision of a report file: how it was announced, its bytes, when it was made."""

    record: ReportPublished
    content: bytes
    generated_at: datetime

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.record.format]

    @property
    def file_name(self) -> str:
        """A name to save it under, e.g. `province-week-1405-W36-IR-15-r2.pdf`."""
        record = self.record
        subject = f"-{record.subject}" if record.subject else ""
        return f"{record.kind}-{record.period}{subject}-r{record.revision}.{record.format}"


#: The font reports are written in: DejaVu Sans covers Persian (and Latin, and digits).
FONT_STACK = '"DejaVu Sans", "Noto Sans Arabic", sans-serif'


def only_data_urls() -> Any:
    """WeasyPrint's fetcher of a report page's resources, refusing all but `data:` URLs."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"})


def _render(html: str) -> bytes:
    # Imported here: WeasyPrint loads Pango at import, which only the rendering needs.
    from weasyprint import HTML

    pdf: bytes = HTML(string=html, url_fetcher=only_data_urls()).write_pdf()
    return pdf


async def render_pdf(html: str) -> bytes:
    """The PDF of an HTML page; the same HTML gives the same bytes. Runs in a thread of
    its own (it is CPU work: the event loop stays free), one page after another."""
    return await asyncio.get_running_loop().run_in_executor(_RENDERER, _render, html)


# One rendering at a time, always on the same thread: each takes a core while the service
# has requests to answer, and Pango's font state is then never shared between threads.
_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-pdf")


class ReportFilesWork(Publisher, Protocol):
    """The storage report files need (`storage.ReportFilesStorage`)."""

    async def report_file(
        self,
        kind: ReportKind,
        period: str,
        subject: str | None,
        file_format: ReportFormat,
        *,
        revision: int | None = None,
        for_update: bool = False,
    ) -> StoredFile | None: ...

    async def write_report_file(self, stored: StoredFile) -> None: ...


Outcome = Literal["created", "revised", "unchanged"]


@dataclass(frozen=True)
class Kept:
    """What keeping a file left: its current revision, and whether this call made it."""

    outcome: Outcome
    file: StoredFile


async def keep_file(
    work: ReportFilesWork,
    kind: ReportKind,
    period: str,
    subject: str | None,
    file_format: ReportFormat,
    content: bytes,
    now: datetime,
) -> Kept:
    """Keep `content` as the file's next revision and announce it on `programme.reports`,
    both in the caller's transaction; if the latest revision has this very content,
    nothing is kept or announced. Two writers of one file take turns (a lock to the end
    of the transaction), so revisions never clash."""
    current = await work.report_file(kind, period, subject, file_format, for_update=True)
    digest = sha256_of(content)
    if current is not None and current.record.sha256 == digest:
        return Kept("unchanged", current)
    record = ReportPublished(
        kind=kind,
        period=period,
        subject=subject,
        format=file_format,
        revision=1 if current is None else current.record.revision + 1,
        sha256=digest,
        size=len(content),
        path=report_path(kind, period, subject, file_format),
    )
    stored = StoredFile(record, content, now)
    await work.write_report_file(stored)
    await work.publish([Envelope.wrap(record, source=SOURCE, subject=record.record_key())])
    return Kept("created" if current is None else "revised", stored)
