"""Incremental fetch sessions (KIP-227) for aiokafka's consumer.

aiokafka names every assigned partition in every fetch and decodes every partition of
every answer. The exchange and the catalog read every agency's channel: with a national
register that is hundreds of partitions, nearly all idle, and at a few requests a second
most of the exchange's CPU went to fetches, and its latency with it. In a fetch session
the broker keeps the partition set: a fetch names only what changed (a partition added,
moved on or forgotten) and the answer holds only partitions with news.

aiokafka 0.14 knows the protocol's session fields but always asks for a full fetch.
`use_fetch_sessions` gives a started consumer a fetcher that keeps one session per
broker; everything else (positions, the discarding of stale answers, errors per
partition) stays aiokafka's. Any failure ends the session, and the next fetch is full.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.protocol.fetch import FetchRequest

from shared.logging import get_logger

log = get_logger(__name__)

#: Sessions exist from this version of the Fetch API on.
SESSION_VERSION = 7
#: The broker's answers that end a session: it has no such session (evicted, or the
#: broker restarted), or the epoch is not the one it expects.
FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
#: Epochs run from 1 to this, then start again at 1; 0 asks for a new session.
LAST_EPOCH = 2**31 - 1

Partition = tuple[str, int]


class FetchSession:
    """What one broker holds of one consumer's fetches: the session id, the epoch the
    next fetch carries, and each partition's fetch offset as of the last answer."""

    def __init__(self) -> None:
        self.id = 0
        self.epoch = 0
        self.held: dict[Partition, int] = {}

    def restart(self) -> None:
        """The next fetch is full; with the old id, so the broker frees its session."""
        self.epoch = 0
        self.held = {}

    def forget(self) -> None:
        """The broker has no session for us: the next fetch is full and asks for one."""
        self.id = 0
        self.restart()

    def settle(self, sent: SessionFetchRequest, response: Any) -> None:
        """Take the answer to `sent` (which this session built)."""
        if response.API_VERSION < SESSION_VERSION:
            return
        if response.error_code in (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH):
            log.debug("fetch session ended by the broker", error_code=response.error_code)
            self.forget()
        elif response.error_code != 0:
            self.restart()
        elif sent.epoch == 0:
            # A full fetch; the broker may decline to keep a session (its cache is full).
            self.id = response.session_id
            self.epoch = 1 if self.id else 0
            self.held = sent.wanted if self.id else {}
        else:
            self.epoch = 1 if self.epoch == LAST_EPOCH else self.epoch + 1
            self.held = sent.wanted


class SessionFetchRequest(FetchRequest):  # type: ignore[misc]  # untyped in aiokafka
    """A fetch of `topics` within a session: on the wire, only the difference from what
    the session holds. `topics` stays the whole set, as aiokafka reads the answer by it."""

    def __init__(self, base: FetchRequest, session: FetchSession, rack_id: str) -> None:
        super().__init__(
            base._max_wait_ms,
            base._min_bytes,
            base._max_bytes,
            base._isolation_level,
            base.topics,
            rack_id=rack_id,
        )
        self.session = session
        self.wanted: dict[Partition, int] = {
            (topic, partition): offset
            for topic, partitions in base.topics
            for partition, offset, _ in partitions
        }
        self._max_partition_bytes = {
            topic: partitions[0][2] for topic, partitions in base.topics if partitions
        }
        self.epoch = 0

    def build(self, request_struct_class: Any) -> Any:
        if request_struct_class.API_VERSION < SESSION_VERSION:
            return super().build(request_struct_class)
        session = self.session
        self.epoch = session.epoch
        if session.epoch == 0:
            changed, forgotten = self.topics, []
        else:
            by_topic: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
            for (topic, partition), offset in self.wanted.items():
                if session.held.get((topic, partition)) != offset:
                    by_topic[topic].append((partition, offset, self._max_partition_bytes[topic]))
            gone: dict[str, list[int]] = defaultdict(list)
            for topic, partition in session.held.keys() - self.wanted.keys():
                gone[topic].append(partition)
            changed, forgotten = list(by_topic.items()), list(gone.items())
        struct = FetchRequest(
            self._max_wait_ms,
            self._min_bytes,
            self._max_bytes,
            self._isolation_level,
            changed,
            rack_id=self._rack_id,
        ).build(request_struct_class)
        struct.session_id = session.id
        struct.session_epoch = session.epoch
        struct.forgotten_topics_data = forgotten
        return struct


