"""Waiting for what happens elsewhere (a consumer, a relay) without sleeping blindly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(check: Callable[[], bool], timeout: float = 45) -> None:
    """Return once `check()` is true, polling every 0.1 s; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)
