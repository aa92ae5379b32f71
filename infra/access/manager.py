"""The access manager: agencies' channels, principals and ACLs, kept equal to the catalog."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from aiokafka import AIOKafkaProducer

from infra.access.agencies import agency_consumer, take
from infra.platform.access import current_mechanism
from infra.platform.provision import InitReport, ensure_access, ensure_topics
from infra.platform.secrets import SecretStore
from shared.envelope import Envelope
from shared.events.platform import ChannelsOpened
from shared.kafka import event_headers, new_producer
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.principals import agency_principal
from shared.topics import SINGLE_BROKER, Durability, Topic

log = get_logger(__name__)

#: Agencies named in one announcement: a national register (about 150) fits in one.
AGENCIES_PER_ANNOUNCEMENT = 1_000


def _await_login(access: KafkaAccess, within: float = 120.0) -> None:
    """Block until `access` can log in (librdkafka: its refusals stay off our logs).

    The broker applies a new user after every metadata change before it, and making the
    logs of a register's worth of new channels (2,000 partitions) takes it up to a minute
    under load: a shorter wait failed the reconciliation only to redo it.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    config: dict[str, str | int | float | bool] = dict(access.librdkafka_config())
    config["log_level"] = 0
    deadline = time.monotonic() + within
    while True:
        try:
            AdminClient(config).list_topics(timeout=3)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class AccessManager:
    """Follows `catalog.agencies` and reconciles after each change.

    Contract: `run()` blocks until `stop()`; `ready` is set after the first
    reconciliation of everything the catalog had recorded at start; `provisioned` says
    whether everything it has read so far is reconciled. A reconciliation that
    fails (the broker away) is retried; it is idempotent. Each active agency's
    credentials file is written to `credentials_dir` (owner-only), and removed with it.
    Once an agency's channels are open, it says so on `platform.channels`, once per
    process: after a restart every active agency is announced again, which costs the
    readers one metadata refresh and can miss nothing.
    """

    def __init__(
        self,
        admin: KafkaAccess,
        passwords: SecretStore,
        *,
        development: bool,
        credentials_dir: Path,
        retry_seconds: float = 2.0,
        durability: Durability = SINGLE_BROKER,
    ) -> None:
        self._admin = admin
        self._durability = durability
        self._passwords = passwords
        self._development = development
        self._credentials_dir = credentials_dir
        self._retry_seconds = retry_seconds
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self.provisioned = False
        self.agencies: dict[str, bool] = {}
        self._announced: set[str] = set()

    async def reconcile(self, agencies: Mapping[str, bool]) -> list[str]:
        """Make topics, users, ACLs and credentials files match `agencies`; the changes."""
        for code, active in agencies.items():
            if not active:
                # Withdrawn before the broker refuses it, so nothing hands out a secret
                # that no longer works; a reactivated agency gets a new one, never this.
                self._credentials_file(code).unlink(missing_ok=True)
                self._passwords.remove(agency_principal(code))
        report = InitReport()
        await ensure_topics(
            self._admin, report, agencies=list(agencies), durability=self._durability
        )
        await ensure_access(
            self._admin,
            self._passwords,
            report,
            development=self._development,
            agencies=agencies,
        )
        await self._issue_credentials(code for code, active in agencies.items() if active)
        return report.lines()

    def _credentials_file(self, code: str) -> Path:
        return self._credentials_dir / f"{agency_principal(code)}.properties"

    async def _issue_credentials(self, active: Iterable[str]) -> None:
        self._credentials_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        issued: list[tuple[Path, KafkaAccess]] = []
        for code in active:
            name = agency_principal(code)
            path = self._credentials_file(code)
            access = replace(
                self._admin.as_principal(name, self._passwords.get(name)),
                mechanism=current_mechanism(self._passwords, name),
            )
            issued.append((path, access))
        new = [access for path, access in issued if not path.exists()]
        if new:
            # A new user reaches the broker's credential cache a moment after the
            # controller accepted it, all of one batch together: once the last can log
            # in, every one can. Hand out nothing that would be refused.
            await asyncio.to_thread(_await_login, new[-1])
        for path, access in issued:
            path.touch(mode=0o600)
            path.chmod(0o600)
            path.write_text(access.properties())

    async def announce(self, producer: AIOKafkaProducer) -> list[str]:
        """Announce the active agencies not yet announced; their codes."""
        opened = sorted(
            code for code, active in self.agencies.items() if active and code not in self._announced
        )
        for start in range(0, len(opened), AGENCIES_PER_ANNOUNCEMENT):
            envelope = Envelope.wrap(
                ChannelsOpened(agencies=opened[start : start + AGENCIES_PER_ANNOUNCEMENT]),
                source="access-manager",
                subject="access-manager",
            )
            await producer.send_and_wait(
                Topic.PLATFORM_CHANNELS,
                envelope.to_bytes(),
                key=b"access-manager",
                headers=event_headers(envelope),
            )
        self._announced.update(opened)
        return opened

    async def run(self) -> None:
        consumer, tps = await agency_consumer(self._admin)
        producer = new_producer(self._admin, client_id="access-manager")
        try:
            await producer.start()
            ends = await consumer.end_offsets(tps)
            pending = True
            while not self._stopping.is_set():
                batch = await consumer.getmany(*tps, timeout_ms=500)
                for records in batch.values():
                    pending |= take(self.agencies, records)
                # Before anything awaits: /health never shows new agencies as provisioned.
                self.provisioned = self.provisioned and not pending
                caught_up = all([await consumer.position(tp) >= ends[tp] for tp in tps])
                if pending and caught_up:
                    await self._reconcile_until_done(producer)
                    pending = False
                    self.ready.set()
                self.provisioned = caught_up and not pending
        finally:
            await producer.stop()
            await consumer.stop()

    async def _reconcile_until_done(self, producer: AIOKafkaProducer) -> None:
        while not self._stopping.is_set():
            try:
                changes = await self.reconcile(dict(self.agencies))
                opened = await self.announce(producer)
            except Exception as error:  # the broker away, a race with init: try again
                log.warning("access reconciliation failed, retrying", error=repr(error))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._retry_seconds)
                continue
            for change in changes:
                log.info("access changed", change=change)
            if opened:
                log.info("channels announced", agencies=len(opened))
            return

    async def stop(self) -> None:
        self._stopping.set()
