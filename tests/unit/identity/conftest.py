"""Identity's use cases with a fake unit of work: what a test needs to drive them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from services.identity.adapters.sms_gateway import SmsGatewaySettings
from services.identity.domain.citizens import national_id_check_digit, pseudonym
from services.identity.settings import IdentitySettings
from services.identity.use_cases import agencies, citizens
from services.identity.use_cases.ports import Dependencies
from shared.events.catalog import AgencyRecorded
from shared.events.identity import SmsRequested
from tests.unit.identity.fakes import FakeHasher, FakeIdentity, FakeOperatorCheck, FakeSigner

NOW = datetime(2026, 3, 20, 8, 30, tzinfo=UTC)
ADDRESS = "10.1.2.3"
NETWORK = "10.1.2.0/24"  # what limits and lockouts count ADDRESS under
MOBILE = "09121234567"


def national_id(first_nine: str = "123456780") -> str:
    return first_nine + str(national_id_check_digit(first_nine))


@pytest.fixture
def storage() -> FakeIdentity:
    return FakeIdentity()


@pytest.fixture
def signer() -> FakeSigner:
    return FakeSigner()


@pytest.fixture
def hasher() -> FakeHasher:
    return FakeHasher()


@pytest.fixture
def operator_check() -> FakeOperatorCheck:
    return FakeOperatorCheck()


@pytest.fixture
def settings() -> IdentitySettings:
    return IdentitySettings(
        code_resend_seconds=60,
        code_attempts=3,
        citizen_max_failures=5,
        address_max_failures=6,
        issuer="http://identity.test",
    )


@pytest.fixture
def deps(
    settings: IdentitySettings,
    signer: FakeSigner,
    hasher: FakeHasher,
    operator_check: FakeOperatorCheck,
) -> Dependencies:
    return Dependencies(
        settings=settings,
        signer=signer,
        operator_check=operator_check,
        hasher=hasher,
        sms_gateway_key=settings.sms_gateway_key,
    )


def citizen_of(deps: Dependencies, national: str | None = None) -> str:
    return pseudonym(national or national_id(), deps.pseudonym_key)


async def registered(storage: FakeIdentity, deps: Dependencies, national: str | None = None) -> str:
    form = citizens.Registration(
        national_id=national or national_id(),
        mobile=MOBILE,
        first_name=" مریم ",
        last_name="رضایی",
        birth_date="1365/06/31",
        calendar=None,
        province="IR-23",
    )
    return await citizens.register(storage, deps, form, ADDRESS, NOW)


def agency(
    revision: int, *, active: bool = True, name: str = "Ministry of Education"
) -> AgencyRecorded:
    """The education agency as the catalog records it, at one revision."""
    return AgencyRecorded.model_validate(
        {
            "code": "education",
            "name_fa": "وزارت آموزش و پرورش",
            "name_en": name,
            "ministry_fa": None,
            "ministry_en": None,
            "province": None,
            "window_connected_since": None,
            "exchange_connected_since": None,
            "active": active,
            "revision": revision,
        }
    )


async def project(storage: FakeIdentity, record: AgencyRecorded) -> None:
    """Identity's projection of the catalog's agencies takes in one record."""
    async with storage.transaction() as work:
        await agencies.project_agency(work, record)


def codes_sent(storage: FakeIdentity) -> list[str]:
    """The codes of every text message published, opened with the gateway's key."""
    gateway = SmsGatewaySettings().opening_key
    found = []
    for message in storage.payloads(SmsRequested):
        match = re.search(r"code: (\d{6})", message.open(gateway).text)
        assert match is not None
        found.append(match.group(1))
    return found
