"""The metrics service's storage: its own Postgres schema `metrics`, reached with asyncpg.

The schema is created by `migrations/`; besides the service's tables it holds the outbox
and the inbox every service keeps (`shared/migrations`). `metric_values` holds the latest
value of every figure published on the metrics topics. `MetricsStorage` is the unit of
work the use cases are given (`services.metrics.use_cases.MetricsWork`).

The programme register (`programme_indicators`, `programme_targets`,
`programme_observations`: every revision a row, the highest the current one) and the
projection of each target's progress (`target_progress`) are reached through
`ProgrammeStorage` (`services.metrics.use_cases.programme.ProgrammeWork`), as are the
provincial directorates' weekly reports (`provincial_reports`, every revision a row;
`services.metrics.use_cases.provinces.ReportsWork`). Generated report files
(`report_files`, every revision a row) are reached through `ReportFilesStorage`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from services.metrics.documents import StoredFile
from services.metrics.domain.programme_register import CurrentFigure, Kept
from services.metrics.domain.queries import FigureQuery
from services.metrics.domain.values import MetricValue
from shared.events.metrics import AgencyEvaluated, TargetProgressUpdated
from shared.events.programme import (
    IndicatorRecorded,
    ObservationRecorded,
    ProvincialReportRecorded,
    ReportFormat,
    ReportKind,
    ReportPublished,
    Scope,
    TargetRecorded,
)
from shared.unit_of_work import UnitOfWork


def _row(record: Any) -> MetricValue:
    return MetricValue(
        key=record["key"],
        metric=record["metric"],
        dimensions=dict(record["dimensions"]),
        granularity=record["granularity"],
        window_start=record["window_start"],
        window_end=record["window_end"],
        window_label=record["window_label"],
        value=record["value"],
        unit=record["unit"],
        published_at=record["published_at"],
    )


_COLUMNS = (
    "key, metric, dimensions, granularity, window_start, window_end,"
    " window_label, value, unit, published_at"
)


class MetricsStorage(UnitOfWork):
    """The projection of published figures, in the transaction of its connection."""

    async def keep_latest(self, topic: str, value: MetricValue) -> None:
        """Store a figure's latest value; an older publication never overwrites a newer one."""
        await self.connection.execute(
            """
            INSERT INTO metric_values (key, topic, metric, dimensions, granularity, window_start,
                                       window_end, window_label, value, unit, published_at)
            VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (key) DO UPDATE SET
                value = EXCLUDED.value, unit = EXCLUDED.unit, published_at = EXCLUDED.published_at,
                updated_at = clock_timestamp()
            WHERE metric_values.published_at <= EXCLUDED.published_at
            """,
            value.key,
            topic,
            value.metric,
            value.dimensions,
            value.granularity,
            value.window_start,
            value.window_end,
            value.window_label,
            value.value,
            value.unit,
            value.published_at,
        )

    async def current(self, query: FigureQuery) -> list[MetricValue]:
        """Figures matching every given filter (dimensions match exactly), newest window first."""
        clauses: list[str] = ["true"]
        args: list[object] = []
        for column, value in (
            ("metric", query.metric),
            ("granularity", query.granularity),
            ("window_label", query.window_label),
        ):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        if query.prefix is not None:
            args.append(query.prefix + "%")
            clauses.append(f"metric LIKE ${len(args)}")
        if query.dimensions is not None:
            args.append(query.dimensions)
            clauses.append(f"dimensions = ${len(args)}::jsonb")
        args.append(query.limit)
        return await self._values(
            f"SELECT {_COLUMNS} FROM metric_values WHERE {' AND '.join(clauses)}"
            f" ORDER BY window_start DESC NULLS FIRST, metric, key LIMIT ${len(args)}",
            *args,
        )

    async def series(
        self, metric: str, granularity: str, dimensions: dict[str, str], limit: int
    ) -> list[MetricValue]:
        """The last `limit` windows of one figure, oldest first."""
        newest_first = await self._values(
            f"SELECT {_COLUMNS} FROM metric_values WHERE metric = $1 AND granularity = $2"
            " AND dimensions = $3::jsonb ORDER BY window_start DESC LIMIT $4",
            metric,
            granularity,
            dimensions,
            limit,
        )
        return list(reversed(newest_first))

    async def by_one_dimension(self, metrics: list[str]) -> list[MetricValue]:
        """All-time figures of these metrics broken down by exactly one dimension."""
        return await self._values(
            f"SELECT {_COLUMNS} FROM metric_values WHERE metric = ANY($1::text[])"
            " AND granularity = 'all_time'"
            " AND (SELECT count(*) FROM jsonb_object_keys(dimensions)) = 1",
            metrics,
        )

    async def latest_totals(self, metrics: list[str]) -> list[MetricValue]:
        """For each metric and granularity, its dimensionless figure of the latest window."""
        return await self._values(
            f"SELECT DISTINCT ON (metric, granularity) {_COLUMNS} FROM metric_values"
            " WHERE metric = ANY($1::text[]) AND dimensions = '{}'::jsonb"
            " ORDER BY metric, granularity, window_start DESC NULLS LAST",
            metrics,
        )

    async def _values(self, query: str, *args: object) -> list[MetricValue]:
        return [_row(record) for record in await self.connection.fetch(query, *args)]

    async def last_change(self) -> datetime | None:
        """When the projection last changed (for live updates)."""
        changed: datetime | None = await self.connection.fetchval(
            "SELECT max(updated_at) FROM metric_values"
        )
        return changed


