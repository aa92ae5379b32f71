"""Load the reference register: `python -m services.catalog.reference` (idempotent)."""

from __future__ import annotations

import asyncio

from services.catalog.reference import load
from services.catalog.settings import CatalogSettings
from shared.db import create_pool


async def _main() -> None:
    settings = CatalogSettings()
    pool = await create_pool(settings.database_url, settings.database_schema, max_size=2)
    try:
        for line in (await load(pool)).lines():
            print(line)
    finally:
        await pool.close()


def main() -> None:
    """Load the agencies and services shipped in services/catalog/reference/."""
    asyncio.run(_main())


if __name__ == "__main__":
    main()
