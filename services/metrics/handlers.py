"""Handlers of the events the metrics service consumes, by event type.

Each handler is a plain function of (event, connection) that runs inside the transaction
the inbox opened for that event; `shared.runtime` consumes the topics these events travel
on and calls the handlers.
"""

from __future__ import annotations

from shared.runtime import Handlers

HANDLERS: Handlers = {}