def _evaluation(payload: Any) -> AgencyEvaluated:
    # jsonb holds its moments as text: read back as the JSON they were written as.
    return AgencyEvaluated.model_validate(payload, strict=False)


class EvaluationsStorage(UnitOfWork):
    """The projection of `metrics.evaluations` (`agency_evaluations`: each agency's latest
    scorecard per quarter) and which figures each quarter's report was generated from
    (`evaluation_reports`), in the transaction of its connection
    (`services.metrics.use_cases.evaluations.EvaluationsWork`)."""

    async def keep_evaluation(self, evaluation: AgencyEvaluated, occurred_at: datetime) -> None:
        """Keep an agency's latest scorecard; an older publication never replaces a newer
        one, and the same scorecard published again changes nothing."""
        await self.connection.execute(
            """
            INSERT INTO agency_evaluations (quarter, agency, occurred_at, payload)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (quarter, agency) DO UPDATE SET
                occurred_at = EXCLUDED.occurred_at, payload = EXCLUDED.payload,
                updated_at = clock_timestamp()
            WHERE agency_evaluations.occurred_at <= EXCLUDED.occurred_at
              AND agency_evaluations.payload IS DISTINCT FROM EXCLUDED.payload
            """,
            evaluation.quarter,
            evaluation.agency,
            occurred_at,
            _document(evaluation),
        )

    async def evaluations_of(self, quarter: str) -> list[tuple[AgencyEvaluated, datetime]]:
        """The quarter's scorecards, with when each changed last, by agency."""
        rows = await self.connection.fetch(
            "SELECT payload, updated_at FROM agency_evaluations WHERE quarter = $1 ORDER BY agency",
            quarter,
        )
        return [(_evaluation(r["payload"]), r["updated_at"]) for r in rows]

    async def evaluation_of(
        self, quarter: str, agency: str
    ) -> tuple[AgencyEvaluated, datetime] | None:
        row = await self.connection.fetchrow(
            "SELECT payload, updated_at FROM agency_evaluations WHERE quarter = $1 AND agency = $2",
            quarter,
            agency,
        )
        if row is None:
            return None
        return _evaluation(row["payload"]), row["updated_at"]

    async def evaluated_quarters(self) -> list[str]:
        """Every quarter with scorecards, latest first."""
        rows = await self.connection.fetch(
            "SELECT DISTINCT quarter FROM agency_evaluations ORDER BY quarter DESC"
        )
        return [row["quarter"] for row in rows]

    async def reports_due(self, now: datetime) -> list[tuple[str, datetime]]:
        """The quarters ended by `now` whose scorecards changed since their report was last
        generated (or that have none yet), with their latest change, latest quarter first (after
        a pause the freshest results go out first)."""
        rows = await self.connection.fetch(
            """
            SELECT e.quarter, max(e.updated_at) AS changed
            FROM agency_evaluations e
            LEFT JOIN evaluation_reports r ON r.quarter = e.quarter
            WHERE (e.payload->>'quarter_end')::timestamptz <= $1
            GROUP BY e.quarter, r.figures_as_of
            HAVING r.figures_as_of IS NULL OR max(e.updated_at) > r.figures_as_of
            ORDER BY e.quarter DESC
            """,
            now,
        )
        return [(row["quarter"], row["changed"]) for row in rows]

    async def lock_report(self, quarter: str) -> None:
        """Hold the quarter's report lock to the end of this transaction: one generation at
        a time, whichever instance or operator asks."""
        await self.connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext('evaluation-report:' || $1))", quarter
        )

    async def mark_report(self, quarter: str, figures_as_of: datetime, now: datetime) -> None:
        """Record that the quarter's report was generated from its figures as of then."""
        await self.connection.execute(
            """
            INSERT INTO evaluation_reports (quarter, figures_as_of, generated_at)
            VALUES ($1, $2, $3)
            ON CONFLICT (quarter) DO UPDATE SET
                figures_as_of = GREATEST(evaluation_reports.figures_as_of, EXCLUDED.figures_as_of),
                generated_at = EXCLUDED.generated_at
            """,
            quarter,
            figures_as_of,
            now,
        )


