"""The exchange's first signing key is committed before anything is signed with it.

The exchange keeps its signer once loaded, and several polls sign concurrently. Were the
first key made inside a poll's transaction, the other polls would sign with it and commit
while that poll was still open; a failure of that poll, or the process killed before it
committed, then leaves committed records signed by a key `/keys` never lists, which
every agency refuses.
"""

from __future__ import annotations

import pytest

from services.exchange import storage
from services.exchange.bootstrap import commit_signing_key
from services.exchange.settings import ExchangeSettings
from services.exchange.storage import ExchangeStorage
from services.exchange.use_cases import registers
from shared.db import Pool
from shared.sealing import Sealer
from shared.unit_of_work import transaction
from tests.schemas import migrated_schema

pytestmark = pytest.mark.integration


class PollFailed(Exception):
    pass


async def sign_then_fail(pool: Pool) -> None:
    """A poll that signs, then fails: its transaction rolls back."""
    async with transaction(pool, ExchangeStorage) as work:
        await work.signer()
        raise PollFailed


async def test_a_poll_that_fails_after_signing_leaves_no_key_the_exchange_does_not_list(
    admin_database_url: str,
) -> None:
    sealer = Sealer(ExchangeSettings().data_key_bytes)
    async with migrated_schema(admin_database_url, "x", "exchange") as (_, pool):
        storage.seal_signing_keys_with(sealer)  # a process that has loaded no key yet
        try:
            # What the exchange does at start, on a database without a signing key.
            made = await commit_signing_key(pool)
            with pytest.raises(PollFailed):
                await sign_then_fail(pool)
            async with transaction(pool, ExchangeStorage) as work:
                signing = (await work.signer()).kid
                listed = [kid for kid, _ in await registers.public_keys(work)]
        finally:
            storage.seal_signing_keys_with(sealer)  # forget this schema's key
    assert signing == made
    assert listed == [made]