class _SessionClient:
    """The consumer's client, as its fetcher sees it: a fetch's answer settles its session,
    and a fetch that fails or is cancelled (so that what the broker saw is unknown) ends
    it."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def send(self, node_id: int, request: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(request, SessionFetchRequest):
            return await self._client.send(node_id, request, *args, **kwargs)
        try:
            response = await self._client.send(node_id, request, *args, **kwargs)
        except BaseException:
            request.session.restart()
            raise
        request.session.settle(request, response)
        return response


class SessionFetcher(Fetcher):  # type: ignore[misc]  # untyped in aiokafka
    """aiokafka's fetcher, fetching within one session per broker."""

    def __init__(self, client: Any, *args: Any, **kwargs: Any) -> None:
        self._sessions: dict[int, FetchSession] = defaultdict(FetchSession)
        super().__init__(_SessionClient(client), *args, **kwargs)

    def _get_actions_per_node(self, assignment: Any) -> Any:
        """What to fetch from each broker, what to reset, how long to wait.

        aiokafka's own, less its per-partition costs, when no rack is set (so every
        partition is read from its leader): it runs over every assigned partition each
        time the fetcher wakes, and with a register's channels that loop was a sixth
        of the exchange's CPU at 100 requests a second."""
        if self._client_rack:
            fetch_requests, *rest = super()._get_actions_per_node(assignment)
            return ([(n, self._in_session(n, r)) for n, r in fetch_requests], *rest)
        fetchable: dict[int, list[tuple[Any, int]]] = defaultdict(list)
        awaiting_reset: dict[int, list[Any]] = defaultdict(list)
        backoff_by_nodes: dict[int, list[float]] = defaultdict(list)
        resume_futures = []
        invalid_metadata = False
        records, in_flight = self._records, self._in_flight
        state_of, leader_of = assignment.state_value, self._client.cluster.leader_for_partition
        for tp in assignment.tps:
            node_id = leader_of(tp)
            if tp in records:
                # Data not yet read: wait for the reader, but not past its backoff.
                if backoff := records[tp].calculate_backoff():
                    backoff_by_nodes[node_id].append(backoff)
            elif node_id in in_flight:
                continue
            elif node_id is None or node_id == -1:
                invalid_metadata = True
            else:
                state = state_of(tp)
                if not state.has_valid_position:
                    awaiting_reset[node_id].append(tp)
                elif state.paused:
                    resume_futures.append(state.resume_fut)
                else:
                    fetchable[node_id].append((tp, state.position))
        fetch_requests = []
        for node_id, positions in fetchable.items():
            if node_id in backoff_by_nodes or node_id in awaiting_reset:
                continue
            by_topic: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
            for tp, position in positions:
                by_topic[tp.topic].append((tp.partition, position, self._max_partition_fetch_bytes))
            request = FetchRequest(
                self._fetch_max_wait_ms,
                self._fetch_min_bytes,
                self._fetch_max_bytes,
                self._isolation_level,
                list(by_topic.items()),
            )
            fetch_requests.append((node_id, self._in_session(node_id, request)))
        backoff = (
            min(map(max, backoff_by_nodes.values())) if backoff_by_nodes else self._fetcher_timeout
        )
        return fetch_requests, awaiting_reset, backoff, invalid_metadata, resume_futures

    def _in_session(self, node_id: int, request: Any) -> SessionFetchRequest:
        return SessionFetchRequest(request, self._sessions[node_id], self._client_rack or "")


async def use_fetch_sessions(consumer: AIOKafkaConsumer) -> None:
    """Give a started consumer, before it is first read, a fetcher that uses sessions.

    aiokafka makes its fetcher in `start()`; that one is closed (anything it fetched
    was not yet read, so positions are where they were) and replaced.
    """
    inner: Any = consumer
    await inner._fetcher.close()
    inner._fetcher = SessionFetcher(
        inner._client,
        inner._subscription,
        key_deserializer=inner._key_deserializer,
        value_deserializer=inner._value_deserializer,
        fetch_min_bytes=inner._fetch_min_bytes,
        fetch_max_bytes=inner._fetch_max_bytes,
        fetch_max_wait_ms=inner._fetch_max_wait_ms,
        max_partition_fetch_bytes=inner._max_partition_fetch_bytes,
        check_crcs=inner._check_crcs,
        fetcher_timeout=inner._consumer_timeout,
        retry_backoff_ms=inner._retry_backoff_ms,
        auto_offset_reset=inner._auto_offset_reset,
        isolation_level=inner._isolation_level,
        client_rack=inner._client_rack,
    )