def _document(record: Any) -> dict[str, Any]:
    """An event as the jsonb `record` column keeps it (its JSON form)."""
    document: dict[str, Any] = json.loads(record.model_dump_json())
    return document


class ProgrammeStorage(UnitOfWork):
    """The programme register and the projection of targets' progress, in the transaction
    of its connection. Every write of the register adds a revision; none is updated."""

    async def _lock(self, kind: str, key: str) -> None:
        # Held to the end of the transaction, also for an entry not written yet: two
        # writers of one entry take turns, so each revision follows the one it read.
        await self.connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext('programme:' || $1 || ':' || $2))", kind, key
        )

    async def indicator(self, code: str, *, for_update: bool = False) -> IndicatorRecorded | None:
        """The indicator's current revision, or None; `for_update` locks it to the end of
        the transaction."""
        if for_update:
            await self._lock("indicator", code)
        record = await self.connection.fetchval(
            "SELECT record FROM programme_indicators WHERE code = $1"
            " ORDER BY revision DESC LIMIT 1",
            code,
        )
        return IndicatorRecorded.model_validate(record) if record is not None else None

    async def indicators(self) -> list[IndicatorRecorded]:
        """Every indicator's current revision, by code."""
        rows = await self.connection.fetch(
            "SELECT DISTINCT ON (code) record FROM programme_indicators"
            " ORDER BY code, revision DESC"
        )
        return [IndicatorRecorded.model_validate(row["record"]) for row in rows]

    async def count_indicators(self) -> int:
        count: int = await self.connection.fetchval(
            "SELECT count(DISTINCT code) FROM programme_indicators"
        )
        return count

    async def write_indicator(self, record: IndicatorRecorded) -> None:
        await self.connection.execute(
            "INSERT INTO programme_indicators (code, revision, record, changed_by)"
            " VALUES ($1, $2, $3, $4)",
            record.code,
            record.revision,
            _document(record),
            record.changed_by,
        )

    async def target(self, target_id: str, *, for_update: bool = False) -> TargetRecorded | None:
        """The target's current revision, or None; `for_update` locks it to the end of the
        transaction."""
        if for_update:
            await self._lock("target", target_id)
        record = await self.connection.fetchval(
            "SELECT record FROM programme_targets WHERE target_id = $1"
            " ORDER BY revision DESC LIMIT 1",
            target_id,
        )
        return TargetRecorded.model_validate(record) if record is not None else None

    async def targets(self) -> list[TargetRecorded]:
        """Every target's current revision, by id."""
        rows = await self.connection.fetch(
            "SELECT DISTINCT ON (target_id) record FROM programme_targets"
            " ORDER BY target_id, revision DESC"
        )
        return [TargetRecorded.model_validate(row["record"]) for row in rows]

    async def target_history(self, target_id: str) -> list[Kept[TargetRecorded]]:
        """Every revision of a target, oldest first (none for an unknown target)."""
        rows = await self.connection.fetch(
            "SELECT record, recorded_at FROM programme_targets WHERE target_id = $1"
            " ORDER BY revision",
            target_id,
        )
        return [
            Kept(TargetRecorded.model_validate(row["record"]), row["recorded_at"]) for row in rows
        ]

    async def write_target(self, record: TargetRecorded) -> None:
        await self.connection.execute(
            "INSERT INTO programme_targets (target_id, revision, indicator, record, changed_by)"
            " VALUES ($1, $2, $3, $4, $5)",
            record.target_id,
            record.revision,
            record.indicator,
            _document(record),
            record.changed_by,
        )

    async def observation(
        self, key: str, *, for_update: bool = False
    ) -> ObservationRecorded | None:
        """The current revision of the figure with this record key, or None; `for_update`
        locks it to the end of the transaction."""
        if for_update:
            await self._lock("observation", key)
        record = await self.connection.fetchval(
            "SELECT record FROM programme_observations WHERE key = $1"
            " ORDER BY revision DESC LIMIT 1",
            key,
        )
        return ObservationRecorded.model_validate(record) if record is not None else None

    async def observations(
        self, indicator: str | None, scope: Scope | None, scope_code: str | None
    ) -> list[CurrentFigure]:
        """The current revision of every figure matching the filters given, by indicator,
        scope and day, each with its number of revisions."""
        rows = await self.connection.fetch(
            """
            SELECT DISTINCT ON (key) record, count(*) OVER (PARTITION BY key) AS revisions
              FROM programme_observations
             WHERE ($1::text IS NULL OR indicator = $1)
               AND ($2::text IS NULL OR scope = $2)
               AND ($3::text IS NULL OR scope_code = $3)
             ORDER BY key, revision DESC
            """,
            indicator,
            scope,
            scope_code,
        )
        figures = [
            CurrentFigure(ObservationRecorded.model_validate(row["record"]), row["revisions"])
            for row in rows
        ]
        figures.sort(
            key=lambda f: (
                f.observation.indicator,
                f.observation.scope,
                f.observation.scope_code or "",
                f.observation.observed_on,
            )
        )
        return figures

    async def write_observation(self, record: ObservationRecorded) -> None:
        await self.connection.execute(
            "INSERT INTO programme_observations (key, revision, indicator, scope, scope_code,"
            " observed_on, value, record, reported_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            record.record_key(),
            record.revision,
            record.indicator,
            record.scope,
            record.scope_code,
            record.observed_on,
            record.value,
            _document(record),
            record.reported_by,
        )

    async def keep_progress(self, progress: TargetProgressUpdated, occurred_at: datetime) -> None:
        """Keep a target's latest progress; an older publication never replaces a newer one."""
        await self.connection.execute(
            """
            INSERT INTO target_progress (target_id, occurred_at, payload)
            VALUES ($1, $2, $3)
            ON CONFLICT (target_id) DO UPDATE SET
                occurred_at = EXCLUDED.occurred_at, payload = EXCLUDED.payload,
                updated_at = clock_timestamp()
            WHERE target_progress.occurred_at <= EXCLUDED.occurred_at
            """,
            progress.target_id,
            occurred_at,
            _document(progress),
        )

    async def progress(self) -> list[tuple[TargetProgressUpdated, datetime]]:
        """Every target's latest progress, with when it was published, by target id."""
        rows = await self.connection.fetch(
            "SELECT payload, occurred_at FROM target_progress ORDER BY target_id"
        )
        return [
            (TargetProgressUpdated.model_validate(row["payload"]), row["occurred_at"])
            for row in rows
        ]

    async def progress_of(self, target_id: str) -> tuple[TargetProgressUpdated, datetime] | None:
        row = await self.connection.fetchrow(
            "SELECT payload, occurred_at FROM target_progress WHERE target_id = $1", target_id
        )
        if row is None:
            return None
        return TargetProgressUpdated.model_validate(row["payload"]), row["occurred_at"]

    async def wait_for_other_loads(self) -> None:
        """Hold the reference load's lock to the end of this transaction: two instances
        starting on an empty register load one after the other, not both."""
        await self.connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext('metrics-programme-reference'))"
        )

    # -- the provincial directorates' weekly reports ----------------------------------------

    async def report(
        self, province: str, week: str, *, for_update: bool = False
    ) -> Kept[ProvincialReportRecorded] | None:
        """The current revision of a province's report for a week, or None; `for_update`
        locks the province's reports to the end of the transaction (a report is judged
        against the province's earlier weeks, so the whole province is locked)."""
        if for_update:
            await self._lock("provincial-report", province)
        row = await self.connection.fetchrow(
            "SELECT record, submitted_at FROM provincial_reports"
            " WHERE province = $1 AND week = $2 ORDER BY revision DESC LIMIT 1",
            province,
            week,
        )
        return _kept_report(row) if row is not None else None

    async def earlier_figures(self, province: str, before: datetime) -> dict[str, float]:
        """The province's latest figure of each figure and project (`projects.<code>`)
        from the current reports of weeks starting before `before`."""
        rows = await self.connection.fetch(
            """
            WITH current AS (
                SELECT DISTINCT ON (week) week_start, figures, projects
                  FROM provincial_reports
                 WHERE province = $1 AND week_start < $2
                 ORDER BY week, revision DESC
            ), figures AS (
                SELECT week_start, f.key AS name, f.value::text::float8 AS value
                  FROM current, jsonb_each(current.figures) AS f
                UNION ALL
                SELECT week_start, 'projects.' || p.key, p.value::text::float8
                  FROM current, jsonb_each(current.projects) AS p
            )
            SELECT DISTINCT ON (name) name, value FROM figures ORDER BY name, week_start DESC
            """,
            province,
            before,
        )
        return {row["name"]: row["value"] for row in rows}

    async def write_report(
        self,
        record: ProvincialReportRecorded,
        week_start: datetime,
        week_end: datetime,
        submitted_at: datetime,
    ) -> None:
        await self.connection.execute(
            "INSERT INTO provincial_reports (province, week, revision, week_start, week_end,"
            " figures, projects, reasons, late, submitted_by, submitted_at, record)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            record.province,
            record.week,
            record.revision,
            week_start,
            week_end,
            record.figures,
            record.projects,
            record.reasons,
            record.late,
            record.submitted_by,
            submitted_at,
            _document(record),
        )

    async def reports_of_week(self, week: str) -> list[Kept[ProvincialReportRecorded]]:
        """Each province's current report for the week, by province."""
        rows = await self.connection.fetch(
            "SELECT DISTINCT ON (province) record, submitted_at FROM provincial_reports"
            " WHERE week = $1 ORDER BY province, revision DESC",
            week,
        )
        return [_kept_report(row) for row in rows]

    async def previous_reports(self, before: datetime) -> list[Kept[ProvincialReportRecorded]]:
        """Each province's current report of its latest week starting before `before`."""
        rows = await self.connection.fetch(
            "SELECT DISTINCT ON (province) record, submitted_at FROM provincial_reports"
            " WHERE week_start < $1 ORDER BY province, week_start DESC, revision DESC",
            before,
        )
        return [_kept_report(row) for row in rows]

    async def reports_of_province(self, province: str) -> list[Kept[ProvincialReportRecorded]]:
        """Every revision of every report of the province, by week, then revision."""
        rows = await self.connection.fetch(
            "SELECT record, submitted_at FROM provincial_reports WHERE province = $1"
            " ORDER BY week_start, revision",
            province,
        )
        return [_kept_report(row) for row in rows]


