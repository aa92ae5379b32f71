"""The metrics service's storage: its own Postgres schema `metrics`, reached with asyncpg.

The schema is created by `migrations/`; besides the service's tables it holds the outbox
and the inbox every service keeps (`shared/migrations`). `metric_values` holds the latest
value of every figure published on the metrics topics. `MetricsStorage` is the unit of
work the use cases are given (`services.metrics.use_cases.MetricsWork`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.metrics.domain.queries import FigureQuery
from services.metrics.domain.values import MetricValue
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
