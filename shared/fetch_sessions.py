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

A session spares the wire, not the broker: on every fetch the broker authorises each
topic the session holds and reads each of its partitions, so a consumer of every
agency's channels still cost it work for every agency in the register, a fetch at a
time, dozens of times a second under load. So partitions that have been quiet for a
while (`QUIET_AFTER_S`) leave the busy session for a second one, the watch, on a
connection of its own: a long poll the broker answers as soon as any of them gets a
record, and otherwise once per `fetch_max_wait_ms`. The busy session then costs what
the busy partitions cost. A quiet partition leaves it only once a watch in flight
holds it, and a watch also takes whatever the busy fetch in flight lacks, so every
partition is always in a fetch the broker is holding.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition
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

#: A partition without records for this long is watched rather than fetched.
QUIET_AFTER_S = 5.0
#: Fewer quiet partitions than this on a broker are not worth a second session.
MIN_WATCHED = 16
#: The connection group of watches (aiokafka's own are 0, the default, and 1, the
#: coordinator's): a broker answers one request per connection at a time, so a long
#: poll on the fetches' own connection would hold the busy fetches back.
WATCH_CONNECTION = 2

Partition = tuple[str, int]


class Watch(NamedTuple):
    """The key of a broker's watch among the fetcher's requests in flight (its busy
    fetch's key is the broker's id)."""

    node_id: int


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
    """A fetch of the partitions `wanted` (partition: offset) within a session: on the wire,
    only the difference from what the session holds.

    aiokafka reads an answer by the request's `topics`, building a map of every partition
    in it. Once answered (`answered`), `topics` holds only the partitions in the answer,
    so reading it costs what the answer holds, not what the session holds."""

    def __init__(
        self,
        wanted: dict[Partition, int],
        session: FetchSession,
        *,
        max_wait_ms: int,
        min_bytes: int,
        max_bytes: int,
        isolation_level: int,
        partition_bytes: int,
        rack_id: str = "",
    ) -> None:
        super().__init__(max_wait_ms, min_bytes, max_bytes, isolation_level, [], rack_id=rack_id)
        self.session = session
        self.wanted = wanted
        self._partition_bytes = partition_bytes
        self.epoch = 0
        #: Once answered, the partitions the answer brought records for.
        self.with_records: list[Partition] = []

    @classmethod
    def of(cls, base: FetchRequest, session: FetchSession, rack_id: str) -> SessionFetchRequest:
        """aiokafka's own fetch `base`, made a session's."""
        wanted = {
            (topic, partition): offset
            for topic, partitions in base.topics
            for partition, offset, _ in partitions
        }
        partition_bytes = next(
            (limit for _, partitions in base.topics for _, _, limit in partitions), 0
        )
        return cls(
            wanted,
            session,
            max_wait_ms=base._max_wait_ms,
            min_bytes=base._min_bytes,
            max_bytes=base._max_bytes,
            isolation_level=base._isolation_level,
            partition_bytes=partition_bytes,
            rack_id=rack_id,
        )

    def _by_topic(self, offsets: Iterable[tuple[Partition, int]]) -> list[tuple[str, Any]]:
        by_topic: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for (topic, partition), offset in offsets:
            by_topic[topic].append((partition, offset, self._partition_bytes))
        return list(by_topic.items())

    def build(self, request_struct_class: Any) -> Any:
        if request_struct_class.API_VERSION < SESSION_VERSION:
            self._topics = self._by_topic(self.wanted.items())
            return super().build(request_struct_class)
        session = self.session
        self.epoch = session.epoch
        if session.epoch == 0:
            changed, forgotten = self._by_topic(self.wanted.items()), []
        else:
            held = session.held
            changed = self._by_topic(
                (partition, offset)
                for partition, offset in self.wanted.items()
                if held.get(partition) != offset
            )
            gone: dict[str, list[int]] = defaultdict(list)
            for topic, partition in held.keys() - self.wanted.keys():
                gone[topic].append(partition)
            forgotten = list(gone.items())
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

    def answered(self, response: Any) -> None:
        """Let `topics` name what `response` holds, at the offsets this fetch asked for."""
        wanted, limit = self.wanted, self._partition_bytes
        self._topics = [
            (topic, [(p[0], wanted[(topic, p[0])], limit) for p in partitions])
            for topic, partitions in response.topics
        ]
        # The record set comes last in each partition's answer, from every version on.
        self.with_records = [
            (topic, p[0]) for topic, partitions in response.topics for p in partitions if p[-1]
        ]


