"""What the e2e modules that drive an exchange of their own share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.e2e.exchange_load import PORT


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the exchange process the module starts (`exchange_load.PORT`)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=10) as client:
        yield client
