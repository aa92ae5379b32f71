"""The catalog's storage: its own Postgres schema `catalog`, reached with asyncpg.

The schema is created by `migrations/`; besides the service's tables it holds the outbox
and the inbox every service keeps (`shared/migrations`). `CatalogReads` answers the
window's reads on any connection, one statement each, so a page needs no transaction;
`CatalogStorage` is the unit of work the use cases change the register through, in its
caller's transaction. Nothing here decides.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, cast

from services.catalog.domain import (
    Revision,
    SearchHit,
    SearchPage,
    SearchQuery,
    ServiceView,
    folded_query,
    search_text,
)
from shared.db import Connection
from shared.events.catalog import AgencyRecorded, DeliveryRecorded, ServiceRecorded
from shared.unit_of_work import UnitOfWork
from shared.vocabulary import Maturity

_AGENCY_COLUMNS = (
    "code, name_fa, name_en, ministry_fa, ministry_en, province, window_connected_since,"
    " exchange_connected_since, active, revision"
)
_SERVICE_COLUMNS = (
    "service_id, agency, title_fa, title_en, description_fa, description_en, category,"
    " audiences, channels, maturity, data_needs, status, revision"
)


def _agency(row: Any) -> AgencyRecorded:
    return AgencyRecorded(**{name: row[name] for name in AgencyRecorded.model_fields})


def _service(row: Any) -> ServiceRecorded:
    values = {name: row[name] for name in ServiceRecorded.model_fields}
    values["maturity"] = cast(Maturity, int(values["maturity"]))
    return ServiceRecorded(**values)


def _revision(row: Any) -> Revision:
    return Revision(
        revision=row["revision"],
        change=row["change"],
        changed_fields=list(row["changed_fields"]),
        changed_by=row["changed_by"],
        recorded_at=row["recorded_at"].isoformat(),
        record=row["record"],
    )


def _view(row: Any) -> ServiceView:
    return ServiceView(
        service_id=row["service_id"],
        agency=row["agency"],
        status=row["status"],
        channels=tuple(row["channels"]),
        maturity=cast(Maturity, int(row["maturity"])),
        agency_province=row["province"],
    )


_FILTERS = """
  AND e.status = 'published'
  AND ($3::text IS NULL OR e.agency = $3)
  AND ($4::text IS NULL OR e.category = $4)
  AND ($5::text IS NULL OR $5 = ANY (e.channels))
  AND ($6::smallint IS NULL OR e.maturity = $6)
  AND ($7::smallint IS NULL OR e.maturity >= $7)
  AND ($8::text IS NULL OR a.province IS NULL OR a.province = $8)
"""

_PAGE = f"""
page AS (
    SELECT service_id, rank FROM ranked ORDER BY rank DESC, title_fa, service_id
    LIMIT $9 OFFSET $10
)
SELECT {", ".join("s." + c.strip() for c in _SERVICE_COLUMNS.split(","))},
       a.name_fa AS agency_name_fa, a.name_en AS agency_name_en, p.rank,
       (SELECT count(*) FROM ranked) AS total
