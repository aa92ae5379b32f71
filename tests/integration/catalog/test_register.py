"""The register on the real broker and database: agencies publish services, citizens find
them however they type, and the compacted topics alone rebuild the register."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.catalog import reference
from services.catalog.storage import NEAR_MATCHES_BELOW, CatalogReads
from shared.envelope import Envelope
from shared.events.catalog import AgencyRecorded, ServiceRecorded
from shared.registry import decode
from shared.topics import Topic
from tests.integration.catalog.conftest import Catalog, unique_code
from tests.integration.kafka_helpers import read_all
from tests.polling import eventually

pytestmark = pytest.mark.integration

_LETTERS = "بپتجچخدرزسشغفکگی"


def persian_word() -> str:
    """A Persian word no other test uses, with ک and ی in it."""
    return "ک" + "".join(_LETTERS[int(c, 16)] for c in uuid.uuid4().hex[:8]) + "ی"


def arabic_forms(text: str) -> str:
    return text.replace("ک", "ك").replace("ی", "ي")


async def register_agency(catalog: Catalog, code: str, **extra: Any) -> None:
    body = {"code": code, "name_fa": f"دستگاه آزمون {code}", "name_en": f"Test agency {code}"}
    response = await catalog.client.post(
        "/agencies", json=body | extra, headers=catalog.signer.headers("ito", "catalog:write")
    )
    assert response.status_code == 201, response.text


def service_body(service_id: str, title_fa: str, **extra: Any) -> dict[str, Any]:
    return {
        "service_id": service_id,
        "title_fa": title_fa,
        "title_en": "View a pupil's report card",
        "description_fa": "والدین کارنامه فرزند خود را بدون مراجعه به مدرسه می‌بینند.",
        "description_en": "Parents see their child's report card without visiting the school.",
        "category": "education",
        "audiences": ["citizens"],
        "channels": ["online"],
        "maturity": 5,
        "data_needs": ["civil-registration.person"],
        **extra,
    }


async def test_a_published_service_is_found_by_a_persian_query_with_arabic_forms_and_no_zwnj(
    catalog: Catalog,
) -> None:
    code, word = unique_code(), persian_word()
    service_id = f"{code}.report-card"
    await register_agency(catalog, code)
    writer = catalog.signer.headers(code, "catalog:write")
    title = f"مشاهده کارنامه دانش‌آموز {word}"
    drafted = await catalog.client.post(
        "/services", json=service_body(service_id, title), headers=writer
    )
    assert drafted.status_code == 201, drafted.text
    assert drafted.json()["status"] == "draft"

    query = {"q": arabic_forms(f"كارنامه دانشآموز {word}")}
    assert "\u200c" not in query["q"]
    assert "ك" in query["q"]

    async def found_ids() -> list[str]:
        found = await catalog.client.get("/services", params=query)
        return [hit["service_id"] for hit in found.json()["results"]]

    assert service_id not in await found_ids()
    assert (await catalog.client.get(f"/services/{service_id}")).status_code == 404

    published = await catalog.client.post(f"/services/{service_id}/publish", headers=writer)
    assert published.status_code == 200, published.text

    # First: other report-card services may follow, as near matches ranked lower.
    assert (await found_ids())[0] == service_id
    found = (await catalog.client.get("/services", params=query)).json()
    assert found["results"][0]["smart"] is True
    by_agency = await catalog.client.get(
        "/services", params={"q": "كارنامه دانش آموز", "agency": code}
    )
    assert [hit["service_id"] for hit in by_agency.json()["results"]] == [service_id]
    english = await catalog.client.get("/services", params={"q": "report card", "agency": code})
    assert english.json()["total"] == 1
    page = (await catalog.client.get(f"/services/{service_id}")).json()
    assert page["title_fa"] == title
    assert page["agency_page"]["code"] == code


async def test_every_change_is_kept_as_a_revision_and_announced_in_order(
    catalog: Catalog,
) -> None:
    code = unique_code()
    service_id = f"{code}.tax-return"
    await register_agency(catalog, code)
    writer = catalog.signer.headers(code, "catalog:write")
    body = service_body(service_id, "تسلیم اظهارنامه مالیاتی", maturity=3)
    assert (await catalog.client.post("/services", json=body, headers=writer)).status_code == 201
    await catalog.client.post(f"/services/{service_id}/publish", headers=writer)
    content = {k: v for k, v in body.items() if k != "service_id"} | {"maturity": 4}
    updated = await catalog.client.put(f"/services/{service_id}", json=content, headers=writer)
    assert updated.json()["revision"] == 3
    retired = await catalog.client.post(f"/services/{service_id}/retire", headers=writer)
    assert retired.json()["status"] == "retired"

    history = (await catalog.client.get(f"/services/{service_id}/history")).json()
    assert [(r["revision"], r["change"]) for r in history["revisions"]] == [
        (1, "ServiceDrafted"),
        (2, "ServicePublished"),
        (3, "ServiceUpdated"),
        (4, "ServiceRetired"),
    ]
    assert history["revisions"][2]["changed_fields"] == ["maturity"]

    def mine(records: list[Any]) -> list[bytes]:
        return [r.value for r in records if r.key == service_id.encode()]

    changes = await read_all(
        catalog.observer,
        Topic.CATALOG_CHANGES,
        until=lambda rs: len(mine(rs)) >= 4,
    )
    announced: list[Envelope[Any]] = [decode(v, Topic.CATALOG_CHANGES) for v in mine(changes)]
    assert [(e.type, e.payload.revision) for e in announced] == [
        ("ServiceDrafted", 1),
        ("ServicePublished", 2),
        ("ServiceUpdated", 3),
        ("ServiceRetired", 4),
    ]
    assert all(e.subject == service_id for e in announced)
    assert announced[0].payload.changed_by.startswith(f"agency:{code}:")


async def test_agencies_write_only_their_own_services_and_only_operators_register_agencies(
    catalog: Catalog,
) -> None:
    code, other = unique_code(), unique_code()
    await register_agency(catalog, code)
    await register_agency(catalog, other)
    service_id = f"{code}.school-enrollment"
    intruder = catalog.signer.headers(other, "catalog:write")
    refused = await catalog.client.post(
        "/services", json=service_body(service_id, "ثبت‌نام دانش‌آموز"), headers=intruder
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_your_service"
    assert refused.headers["content-type"] == "application/problem+json"
    assert set(refused.json()["messages"]) == {"fa", "en"}

    not_operator = await catalog.client.post(
        "/agencies",
        json={"code": unique_code(), "name_fa": "دستگاه", "name_en": "Agency"},
        headers=catalog.signer.headers(code, "catalog:write"),
    )
    assert not_operator.status_code == 403
    assert not_operator.json()["code"] == "not_operator"

    no_scope = await catalog.client.post(
        "/services",
        json=service_body(service_id, "ثبت‌نام دانش‌آموز"),
        headers=catalog.signer.headers(code, "catalog:deliveries"),
    )
    assert no_scope.status_code == 403
    anonymous = await catalog.client.post(
        "/services", json=service_body(service_id, "ثبت‌نام دانش‌آموز")
    )
    assert anonymous.status_code == 401


async def test_an_operator_updates_an_agency_and_its_history_keeps_both_revisions(
    catalog: Catalog,
) -> None:
    code = unique_code()
    await register_agency(catalog, code)
    operator = catalog.signer.headers("ito", "catalog:write")
    body = {
        "code": code,
        "name_fa": f"دستگاه آزمون {code}",
        "name_en": f"Test agency {code}",
        "window_connected_since": "2024-06-23",
    }
    updated = await catalog.client.put(f"/agencies/{code}", json=body, headers=operator)
    assert updated.status_code == 200, updated.text
    assert updated.json()["revision"] == 2
    assert updated.json()["window_connected_since_jalali"] == "1403/04/03"
    history = (await catalog.client.get(f"/agencies/{code}/history")).json()
    assert [(r["change"], r["changed_fields"]) for r in history["revisions"]] == [
        ("AgencyRegistered", history["revisions"][0]["changed_fields"]),
        ("AgencyUpdated", ["window_connected_since"]),
    ]
    duplicate = await catalog.client.post("/agencies", json=body, headers=operator)
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "agency_exists"


async def test_search_filters_by_province_scope_channel_and_maturity(catalog: Catalog) -> None:
    national, provincial, word = unique_code(), unique_code(), persian_word()
    await register_agency(catalog, national)
    await register_agency(catalog, provincial, province="IR-15")
    for agency, channels, maturity in ((national, ["online"], 5), (provincial, ["pishkhan"], 2)):
        writer = catalog.signer.headers(agency, "catalog:write")
        service_id = f"{agency}.permit"
        body = service_body(service_id, f"صدور مجوز {word}", channels=channels, maturity=maturity)
        assert (await catalog.client.post("/services", json=body, headers=writer)).is_success
        await catalog.client.post(f"/services/{service_id}/publish", headers=writer)

    async def ids(**params: Any) -> set[str]:
        found = await catalog.client.get("/services", params={"q": word, **params})
        return {hit["service_id"] for hit in found.json()["results"]}

    both = {f"{national}.permit", f"{provincial}.permit"}
    assert await ids() == both
    assert await ids(province="IR-15") == both
    assert await ids(province="IR-23") == {f"{national}.permit"}
    assert await ids(channel="pishkhan") == {f"{provincial}.permit"}
    assert await ids(min_maturity=3) == {f"{national}.permit"}
    assert await ids(maturity=2) == {f"{provincial}.permit"}
    paged = (await catalog.client.get("/services", params={"q": word, "per_page": 1})).json()
    assert paged["total"] == 2
    assert len(paged["results"]) == 1


async def test_search_follows_a_services_new_title_and_its_retirement(catalog: Catalog) -> None:
    code, before, after = unique_code(), persian_word(), persian_word()
    service_id = f"{code}.permit"
    await register_agency(catalog, code)
    writer = catalog.signer.headers(code, "catalog:write")
    body = service_body(service_id, f"صدور مجوز {before}")
    assert (await catalog.client.post("/services", json=body, headers=writer)).is_success
    await catalog.client.post(f"/services/{service_id}/publish", headers=writer)

    async def found(word: str) -> list[str]:
        page = await catalog.client.get("/services", params={"q": word})
        return [hit["service_id"] for hit in page.json()["results"]]

    assert await found(before) == [service_id]
    content = {k: v for k, v in body.items() if k != "service_id"} | {
        "title_fa": f"صدور مجوز {after}"
    }
    revised = await catalog.client.put(f"/services/{service_id}", json=content, headers=writer)
    assert revised.is_success, revised.text
    assert await found(after) == [service_id]
    assert await found(before) == []
    await catalog.client.post(f"/services/{service_id}/retire", headers=writer)
    assert await found(after) == []


async def test_near_matches_follow_only_while_the_words_match_few_services_exactly(
    catalog: Catalog,
) -> None:
    code, word = unique_code(), persian_word()
    await register_agency(catalog, code)
    writer = catalog.signer.headers(code, "catalog:write")

    async def publish(service_id: str, title: str) -> None:
        body = service_body(service_id, title)
        assert (await catalog.client.post("/services", json=body, headers=writer)).is_success
        await catalog.client.post(f"/services/{service_id}/publish", headers=writer)

    # One word longer than the query: not the query's word, but close to it.
    near = f"{code}.near"
    await publish(near, f"صدور مجوز {word}ها")
    await publish(f"{code}.exact-0", f"صدور مجوز {word}")

    async def search() -> dict[str, Any]:
        page = await catalog.client.get(
            "/services", params={"q": word, "agency": code, "per_page": 100}
        )
        found: dict[str, Any] = page.json()
        return found

    few = await search()
    assert few["total"] == 2
    assert [hit["service_id"] for hit in few["results"]] == [f"{code}.exact-0", near]

    for number in range(1, NEAR_MATCHES_BELOW):
        await publish(f"{code}.exact-{number}", f"صدور مجوز {word}")
    many = await search()
    assert many["total"] == NEAR_MATCHES_BELOW
    assert near not in {hit["service_id"] for hit in many["results"]}


async def test_reference_data_loads_idempotently(catalog: Catalog) -> None:
    await reference.load(catalog.runtime.pool)
    again = await reference.load(catalog.runtime.pool)
    assert set(again.agencies) == {"unchanged"}
    assert set(again.services) == {"unchanged"}
    page = (await catalog.client.get("/agencies/foreign-affairs")).json()
    assert page["connected_to_window"] is False
    found = await catalog.client.get("/services", params={"q": "كارنامه دانشآموز"})
    assert "education.report-card" in {hit["service_id"] for hit in found.json()["results"]}


async def test_a_projection_rebuilt_from_the_compacted_topics_alone_equals_the_database(
    catalog: Catalog,
) -> None:
    pool = catalog.runtime.pool

    async def unpublished() -> int:
        count: int = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return count

    pending = [1]

    async def refresh() -> None:
        pending[0] = await unpublished()

    await refresh()
    while pending[0]:
        await eventually(lambda: True, timeout=1)
        await refresh()

    async with pool.acquire() as connection:
        reads = CatalogReads(connection)
        services = {s.service_id: s for s in await reads.all_services()}
        agencies = {a.code: a for a in await reads.list_agencies()}
        # Other tests stand in for the catalog on the same broker; the rebuild takes the
        # records this catalog published, as a consumer of a real platform would see them.
        ours = {row["event_id"] for row in await connection.fetch("SELECT event_id FROM outbox")}

    def latest(records: list[Any], topic: Topic) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for record in records:
            envelope: Envelope[Any] = decode(record.value, topic)
            if envelope.id in ours:
                state[record.key.decode()] = envelope.payload
        return state

    kafka = catalog.observer
    service_records = await read_all(
        kafka,
        Topic.CATALOG_SERVICES,
        until=lambda rs: latest(rs, Topic.CATALOG_SERVICES) == services,
    )
    agency_records = await read_all(
        kafka,
        Topic.CATALOG_AGENCIES,
        until=lambda rs: latest(rs, Topic.CATALOG_AGENCIES) == agencies,
    )
    rebuilt_services = latest(service_records, Topic.CATALOG_SERVICES)
    rebuilt_agencies = latest(agency_records, Topic.CATALOG_AGENCIES)
    assert all(isinstance(s, ServiceRecorded) for s in rebuilt_services.values())
    assert all(isinstance(a, AgencyRecorded) for a in rebuilt_agencies.values())
    assert len(services) > 0
    assert rebuilt_services == services
    assert rebuilt_agencies == agencies


@pytest.mark.parametrize(
    "query",
    ["!!!", "   ", "\u200c", "«»", "۱۴۰۳", "a" * 200, '"کارنامه" -دانش OR', "ـــــ"],
)
async def test_odd_queries_are_answered_never_failed(catalog: Catalog, query: str) -> None:
    response = await catalog.client.get("/services", params={"q": query})
    assert response.status_code == 200, response.text
    assert response.json()["total"] >= 0


async def test_bad_filters_and_pages_are_problems_in_both_languages(catalog: Catalog) -> None:
    for params in ({"province": "IR-99x"}, {"maturity": 9}, {"page": 0}, {"per_page": 1000}):
        response = await catalog.client.get("/services", params=params)
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_request"
        assert set(response.json()["messages"]) == {"fa", "en"}
    beyond = await catalog.client.get("/services", params={"q": "کارنامه", "page": 10000})
    assert beyond.json()["results"] == []
    assert beyond.json()["total"] >= 1
