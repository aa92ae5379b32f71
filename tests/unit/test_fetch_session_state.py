"""What a fetch session keeps between fetches, answer by answer (KIP-227)."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka.protocol.fetch import FetchRequest, FetchRequest_v4, FetchRequest_v11

from shared.fetch_sessions import (
    FETCH_SESSION_ID_NOT_FOUND,
    INVALID_FETCH_SESSION_EPOCH,
    LAST_EPOCH,
    FetchSession,
    SessionFetchRequest,
)


def fetch(session: FetchSession, offsets: dict[int, int]) -> SessionFetchRequest:
    base = FetchRequest(500, 1, 1000, 1, [("t", [(p, o, 100) for p, o in offsets.items()])])
    return SessionFetchRequest(base, session, rack_id="")


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