def _kept_report(row: Any) -> Kept[ProvincialReportRecorded]:
    return Kept(ProvincialReportRecorded.model_validate(row["record"]), row["submitted_at"])


class ReportFilesStorage(UnitOfWork):
    """Generated report files (`report_files`: every revision a row, the highest the
    current one), in the transaction of its connection
    (`services.metrics.documents.ReportFilesWork`)."""

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
        """A file's revision (its latest unless `revision` is given), or None;
        `for_update` locks the file to the end of the transaction, also one not kept yet."""
        if for_update:
            await self.connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext('report-file:' || $1))",
                f"{kind}|{period}|{subject or ''}|{file_format}",
            )
        row = await self.connection.fetchrow(
            "SELECT record, content, generated_at FROM report_files"
            " WHERE kind = $1 AND period = $2 AND subject = $3 AND format = $4"
            " AND ($5::integer IS NULL OR revision = $5) ORDER BY revision DESC LIMIT 1",
            kind,
            period,
            subject or "",
            file_format,
            revision,
        )
        if row is None:
            return None
        return StoredFile(
            ReportPublished.model_validate(row["record"]), row["content"], row["generated_at"]
        )

    async def report_files_of(self, kind: ReportKind, period: str) -> list[ReportPublished]:
        """The latest revision of each file of a kind and period (without their bytes), by
        subject and format."""
        rows = await self.connection.fetch(
            "SELECT DISTINCT ON (subject, format) record FROM report_files"
            " WHERE kind = $1 AND period = $2 ORDER BY subject, format, revision DESC",
            kind,
            period,
        )
        return [ReportPublished.model_validate(row["record"]) for row in rows]

    async def write_report_file(self, stored: StoredFile) -> None:
        record = stored.record
        await self.connection.execute(
            "INSERT INTO report_files (kind, period, subject, format, revision, content,"
            " sha256, size, media_type, generated_at, record)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            record.kind,
            record.period,
            record.subject or "",
            record.format,
            record.revision,
            stored.content,
            record.sha256,
            record.size,
            stored.media_type,
            stored.generated_at,
            _document(record),
        )