FROM page p JOIN services s USING (service_id) JOIN agencies a ON a.code = s.agency
ORDER BY p.rank DESC, s.title_fa, s.service_id
"""

#: Near matches are looked for only when the words match fewer services than this exactly.
NEAR_MATCHES_BELOW = 50

# Search reads `search_entries` (narrow rows, kept by a trigger from `services`) and the
# services row of the one page it returns. Exact matches come from the full-text index on
# both foldings of titles and descriptions and rank first (ts_rank_cd, titles weigh more).
# Near matches (trigrams of titles: misspellings, word fragments) follow by word
# similarity, and only when exact matches are few: after a common word's thousands of
# exact matches they would add nothing but the cost of testing every title.
_SEARCH = f"""
WITH query AS (
    SELECT websearch_to_tsquery('simple', $1) || websearch_to_tsquery('simple', $2) AS tsq,
           $1::text AS spaced
),
exact AS MATERIALIZED (
    SELECT e.service_id, e.title_fa, 1 + ts_rank_cd(e.document, q.tsq) AS rank
    FROM search_entries e JOIN agencies a ON a.code = e.agency CROSS JOIN query q
    WHERE e.document @@ q.tsq {_FILTERS}
),
near AS MATERIALIZED (
    SELECT e.service_id, e.title_fa, public.word_similarity(q.spaced, e.title_folded) AS rank
    FROM search_entries e JOIN agencies a ON a.code = e.agency CROSS JOIN query q
    WHERE (SELECT count(*) FROM exact) < {NEAR_MATCHES_BELOW}
      AND q.spaced OPERATOR(public.<%) e.title_folded AND NOT e.document @@ q.tsq {_FILTERS}
),
ranked AS (SELECT * FROM exact UNION ALL SELECT * FROM near),
{_PAGE}
"""

# Browsing without words: every published service that passes the filters, by title.
_BROWSE = f"""
WITH ranked AS MATERIALIZED (
    SELECT e.service_id, e.title_fa, 0::real AS rank
    FROM search_entries e JOIN agencies a ON a.code = e.agency
    WHERE length($1) + length($2) >= 0 {_FILTERS}
),
{_PAGE}
"""


class CatalogReads:
    """The register's reads on one connection, in a transaction or not: one statement each.

    `for_update` locks the row until the transaction ends (only inside one, then)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def get_agency(self, code: str, *, for_update: bool = False) -> AgencyRecorded | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self.connection.fetchrow(
            f"SELECT {_AGENCY_COLUMNS} FROM agencies WHERE code = $1{lock}", code
        )
        return _agency(row) if row else None

    async def list_agencies(self, province: str | None = None) -> list[AgencyRecorded]:
        """Every agency (of a province's scope and the national ones, if a province is given)."""
        rows = await self.connection.fetch(
            f"SELECT {_AGENCY_COLUMNS} FROM agencies"
            " WHERE $1::text IS NULL OR province IS NULL OR province = $1 ORDER BY code",
            province,
        )
        return [_agency(row) for row in rows]

    async def all_services(self) -> list[ServiceRecorded]:
        rows = await self.connection.fetch(
            f"SELECT {_SERVICE_COLUMNS} FROM services ORDER BY service_id"
        )
        return [_service(row) for row in rows]

    async def count_register(self) -> int:
        """How many agencies the register holds."""
        count: int = await self.connection.fetchval("SELECT count(*) FROM agencies")
        return count

    async def get_service(
        self, service_id: str, *, for_update: bool = False
    ) -> ServiceRecorded | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self.connection.fetchrow(
            f"SELECT {_SERVICE_COLUMNS} FROM services WHERE service_id = $1{lock}", service_id
        )
        return _service(row) if row else None

    async def service_history(self, service_id: str) -> list[Revision]:
        rows = await self.connection.fetch(
            "SELECT revision, change, changed_fields, changed_by, recorded_at, record"
            " FROM service_revisions WHERE service_id = $1 ORDER BY revision",
            service_id,
        )
        return [_revision(row) for row in rows]

    async def agency_history(self, code: str) -> list[Revision]:
        rows = await self.connection.fetch(
            "SELECT revision, change, changed_fields, changed_by, recorded_at, record"
            " FROM agency_revisions WHERE code = $1 ORDER BY revision",
            code,
        )
        return [_revision(row) for row in rows]

    async def search(self, query: SearchQuery) -> SearchPage:
        """Published services matching the query, most relevant first, one page of them.

        The query is folded exactly as the stored texts were (letter forms, digits,
        diacritics, ZWNJ); a province keeps national agencies' services and that province's.
        Without words, it lists what passes the filters, by title.
        """
        spaced, joined = folded_query(query.text)
        rows = await self.connection.fetch(
            _SEARCH if spaced else _BROWSE,
            spaced,
            joined,
            query.agency,
            query.category,
            query.channel,
            query.maturity,
            query.min_maturity,
            query.province,
            query.limit,
            query.offset,
        )
        hits = [
            SearchHit(
                service=_service(row),
                agency_name_fa=row["agency_name_fa"],
                agency_name_en=row["agency_name_en"],
                rank=float(row["rank"]),
            )
            for row in rows
        ]
        total = int(rows[0]["total"]) if rows else 0
        if not rows and query.offset:
            # Past the last page: no row carries the count, so count alone.
            total = await self._count(query)
        return SearchPage(total=total, hits=hits)

    async def _count(self, query: SearchQuery) -> int:
        page = await self.search(SearchQuery(**{**query.__dict__, "offset": 0, "limit": 1}))
        return page.total

    async def service_view(self, service_id: str) -> ServiceView | None:
        """What a delivery of `service_id` is checked against; None if the service is unknown."""
        row = await self.connection.fetchrow(
            "SELECT s.service_id, s.agency, s.status, s.channels, s.maturity, a.province"
            " FROM services s JOIN agencies a ON a.code = s.agency WHERE s.service_id = $1",
            service_id,
        )
        return _view(row) if row is not None else None

    async def service_views(self, service_ids: Sequence[str]) -> dict[str, ServiceView]:
        """`service_view` for many services in one query, by service id (unknown ones absent)."""
        rows = await self.connection.fetch(
            "SELECT s.service_id, s.agency, s.status, s.channels, s.maturity, a.province"
            " FROM services s JOIN agencies a ON a.code = s.agency"
            " WHERE s.service_id = ANY($1::text[])",
            list(service_ids),
        )
        return {row["service_id"]: _view(row) for row in rows}


