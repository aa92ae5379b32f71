"""The reference register shipped with the catalog is valid and says what the articles say."""

from __future__ import annotations

from services.catalog.domain import owner_of
from services.catalog.reference import reference_agencies, reference_services
from shared.reference.provinces import PROVINCES


def test_every_province_has_its_ict_directorate_with_provincial_scope() -> None:
    provincial = [a for a in reference_agencies() if a.province is not None]
    assert sorted(a.province for a in provincial if a.province) == sorted(p.code for p in PROVINCES)
    assert len(provincial) == 31


def test_foreign_affairs_is_the_one_national_agency_not_connected_to_the_window() -> None:
    national = [a for a in reference_agencies() if a.province is None]
    assert [a.code for a in national if a.window_connected_since is None] == ["foreign-affairs"]
    codes = {a.code for a in national}
    assert {"civil-registration", "education", "tax", "social-security", "judiciary"} <= codes


def test_every_reference_service_belongs_to_a_connected_reference_agency() -> None:
    connected = {a.code for a in reference_agencies() if a.window_connected_since is not None}
    services = reference_services()
    assert {owner_of(s.service_id) for s in services} <= connected
    report_card = next(s for s in services if s.service_id == "education.report-card")
    assert report_card.maturity == 5
    assert "کارنامه" in report_card.title_fa


def test_reference_codes_are_unique() -> None:
    agencies = [a.code for a in reference_agencies()]
    services = [s.service_id for s in reference_services()]
    assert len(agencies) == len(set(agencies))
    assert len(services) == len(set(services))