class WeeklyReportsStorage(ReportFilesStorage):
    """The weekly reports' files and when each week's were generated
    (`weekly_report_runs`), in the transaction of its connection."""

    async def weeks_generated(self, weeks: list[str]) -> set[str]:
        """Which of these weeks have had their reports generated."""
        rows = await self.connection.fetch(
            "SELECT week FROM weekly_report_runs WHERE week = ANY($1::text[])", weeks
        )
        return {row["week"] for row in rows}

    async def weeks_with_new_reports(self) -> list[str]:
        """Weeks generated before a report of theirs, or of the week before them, came in
        (a late report, a correction), oldest first."""
        rows = await self.connection.fetch(
            """
            SELECT w.week FROM weekly_report_runs w
             WHERE EXISTS (
                   SELECT 1 FROM provincial_reports r
                    WHERE r.submitted_at > w.generated_from
                      AND r.week_start < w.week_end
                      AND r.week_end >= w.week_start - interval '7 days')
             ORDER BY w.week_start
            """
        )
        return [row["week"] for row in rows]

    async def record_run(
        self,
        week: str,
        week_start: datetime,
        week_end: datetime,
        generated_from: datetime,
        generated_at: datetime,
    ) -> None:
        await self.connection.execute(
            """
            INSERT INTO weekly_report_runs (week, week_start, week_end, generated_from,
                                            generated_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (week) DO UPDATE SET
                generated_from = GREATEST(weekly_report_runs.generated_from,
                                          EXCLUDED.generated_from),
                generated_at = EXCLUDED.generated_at
            """,
            week,
            week_start,
            week_end,
            generated_from,
            generated_at,
        )
