"""What a fetch session keeps between fetches, answer by answer (KIP-227)."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.subscription_state import Assignment
from aiokafka.protocol.fetch import FetchRequest, FetchRequest_v4, FetchRequest_v11

from shared.fetch_sessions import (
    FETCH_SESSION_ID_NOT_FOUND,
    INVALID_FETCH_SESSION_EPOCH,
    LAST_EPOCH,
    FetchSession,
    SessionFetcher,
    SessionFetchRequest,
)


def fetch(session: FetchSession, offsets: dict[int, int]) -> SessionFetchRequest:
    base = FetchRequest(500, 1, 1000, 1, [("t", [(p, o, 100) for p, o in offsets.items()])])
    return SessionFetchRequest.of(base, session, rack_id="")


def answer(error_code: int = 0, session_id: int = 0, version: int = 11) -> SimpleNamespace:
    return SimpleNamespace(API_VERSION=version, error_code=error_code, session_id=session_id)


def on_the_wire(request: SessionFetchRequest) -> tuple[int, int, list[int], list[int]]:
    struct = request.build(FetchRequest_v11)
    named = [p[0] for _, partitions in struct.topics for p in partitions]
    forgotten = [p for _, partitions in struct.forgotten_topics_data for p in partitions]
    return struct.session_id, struct.session_epoch, sorted(named), sorted(forgotten)


def test_the_first_fetch_is_full_and_opens_a_session_then_only_changes_are_named() -> None:
    session = FetchSession()
    first = fetch(session, {0: 5, 1: 7, 2: 9})
    assert on_the_wire(first) == (0, 0, [0, 1, 2], [])
    session.settle(first, answer(session_id=42))

    # Partition 0 moved on, 2 has records still unread (left out), 1 is as it was.
    second = fetch(session, {0: 6, 1: 7})
    assert on_the_wire(second) == (42, 1, [0], [2])
    session.settle(second, answer(session_id=42))
    assert (session.epoch, session.held) == (2, {("t", 0): 6, ("t", 1): 7})


def test_a_session_the_broker_lost_or_an_epoch_it_refused_starts_again_with_a_full_fetch() -> None:
    for refusal in (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH):
        session = FetchSession()
        first = fetch(session, {0: 5})
        on_the_wire(first)
        session.settle(first, answer(session_id=42))
        second = fetch(session, {0: 5})
        on_the_wire(second)
        session.settle(second, answer(error_code=refusal))
        assert on_the_wire(fetch(session, {0: 5, 1: 1})) == (0, 0, [0, 1], [])


def test_a_failed_fetch_closes_the_session_by_its_id_with_a_full_fetch() -> None:
    session = FetchSession()
    first = fetch(session, {0: 5})
    on_the_wire(first)
    session.settle(first, answer(session_id=42))
    session.restart()  # what the client does when a fetch fails or is cancelled
    assert on_the_wire(fetch(session, {0: 5})) == (42, 0, [0], [])


def test_a_broker_that_keeps_no_session_gets_full_fetches() -> None:
    session = FetchSession()
    for _ in range(3):
        request = fetch(session, {0: 5, 1: 6})
        assert on_the_wire(request) == (0, 0, [0, 1], [])
        session.settle(request, answer(session_id=0))


def test_the_epoch_wraps_to_one_not_to_zero() -> None:
    session = FetchSession()
    session.id, session.epoch = 42, LAST_EPOCH
    request = fetch(session, {0: 5})
    on_the_wire(request)
    session.settle(request, answer(session_id=42))
    assert session.epoch == 1


def test_a_broker_without_sessions_gets_aiokafkas_own_fetch() -> None:
    session = FetchSession()
    request = fetch(session, {0: 5})
    struct = request.build(FetchRequest_v4)
    assert [p[0] for _, partitions in struct.topics for p in partitions] == [0]
    session.settle(request, answer(version=4))
    assert (session.id, session.epoch) == (0, 0)


def test_an_answered_fetch_names_only_the_partitions_its_answer_holds() -> None:
    session = FetchSession()
    request = fetch(session, {p: 10 + p for p in range(50)})
    on_the_wire(request)
    request.answered(SimpleNamespace(topics=[("t", [(3, 0, 99), (41, 0, 99)])]))
    # What aiokafka reads the answer by: those two, at the offsets this fetch asked for.
    assert request.topics == [("t", [(3, 13, 100), (41, 51, 100)])]


# The fetcher's plan, against aiokafka's own, on aiokafka's assignment and metadata.


def fetcher_on(leaders: dict[int, int]) -> SessionFetcher:
    """A fetcher of topic "t", not started, whose partition p is led by node leaders[p]."""
    fetcher: Any = object.__new__(SessionFetcher)
    cluster = ClusterMetadata()
    cluster._partitions = {"t": {p: SimpleNamespace(leader=n) for p, n in leaders.items()}}
    fetcher.__dict__.update(
        _client=SimpleNamespace(cluster=cluster),
        _client_rack=None,
        _preferred_read_replica={},
        _records={},
        _in_flight=set(),
        _sessions={},
        _planned_for=None,
        _fetch_max_wait_ms=500,
        _fetch_min_bytes=1,
        _fetch_max_bytes=1000,
        _isolation_level=1,
        _max_partition_fetch_bytes=100,
        _fetcher_timeout=0.2,
    )
    fetcher._sessions = defaultdict(FetchSession)
    assert isinstance(fetcher, SessionFetcher)
    return fetcher


def plan(actions: Any) -> tuple[dict[int, set[tuple[int, int]]], dict[int, set[int]], int, bool]:
    """A plan as comparable sets: node -> (partition, offset) fetched, node -> partitions
    to reset, how many paused partitions are waited on, whether metadata is wanted."""
    fetch_requests, awaiting_reset, _, invalid_metadata, resume_futures = actions
    fetched = {
        node: {(p[0], p[1]) for _, partitions in request.topics for p in partitions}
        if not isinstance(request, SessionFetchRequest)
        else {(partition, offset) for (_, partition), offset in request.wanted.items()}
        for node, request in fetch_requests
    }
    resets = {node: {tp.partition for tp in tps} for node, tps in awaiting_reset.items()}
    return fetched, resets, len(resume_futures), invalid_metadata


async def test_the_fetch_plan_is_aiokafkas_own_in_every_partition_state() -> None:
    leaders = {p: 1 + p % 3 for p in range(12)}  # nodes 1, 2, 3
    leaders[11] = -1  # no leader: metadata is wanted
    fetcher = fetcher_on(leaders)
    assignment = Assignment([TopicPartition("t", p) for p in range(12)])
    state = assignment.state_value
    for p in range(11):
        if p != 4:  # partition 4 (node 2) still looks for its position
            state(TopicPartition("t", p)).reset_to(100 + p)
    state(TopicPartition("t", 7)).pause()  # node 2
    fetcher._records[TopicPartition("t", 3)] = SimpleNamespace(calculate_backoff=lambda: 0.05)
    fetcher._in_flight.add(3)  # node 3: a fetch already out

    ours = plan(fetcher._get_actions_per_node(assignment))
    theirs = plan(Fetcher._get_actions_per_node(fetcher, assignment))
    assert ours == theirs
    # Node 1 waits for its unread records, node 2 for its reset, node 3 for its fetch.
    assert ours == ({}, {2: {4}}, 1, True)

    # Records read, the reset done, the fetch back, the pause lifted: every partition
    # with a leader is fetched from its own.
    del fetcher._records[TopicPartition("t", 3)]
    fetcher._in_flight.clear()
    state(TopicPartition("t", 4)).reset_to(104)
    state(TopicPartition("t", 7)).resume()
    ours = plan(fetcher._get_actions_per_node(assignment))
    assert ours == plan(Fetcher._get_actions_per_node(fetcher, assignment))
    assert ours[0] == {n: {(p, 100 + p) for p in range(11) if leaders[p] == n} for n in (1, 2, 3)}


async def test_the_fetch_plan_follows_new_metadata_and_a_new_assignment() -> None:
    fetcher = fetcher_on({0: 1, 1: 1})
    assignment = Assignment([TopicPartition("t", 0), TopicPartition("t", 1)])
    for p in (0, 1):
        assignment.state_value(TopicPartition("t", p)).reset_to(5)
    assert plan(fetcher._get_actions_per_node(assignment))[0] == {1: {(0, 5), (1, 5)}}

    # Partition 1's leadership moves: aiokafka replaces its partition map.
    fetcher._client.cluster._partitions = {
        "t": {0: SimpleNamespace(leader=1), 1: SimpleNamespace(leader=2)}
    }
    assert plan(fetcher._get_actions_per_node(assignment))[0] == {1: {(0, 5)}, 2: {(1, 5)}}

    # A rebalance gives partition 0 alone.
    narrower = Assignment([TopicPartition("t", 0)])
    narrower.state_value(TopicPartition("t", 0)).reset_to(9)
    assert plan(fetcher._get_actions_per_node(narrower))[0] == {1: {(0, 9)}}
