"""Every service's code loads in one process (as tests and tools load it) without clashing."""

from __future__ import annotations

import importlib

from shared.messages import MESSAGES


def test_all_services_load_together_and_their_messages_do_not_clash() -> None:
    for service in ("identity", "catalog", "exchange", "metrics"):
        importlib.import_module(f"services.{service}.bootstrap")
    assert all(set(texts) == {"fa", "en"} for texts in MESSAGES.values())
