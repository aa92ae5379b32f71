"""Which offset the worker may commit on a partition, from what its agents acknowledged.

Faust records the offsets its agents acknowledged, and the gaps between records (the
offsets no record is read at: a transaction's commit marker, an aborted record), and
commits the end of the first run of consecutive offsets. Its own merge of the two adds
each record after a gap twice (the gap it records runs up to and including that record),
and a duplicate ends a run: on a topic written by the services' transactional relays,
where each record is followed by its transaction's marker, each commit then moved on by
one record, once a second, however many the worker had counted. The worker kept up, but
its committed offsets fell ever further behind: its lag grew without end, and a worker
started again read everything since its last real commit a second time (its counters
ignore what they have counted, but the reading took minutes).
"""

from __future__ import annotations

from collections.abc import Iterable


def next_commit(
    acked: Iterable[int], gaps: Iterable[tuple[int, int]], committed: int | None
) -> tuple[int | None, list[int]]:
    """(The offset to commit, or None; the acknowledged offsets still to commit later).

    `acked`: offsets of acknowledged records; `gaps`: [begin, end) ranges of offsets no
    record was read at; `committed`: the offset last committed (the next one to read). A
    run is committed only if it starts where the last commit ended, or one offset later
    (the marker after the last committed record is in no gap: a gap is recorded only
    from the offset after the last commit).
    """
    done = set(acked)
    if not done:
        return None, []
    top = max(done)
    for begin, end in gaps:
        done.update(range(begin, min(end, top + 1)))
    ordered = sorted(done)
    if committed is not None and ordered[0] - committed > 1:
        return None, sorted(set(acked))
    last = ordered[0]
    for offset in ordered[1:]:
        if offset != last + 1:
            break
        last = offset
    return last + 1, sorted(o for o in set(acked) if o > last)