class CatalogStorage(UnitOfWork, CatalogReads):
    """The catalog's unit of work: the register's reads and writes in one transaction,
    and the events they announce through its outbox (`publish`)."""

    async def write_agency(
        self, record: AgencyRecorded, change: str, fields: Sequence[str], by: str
    ) -> None:
        """Store the agency's new current state and the revision row of this change."""
        await self.connection.execute(
            "INSERT INTO agencies (code, name_fa, name_en, ministry_fa, ministry_en, province,"
            " window_connected_since, exchange_connected_since, active, revision, name_folded)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (code) DO UPDATE SET name_fa = $2, name_en = $3, ministry_fa = $4,"
            " ministry_en = $5, province = $6, window_connected_since = $7,"
            " exchange_connected_since = $8, active = $9, revision = $10, name_folded = $11,"
            " updated_at = now()",
            record.code,
            record.name_fa,
            record.name_en,
            record.ministry_fa,
            record.ministry_en,
            record.province,
            record.window_connected_since,
            record.exchange_connected_since,
            record.active,
            record.revision,
            " ".join(folded_query(f"{record.name_fa} {record.name_en}")),
        )
        await self.connection.execute(
            "INSERT INTO agency_revisions"
            " (code, revision, change, changed_fields, changed_by, record)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            record.code,
            record.revision,
            change,
            list(fields),
            by,
            json.loads(record.model_dump_json()),
        )

    async def write_service(
        self, record: ServiceRecorded, change: str, fields: Sequence[str], by: str
    ) -> None:
        """Store the service's new current state, its folded texts, and this change's revision."""
        text = search_text(record)
        await self.connection.execute(
            "INSERT INTO services (service_id, agency, title_fa, title_en, description_fa,"
            " description_en, category, audiences, channels, maturity, data_needs, status,"
            " revision, title_folded, description_folded)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            " ON CONFLICT (service_id) DO UPDATE SET agency = $2, title_fa = $3, title_en = $4,"
            " description_fa = $5, description_en = $6, category = $7, audiences = $8,"
            " channels = $9, maturity = $10, data_needs = $11, status = $12, revision = $13,"
            " title_folded = $14, description_folded = $15, updated_at = now()",
            record.service_id,
            record.agency,
            record.title_fa,
            record.title_en,
            record.description_fa,
            record.description_en,
            record.category,
            list(record.audiences),
            list(record.channels),
            record.maturity,
            list(record.data_needs),
            record.status,
            record.revision,
            text.title,
            text.description,
        )
        await self.connection.execute(
            "INSERT INTO service_revisions"
            " (service_id, revision, change, changed_fields, changed_by, record)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            record.service_id,
            record.revision,
            change,
            list(fields),
            by,
            json.loads(record.model_dump_json()),
        )

    async def insert_deliveries(self, deliveries: Sequence[DeliveryRecorded]) -> set[uuid.UUID]:
        """Keep validated deliveries in one statement; the report ids that were new."""
        if not deliveries:
            return set()
        rows = await self.connection.fetch(
            "INSERT INTO deliveries (report_id, service_id, agency, channel, province,"
            " started_at, finished_at, outcome, maturity)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],"
            " $6::timestamptz[], $7::timestamptz[], $8::text[], $9::smallint[])"
            " ON CONFLICT (report_id) DO NOTHING RETURNING report_id",
            [d.report_id for d in deliveries],
            [d.service_id for d in deliveries],
            [d.agency for d in deliveries],
            [d.channel for d in deliveries],
            [d.province for d in deliveries],
            [d.started_at for d in deliveries],
            [d.finished_at for d in deliveries],
            [d.outcome for d in deliveries],
            [d.maturity for d in deliveries],
        )
        return {row["report_id"] for row in rows}

    async def wait_for_other_loads(self) -> None:
        """Hold the reference load's lock to the end of this transaction: two instances
        starting on an empty register load one after the other, not both."""
        await self.connection.execute("SELECT pg_advisory_xact_lock(hashtext('catalog-reference'))")
