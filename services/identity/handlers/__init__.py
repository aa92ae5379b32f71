"""Identity's handlers: of the events it consumes, and of the commands its API receives.

Event handlers (`HANDLERS`) are plain functions of (event, connection) that run inside
the transaction the inbox opened for that event. Command handlers (`citizens`, `tokens`,
`agencies`) each run one use case in one transaction, with the events it causes written
to the outbox in that same transaction.
"""

from services.identity.handlers.events import HANDLERS

__all__ = ["HANDLERS"]
