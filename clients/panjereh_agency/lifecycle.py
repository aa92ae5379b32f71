"""What every long-lived part of the package shares: started and stopped, or used in
`async with`."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Started:
    """`async with part:` starts the part and stops it on leaving, whatever happened."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