class _SessionClient:
    """The consumer's client, as its fetcher sees it: a fetch's answer settles its session,
    and a fetch that fails or is cancelled (so that what the broker saw is unknown) ends
    it."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def send(self, node_id: int | Watch, request: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(node_id, Watch):
            node_id, kwargs["group"] = node_id.node_id, WATCH_CONNECTION
        if not isinstance(request, SessionFetchRequest):
            return await self._client.send(node_id, request, *args, **kwargs)
        try:
            response = await self._client.send(node_id, request, *args, **kwargs)
        except BaseException:
            request.session.restart()
            raise
        request.session.settle(request, response)
        request.answered(response)
        return response


class SessionFetcher(Fetcher):  # type: ignore[misc]  # untyped in aiokafka
    """aiokafka's fetcher, fetching within one session per broker, and watching a broker's
    quiet partitions within a second one."""

    def __init__(
        self,
        client: Any,
        *args: Any,
        quiet_after_s: float = QUIET_AFTER_S,
        min_watched: int = MIN_WATCHED,
        **kwargs: Any,
    ) -> None:
        self._sessions: dict[int, FetchSession] = defaultdict(FetchSession)
        self._watch_sessions: dict[int, FetchSession] = defaultdict(FetchSession)
        # What each broker's busy fetch asks for; current while it is in flight.
        self._fetching: dict[int, dict[Partition, int]] = {}
        self._quiet_after_s = quiet_after_s
        self._min_watched = min_watched
        # When each assigned partition last brought records (or was assigned); by broker,
        # those heard from within `quiet_after_s`, and the quiet ones no watch holds.
        # A step looks at these alone while a watch is out, not at every partition.
        self._heard: dict[Any, float] = {}
        self._busy: dict[int, set[Any]] = {}
        self._handoff: dict[int, set[Any]] = {}
        self._state_of: dict[Any, Any] = {}
        # Each assigned partition's state, by its leader, for one assignment and one
        # version of the cluster's metadata (aiokafka replaces its partition map whole
        # on each update); partitions without a leader are not in it.
        self._planned_for: tuple[Any, Any] | None = None
        self._by_leader: dict[int, list[tuple[Any, Any]]] = {}
        self._leader_of: dict[Any, int] = {}
        self._leaderless = False
        super().__init__(_SessionClient(client), *args, **kwargs)

    def _plan(self, assignment: Any) -> None:
        cluster = self._client.cluster
        if self._planned_for is not None and (
            self._planned_for[0] is assignment and self._planned_for[1] is cluster._partitions
        ):
            return
        by_leader: dict[int, list[tuple[Any, Any]]] = defaultdict(list)
        leader_of: dict[Any, int] = {}
        leaderless = False
        now, heard = time.monotonic(), self._heard
        for tp in assignment.tps:
            node_id = cluster.leader_for_partition(tp)
            if node_id is None or node_id == -1:
                leaderless = True
                continue
            by_leader[node_id].append((tp, assignment.state_value(tp)))
            leader_of[tp] = node_id
        self._heard = heard = {tp: heard.get(tp, now) for tp in assignment.tps}
        quiet_since = now - self._quiet_after_s
        self._busy, self._handoff = {}, {}
        for node_id, partitions in by_leader.items():
            self._busy[node_id] = {tp for tp, _ in partitions if heard[tp] >= quiet_since}
            self._handoff[node_id] = {tp for tp, _ in partitions if heard[tp] < quiet_since}
        self._state_of = {
            tp: state for partitions in by_leader.values() for tp, state in partitions
        }
        self._planned_for = (assignment, cluster._partitions)
        self._by_leader, self._leader_of, self._leaderless = dict(by_leader), leader_of, leaderless

    def _get_actions_per_node(self, assignment: Any) -> Any:
        """What to fetch from each broker, what to reset, how long to wait.

        aiokafka's own, when no rack is set (so every partition is read from its leader),
        without its per-partition lookups: it runs over every assigned partition each time
        the fetcher wakes, twice a fetch, and with a register's channels that loop was a
        sixth of the exchange's CPU. Here each partition's leader and state are looked up
        once per assignment and metadata version, and the fetch carries a map of offsets
        its session compares at once. Beside each broker's busy fetch goes its watch of
        the quiet partitions (the module's docstring says why)."""
        if self._client_rack:
            theirs, *rest = super()._get_actions_per_node(assignment)
            return (
                [
                    (n, SessionFetchRequest.of(r, self._sessions[n], self._client_rack))
                    for n, r in theirs
                ],
                *rest,
            )
        self._plan(assignment)
        awaiting_reset: dict[int, list[Any]] = defaultdict(list)
        backoff_by_nodes: dict[int, list[float]] = defaultdict(list)
        resume_futures = []
        records, in_flight, heard = self._records, self._in_flight, self._heard
        quiet_since = time.monotonic() - self._quiet_after_s
        for tp, fetched in records.items():
            # Data not yet read: wait for the reader, but not past its backoff.
            node_id = self._leader_of.get(tp)
            if node_id is not None and (backoff := fetched.calculate_backoff()):
                backoff_by_nodes[node_id].append(backoff)
        fetch_requests: list[tuple[int | Watch, SessionFetchRequest]] = []
        for node_id, partitions in self._by_leader.items():
            fetching, watch = node_id in in_flight, Watch(node_id)
            watching = watch in in_flight
            if fetching and (watching or node_id not in self._fetching):
                continue  # both out, or a reset (which waits for nothing else, as in aiokafka)
            busy = self._busy[node_id]
            for tp in [tp for tp in busy if heard[tp] < quiet_since]:
                busy.discard(tp)
                self._handoff[node_id].add(tp)
            watch_quiet = len(partitions) - len(busy) >= self._min_watched
            if watching and watch_quiet:
                # The busy ones, and the quiet ones the watch out does not hold.
                state_of = self._state_of
                looked_at = [(tp, state_of[tp]) for tp in (*busy, *self._handoff[node_id])]
            else:
                # Every partition: a watch may go out (and none is watched until it
                # does), or the one out is winding down and the busy fetch takes all.
                looked_at = partitions
                if not watching:
                    self._handoff[node_id] = {tp for tp, _ in partitions if tp not in busy}
            handoff = self._handoff[node_id]
            fetchable: dict[Partition, int] = {}
            for tp, state in looked_at:
                if tp in records:
                    continue
                if not state.has_valid_position:
                    # Resets, like aiokafka's, go out when no fetch is (their task
                    # takes the broker's key among those in flight).
                    if not fetching:
                        awaiting_reset[node_id].append(tp)
                elif state.paused:
                    if not fetching:
                        resume_futures.append(state.resume_fut)
                else:
                    fetchable[tp] = state.position
            if node_id in awaiting_reset:
                self._fetching.pop(node_id, None)  # the reset takes the broker's key
                continue
            if not fetchable or node_id in backoff_by_nodes:
                continue
            if not fetching:
                # With a watch going out now, the quiet ones are its.
                sending_watch = not watching and watch_quiet
                wanted = (
                    {tp: offset for tp, offset in fetchable.items() if tp in busy}
                    if sending_watch
                    else fetchable
                )
                if wanted:
                    fetch_requests.append((node_id, self._request(wanted, self._sessions[node_id])))
                    self._fetching[node_id] = wanted
                    fetching = True
            if not watching:
                # The quiet ones, and whatever the busy fetch in flight lacks (a partition
                # that was watched when it was sent, or has been resumed since).
                held = self._fetching[node_id] if fetching else {}
                wanted = {
                    tp: offset
                    for tp, offset in fetchable.items()
                    if (watch_quiet and tp in handoff) or tp not in held
                }
                if wanted:
                    session = self._watch_sessions[node_id]
                    fetch_requests.append((watch, self._request(wanted, session)))
                    handoff.difference_update(wanted)
        backoff = (
            min(map(max, backoff_by_nodes.values())) if backoff_by_nodes else self._fetcher_timeout
        )
        return fetch_requests, awaiting_reset, backoff, self._leaderless, resume_futures

    def _request(self, wanted: dict[Partition, int], session: FetchSession) -> SessionFetchRequest:
        return SessionFetchRequest(
            wanted,
            session,
            max_wait_ms=self._fetch_max_wait_ms,
            min_bytes=self._fetch_min_bytes,
            max_bytes=self._fetch_max_bytes,
            isolation_level=self._isolation_level,
            partition_bytes=self._max_partition_fetch_bytes,
        )

    async def _proc_fetch_request(self, assignment: Any, node_id: Any, request: Any) -> Any:
        got = await super()._proc_fetch_request(assignment, node_id, request)
        if isinstance(request, SessionFetchRequest) and request.with_records:
            self._heard_from(request.with_records)
        return got

    def _heard_from(self, partitions: Iterable[Partition]) -> None:
        """`partitions` brought records: busy again."""
        now, heard = time.monotonic(), self._heard
        for topic, partition in partitions:
            tp = TopicPartition(topic, partition)
            node_id = self._leader_of.get(tp)
            if tp in heard and node_id is not None:
                heard[tp] = now
                self._busy[node_id].add(tp)
                self._handoff[node_id].discard(tp)


async def use_fetch_sessions(
    consumer: AIOKafkaConsumer,
    *,
    quiet_after_s: float = QUIET_AFTER_S,
    min_watched: int = MIN_WATCHED,
) -> None:
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
        quiet_after_s=quiet_after_s,
        min_watched=min_watched,
    )
