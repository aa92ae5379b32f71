"""The producers' partitioner: the Java clients' choice for every key, remembered."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from shared.kafka import RememberingPartitioner

partition_lists = st.lists(st.integers(0, 63), min_size=1, max_size=12, unique=True).map(sorted)


@given(keys=st.lists(st.binary(max_size=64), min_size=1, max_size=40), partitions=partition_lists)
def test_every_key_goes_where_the_default_partitioner_sends_it_the_first_time_and_again(
    keys: list[bytes], partitions: list[int]
) -> None:
    remembering = RememberingPartitioner(size=8)
    default = DefaultPartitioner()
    for key in keys + keys:  # the second time from memory (or after forgetting)
        assert remembering(key, partitions, partitions) == default(key, partitions, partitions)


def test_a_remembered_key_follows_a_topic_with_more_partitions() -> None:
    remembering = RememberingPartitioner()
    default = DefaultPartitioner()
    keys = [f"education.service-{n}".encode() for n in range(200)]
    for key in keys:
        remembering(key, [0, 1, 2], [0, 1, 2])
    six = list(range(6))
    assert [remembering(k, six, six) for k in keys] == [default(k, six, six) for k in keys]


def test_it_remembers_no_more_than_its_size() -> None:
    remembering = RememberingPartitioner(size=10)
    for n in range(95):
        remembering(str(n).encode(), [0, 1], [0, 1])
    assert len(remembering._hashes) <= 10


def test_records_without_a_key_go_to_an_available_partition() -> None:
    remembering = RememberingPartitioner()
    assert {remembering(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
