"""What a fetch session keeps between fetches, answer by answer (KIP-227)."""

from __future__ import annotations

import random
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.subscription_state import Assignment
from aiokafka.protocol.fetch import FetchRequest, FetchRequest_v4, FetchRequest_v11

from shared.fetch_sessions import (
    FETCH_SESSION_ID_NOT_FOUND,
    INVALID_FETCH_SESSION_EPOCH,
    LAST_EPOCH,
    MIN_WATCHED,
    QUIET_AFTER_S,
    FetchSession,
    SessionFetcher,
    SessionFetchRequest,
    Watch,
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


def fetcher_on(
    leaders: dict[int, int], *, quiet_after_s: float = QUIET_AFTER_S, min_watched: int = MIN_WATCHED
) -> SessionFetcher:
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
        _fetching={},
        _heard={},
        _quiet_after_s=quiet_after_s,
        _min_watched=min_watched,
    )
    fetcher._sessions = defaultdict(FetchSession)
    fetcher._watch_sessions = defaultdict(FetchSession)
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


# Quiet partitions watched apart from the busy ones.

LONG_AGO = float("-inf")


def assigned(partitions: int) -> Assignment:
    assignment = Assignment([TopicPartition("t", p) for p in range(partitions)])
    for p in range(partitions):
        assignment.state_value(TopicPartition("t", p)).reset_to(100 + p)
    return assignment


def requests(actions: Any) -> dict[Any, set[int]]:
    """Each request of a plan, by its key (a broker's id, or its `Watch`): the partitions."""
    return {key: {p for _, p in request.wanted} for key, request in actions[0]}


async def test_quiet_partitions_are_watched_in_a_session_of_their_own_and_busy_ones_fetched() -> (
    None
):
    fetcher = fetcher_on({p: 1 for p in range(20)}, quiet_after_s=60)
    assignment = assigned(20)
    # Newly assigned partitions count as heard from: one fetch holds them all.
    assert requests(fetcher._get_actions_per_node(assignment)) == {1: set(range(20))}

    fetcher._in_flight.clear()
    for p in range(4, 20):
        fetcher._heard[TopicPartition("t", p)] = LONG_AGO
    actions = fetcher._get_actions_per_node(assignment)
    assert requests(actions) == {1: {0, 1, 2, 3}, Watch(1): set(range(4, 20))}
    (_, busy), (_, watch) = actions[0]
    assert busy.session is fetcher._sessions[1]
    assert watch.session is fetcher._watch_sessions[1]
    assert watch.session is not busy.session


async def test_fewer_quiet_partitions_than_worth_a_watch_stay_in_the_busy_fetch() -> None:
    fetcher = fetcher_on({p: 1 for p in range(20)}, quiet_after_s=60, min_watched=16)
    assignment = assigned(20)
    fetcher._get_actions_per_node(assignment)
    fetcher._in_flight.clear()
    for p in range(5, 20):  # fifteen
        fetcher._heard[TopicPartition("t", p)] = LONG_AGO
    assert requests(fetcher._get_actions_per_node(assignment)) == {1: set(range(20))}


async def test_a_partition_gone_quiet_stays_in_the_busy_fetch_until_a_watch_holds_it() -> None:
    fetcher = fetcher_on({p: 1 for p in range(20)}, quiet_after_s=60, min_watched=4)
    assignment = assigned(20)
    fetcher._get_actions_per_node(assignment)
    fetcher._in_flight.clear()
    for p in range(10, 20):
        fetcher._heard[TopicPartition("t", p)] = LONG_AGO
    first = requests(fetcher._get_actions_per_node(assignment))
    assert first == {1: set(range(10)), Watch(1): set(range(10, 20))}
    fetcher._in_flight.update(first)

    # Partition 3 goes quiet while both are out; the busy fetch comes back first.
    fetcher._heard[TopicPartition("t", 3)] = LONG_AGO
    fetcher._in_flight.discard(1)
    assert requests(fetcher._get_actions_per_node(assignment)) == {1: set(range(10))}
    fetcher._in_flight.add(1)

    # Then the watch: the next one takes partition 3, and the busy fetch after it lets go.
    fetcher._in_flight.discard(Watch(1))
    assert requests(fetcher._get_actions_per_node(assignment)) == {Watch(1): {3, *range(10, 20)}}
    fetcher._in_flight.add(Watch(1))
    fetcher._in_flight.discard(1)
    assert requests(fetcher._get_actions_per_node(assignment)) == {1: set(range(10)) - {3}}


@pytest.mark.parametrize("min_watched", [8, 15])  # 15: about half the time, no watch
async def test_every_partition_is_always_in_a_fetch_out_whatever_order_answers_come_in(
    min_watched: int,
) -> None:
    rng = random.Random(20261201)
    leaders = {p: 1 + p % 2 for p in range(60)}
    fetcher = fetcher_on(leaders, quiet_after_s=60, min_watched=min_watched)
    assignment = assigned(60)
    out: dict[Any, set[int]] = {}

    def send() -> None:
        sent = requests(fetcher._get_actions_per_node(assignment))
        assert not sent.keys() & out.keys(), "a second request to a broker with one out"
        out.update(sent)
        fetcher._in_flight.update(sent)

    send()
    for _ in range(2000):
        # An answer comes back; meanwhile some partitions were heard from, some went quiet.
        key = rng.choice(sorted(out, key=str))
        del out[key]
        fetcher._in_flight.discard(key)
        for p in rng.sample(range(60), rng.randint(0, 6)):
            if rng.random() < 0.5:
                fetcher._heard_from([("t", p)])
            else:
                fetcher._heard[TopicPartition("t", p)] = LONG_AGO
        send()
        for node in (1, 2):
            theirs = {p for p, n in leaders.items() if n == node}
            held = out.get(node, set()) | out.get(Watch(node), set())
            assert theirs <= held, f"broker {node} has {sorted(theirs - held)} in no fetch"

    # Once partitions stop changing, two rounds of answers split each broker's partitions
    # exactly: the quiet ones in its watch, the others in its busy fetch.
    for _ in range(2):
        for key in sorted(out, key=str):
            del out[key]
            fetcher._in_flight.discard(key)
            send()
    for node in (1, 2):
        theirs = {p for p, n in leaders.items() if n == node}
        quiet = {p for p in theirs if fetcher._heard[TopicPartition("t", p)] == LONG_AGO}
        if len(quiet) >= min_watched:
            assert (out[node], out[Watch(node)]) == (theirs - quiet, quiet)
        else:
            assert (out[node], Watch(node) in out) == (theirs, False)
