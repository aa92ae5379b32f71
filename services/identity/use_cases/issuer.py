"""The issuer's signing keys: the first key, and rotation without downtime.

Every change to a key is published as `IssuerKeyPublished` in the same transaction. Any
number of instances may run these at once: the first thing each does is take the
issuer keys' lock, so one after the other decides on what the one before did.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from services.identity.domain.tokens import (
    SigningKey,
    new_signing_key,
    plan_rotation,
    published,
    rotation_due,
)
from services.identity.settings import IdentitySettings
from services.identity.use_cases.ports import SOURCE, IdentityWork
from shared.envelope import Envelope
from shared.logging import get_logger

log = get_logger(__name__)


async def ensure_key(work: IdentityWork, settings: IdentitySettings, now: datetime) -> None:
    """Create and publish the first key if there is none; seal keys stored in the clear;
    publish every key again under the issuer of these settings."""
    await work.lock_issuer_keys()
    if sealed := await work.seal_plain_issuer_keys():
        log.info("issuer keys sealed", count=sealed)
    keys = await work.issuer_keys()
    if not keys:
        await _add_key(work, settings, new_signing_key(now, now))
        log.info("first issuer key created")
    # Services trust keys of the issuer pinned in their settings alone: republish every
    # key under this issuer, so a renamed issuer's tokens stay verifiable.
    for key in keys:
        await _announce(work, settings, key)


async def rotate(
    work: IdentityWork, settings: IdentitySettings, now: datetime, *, force: bool = False
) -> SigningKey | None:
    """Publish a successor key that signs after `key_publish_ahead_seconds`.

    Every key in use is retired for when its last token will have expired. Returns the
    new key, or None when no rotation was due (unless forced).
    """
    await work.lock_issuer_keys()
    keys = await work.issuer_keys()
    if not force and not rotation_due(keys, now, timedelta(days=settings.signing_key_days)):
        return None
    if not keys:
        key = new_signing_key(now, now)
    else:
        plan = plan_rotation(
            now,
            timedelta(seconds=settings.key_publish_ahead_seconds),
            timedelta(seconds=settings.access_token_seconds),
        )
        key = new_signing_key(now, plan.new_not_before)
        for old in keys:
            if old.retired_at is None:
                await work.retire_issuer_key(old.kid, plan.old_retired_at)
                await _announce(work, settings, replace(old, retired_at=plan.old_retired_at))
    await _add_key(work, settings, key)
    log.info("issuer key rotated", kid=key.kid, signs_from=key.not_before.isoformat())
    return key


async def _add_key(work: IdentityWork, settings: IdentitySettings, key: SigningKey) -> None:
    await work.insert_issuer_key(key)
    await _announce(work, settings, key)


async def _announce(work: IdentityWork, settings: IdentitySettings, key: SigningKey) -> None:
    event = published(key, settings.issuer)
    await work.publish([Envelope.wrap(event, source=SOURCE, subject=key.kid)])
