"""Report files: kept as revisions only when their content changes, announced each time,
CSV that Excel reads as UTF-8, and PDF rendering that fetches nothing from outside."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from services.metrics import documents
from services.metrics.documents import StoredFile, csv_document, keep_file, only_data_urls
from shared.events.programme import ReportFormat, ReportKind, ReportPublished
from tests.unit.fake_outbox import FakeOutbox

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


class FakeReportFiles(FakeOutbox):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[StoredFile] = []

    async def report_file(
        self,
        kind: ReportKind,
        period: str,
        subject: str | None,
        file_format: ReportFormat,
        *,
        revision: int | None = None,
        for_update: bool = False,
    ) -> StoredFile | None:
        mine = [
            f
            for f in self.files
            if (f.record.kind, f.record.period, f.record.subject, f.record.format)
            == (kind, period, subject, file_format)
            and (revision is None or f.record.revision == revision)
        ]
        return max(mine, key=lambda f: f.record.revision, default=None)

    async def write_report_file(self, stored: StoredFile) -> None:
        self.files.append(stored)


async def test_a_file_is_kept_and_announced_once_per_content() -> None:
    work = FakeReportFiles()
    first = await keep_file(work, "national-week", "1405-W36", None, "csv", b"a", NOW)
    again = await keep_file(work, "national-week", "1405-W36", None, "csv", b"a", NOW)
    changed = await keep_file(work, "national-week", "1405-W36", None, "csv", b"b", NOW)
    assert [first.outcome, again.outcome, changed.outcome] == ["created", "unchanged", "revised"]
    announced = work.events(ReportPublished)
    assert [(r.revision, r.size) for r in announced] == [(1, 1), (2, 1)]
    assert announced[1].sha256 == documents.sha256_of(b"b")
    assert announced[1].path == "/api/reports/national-week/1405-W36.csv"
    assert work.published[1].subject == "national-week|1405-W36||csv"


async def test_each_subject_and_format_has_revisions_of_its_own() -> None:
    work = FakeReportFiles()
    await keep_file(work, "province-week", "1405-W36", "IR-15", "pdf", b"x", NOW)
    other = await keep_file(work, "province-week", "1405-W36", "IR-16", "pdf", b"x", NOW)
    html = await keep_file(work, "province-week", "1405-W36", "IR-15", "html", b"x", NOW)
    assert (other.outcome, other.file.record.revision) == ("created", 1)
    assert (html.outcome, html.file.record.revision) == ("created", 1)
    assert other.file.record.path == "/api/reports/province-week/1405-W36/IR-16.pdf"
    assert other.file.file_name == "province-week-1405-W36-IR-16-r1.pdf"


def test_a_csv_starts_with_the_byte_order_mark_and_keeps_persian() -> None:
    content = csv_document(["استان", "امتیاز"], [["لرستان", 81.5], ["ایلام", None]])
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows == [["استان", "امتیاز"], ["لرستان", "81.5"], ["ایلام", ""]]
    assert b"\r\n" in content


def test_a_report_page_may_fetch_nothing_but_data_urls() -> None:
    with pytest.raises(ValueError, match="disallowed protocol"):
        only_data_urls().fetch("file:///etc/passwd")
    with pytest.raises(ValueError, match="disallowed protocol"):
        only_data_urls().fetch("http://169.254.169.254/")
    assert only_data_urls().fetch("data:text/plain;base64,aGk=").read() == b"hi"


async def test_the_same_html_renders_to_the_same_pdf() -> None:
    page = (
        '<html lang="fa" dir="rtl"><body style="font-family: DejaVu Sans">'
        "<h1>گزارش هفتگی</h1></body></html>"
    )
    first, second = await documents.render_pdf(page), await documents.render_pdf(page)
    assert first.startswith(b"%PDF-")
    assert first == second
