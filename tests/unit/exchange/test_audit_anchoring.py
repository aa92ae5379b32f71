"""Anchoring the audit chain: the exchange's signed checkpoints, and a chain held to them.

Whoever can write the database can rewrite a record and redo every later hash, or cut
the tail and move the head back: the chain alone then holds. Held to the checkpoints the
exchange signed before, it names the first record that changed or is missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry import context as otel_context

from services.exchange.domain.audit import (
    GENESIS_HASH,
    Anchors,
    CheckpointMark,
    CheckpointPolicy,
    chain_hash,
    checkpoints,
    first_break,
    trusted,
)
from services.exchange.domain.transaction import ExchangeSigner
from services.exchange.use_cases.audit import sign_checkpoints
from shared.acl import allowed, declared_bindings
from shared.envelope import Envelope
from shared.events.exchange import AuditCheckpointed
from shared.principals import Principal
from shared.signing import generate_key, public_jwk
from shared.topics import SPECS, Topic

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = generate_key()
KID = "exchange-20260301-test"
KEYS = {KID: public_jwk(KEY) | {"kid": KID}}
EVERY_FOUR = CheckpointPolicy(every_seconds=5, every_records=4)


def record(seq: int, previous: str, purpose: str = "benefit-eligibility") -> dict[str, Any]:
    fields: dict[str, Any] = {
        "seq": seq,
        "recorded_at": NOW + timedelta(seconds=seq),
        "transaction_id": uuid.UUID(int=seq),
        "kind": "request",
        "outcome": "forwarded",
        "consumer": "social-security",
        "provider": "civil-registration",
        "data_service": "civil-registration.vital-status",
        "purpose": purpose,
        "legal_basis": None,
        "citizen": "ab" * 32,
        "reason": None,
        "content_digest": "0" * 64,
        "signature": "x",
        "previous_hash": previous,
    }
    fields["hash"] = chain_hash(previous, fields)
    return fields


def chain(
    count: int, start: Sequence[dict[str, Any]] = (), purpose: str = "benefit-eligibility"
) -> list[dict[str, Any]]:
    """`count` records chained after `start` (which is kept)."""
    records = list(start)
    for _ in range(count):
        previous = records[-1]["hash"] if records else GENESIS_HASH
        records.append(record(len(records) + 1, previous, purpose))
    return records


def rehashed_from(records: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    """Every record from `index` on re-hashed, as whoever rewrote one would."""
    redone = records[:index]
    for original in records[index:]:
        fields = dict(original)
        fields["previous_hash"] = redone[-1]["hash"] if redone else GENESIS_HASH
        fields["hash"] = chain_hash(fields["previous_hash"], fields)
        redone.append(fields)
    return redone


def signed_over(records: Sequence[dict[str, Any]], first_seq: int = 1) -> list[AuditCheckpointed]:
    hashes = [(r["seq"], r["hash"]) for r in records if r["seq"] >= first_seq]
    return checkpoints(hashes, first_seq, EVERY_FOUR, NOW, KEY, KID)


def anchors_of(records: Sequence[dict[str, Any]]) -> Anchors:
    return Anchors.of(trusted(signed_over(records), KEYS).checkpoints)


def test_a_checkpoint_is_due_after_enough_records_or_enough_time_with_one_waiting() -> None:
    last = CheckpointMark(seq=10, signed_at=NOW)
    assert not EVERY_FOUR.due(last, 13, NOW + timedelta(seconds=1))
    assert EVERY_FOUR.due(last, 14, NOW + timedelta(seconds=1))
    assert EVERY_FOUR.due(last, 11, NOW + timedelta(seconds=5))
    assert not EVERY_FOUR.due(last, 10, NOW + timedelta(hours=1))


def test_a_backlog_is_signed_as_checkpoints_of_at_most_the_policys_records() -> None:
    records = chain(10)
    signed = signed_over(records)
    assert [(c.first_seq, c.seq) for c in signed] == [(1, 4), (5, 8), (9, 10)]
    assert signed[1].hash == records[7]["hash"]
    assert signed[1].record_hashes == [r["hash"][:16] for r in records[4:8]]
    assert trusted(signed, KEYS).checkpoints == signed


def test_a_checkpoint_not_signed_by_the_exchanges_keys_is_left_out_with_why() -> None:
    genuine = signed_over(chain(4))[0]
    forged = genuine.model_copy(
        update={"hash": "f" * 64, "record_hashes": ["0" * 16] * 3 + ["f" * 16]}
    )
    stranger = checkpoints([(4, "e" * 64)], 4, EVERY_FOUR, NOW, generate_key(), "someone-else")[0]
    believed = trusted([genuine, forged, stranger], KEYS)
    assert believed.checkpoints == [genuine]
    assert "does not verify" in believed.left_out[0]
    assert "someone-else" in believed.left_out[1]


def test_a_checkpoint_must_list_each_record_it_covers() -> None:
    with pytest.raises(ValueError, match="each record"):
        AuditCheckpointed(
            chain=0,
            first_seq=1,
            seq=3,
            hash="a" * 64,
            record_hashes=["a" * 16],
            signed_at=NOW,
            signature="x",
        )


def test_an_untouched_chain_holds_against_its_checkpoints_and_records_past_them_wait() -> None:
    records = chain(10)
    anchors = anchors_of(records[:8])
    assert first_break(records, 10, records[-1]["hash"], anchors) is None
    assert anchors.last is not None
    assert anchors.last.seq == 8


def test_a_record_rewritten_with_every_later_hash_redone_is_named() -> None:
    records = chain(8)
    anchors = anchors_of(records)
    records[2]["purpose"] = "curiosity"
    rewritten = rehashed_from(records, 2)
    # The chain alone cannot tell.
    assert first_break(rewritten, 8, rewritten[-1]["hash"]) is None
    broken = first_break(rewritten, 8, rewritten[-1]["hash"], anchors)
    assert broken is not None
    assert broken.seq == 3
    assert "signed" in broken.reason


def test_a_tail_cut_with_its_head_moved_back_is_named_at_the_first_missing_record() -> None:
    records = chain(8)
    anchors = anchors_of(records)
    kept = records[:5]
    assert first_break(kept, 5, kept[-1]["hash"]) is None
    broken = first_break(kept, 5, kept[-1]["hash"], anchors)
    assert broken is not None
    assert broken.seq == 6
    assert "missing" in broken.reason


def test_a_head_moved_back_and_a_new_history_written_over_it_is_named() -> None:
    records = chain(8)
    anchors = Anchors.of(signed_over(records))
    forked = chain(3, records[:5], purpose="curiosity")
    # The exchange goes on and signs the new history too: both stand on the topic.
    both = Anchors.of([*signed_over(records), *signed_over(forked, first_seq=6)])
    for held_to in (anchors, both):
        broken = first_break(forked, 8, forked[-1]["hash"], held_to)
        assert broken is not None
        assert broken.seq == 6


def test_a_restored_chain_is_held_to_its_checkpoints_up_to_its_head_and_counts_the_rest_lost() -> (
    None
):
    records = chain(10)
    anchors = anchors_of(records)  # checkpoints through 4, 8 and 10
    restored = records[:6]  # the backup's: the head at 6, mid-checkpoint
    held, lost = anchors.through(6)
    assert lost == 4
    assert first_break(restored, 6, restored[-1]["hash"], held) is None
    assert held.last is not None
    assert held.last.seq == 4  # the last checkpoint wholly within the head
    # What it still vouches for must hold: a record rewritten before the head is named.
    rewritten = rehashed_from([*records[:2], record(3, records[1]["hash"], "curiosity")], 2)
    rewritten = chain(3, rewritten)
    broken = first_break(rewritten, 6, rewritten[-1]["hash"], held)
    assert broken is not None
    assert broken.seq == 3


def test_what_the_chain_alone_caught_it_still_catches_when_anchored() -> None:
    records = chain(8)
    anchors = anchors_of(records)
    records[3]["purpose"] = "curiosity"
    broken = first_break(records, 8, records[-1]["hash"], anchors)
    assert broken is not None
    assert (broken.seq, broken.reason) == (4, "its content does not match its hash")


class CheckpointingWork:
    """A fake unit of work: chains of records (`counts[chain]` each), and what the use
    case writes."""

    def __init__(self, counts: Sequence[int], last: Sequence[CheckpointMark]) -> None:
        self.records = [
            chain(count, purpose=f"benefit-{index}") for index, count in enumerate(counts)
        ]
        self.marks = list(last)
        self.held: set[int] = set()  # chains another process is signing
        self.published: list[Envelope[Any]] = []

    async def signer(self) -> ExchangeSigner:
        return ExchangeSigner(KID, KEY)

    async def audit_chains(self) -> list[int]:
        return list(range(len(self.records)))

    async def last_checkpoint(self, chain: int) -> CheckpointMark | None:
        return None if chain in self.held else self.marks[chain]

    async def audit_head_seq(self, chain: int) -> int:
        return len(self.records[chain])

    async def audit_hashes(self, chain: int, after: int, through: int) -> list[tuple[int, str]]:
        return [(r["seq"], r["hash"]) for r in self.records[chain] if after < r["seq"] <= through]

    async def save_checkpoint_mark(self, chain: int, mark: CheckpointMark) -> None:
        self.marks[chain] = mark

    async def publish(
        self,
        envelopes: Sequence[Envelope[Any]],
        parents: Sequence[otel_context.Context | None] | None = None,
    ) -> None:
        self.published.extend(envelopes)


async def test_the_exchange_publishes_due_checkpoints_and_remembers_how_far_they_reach() -> None:
    work = CheckpointingWork([6], [CheckpointMark(2, NOW)])
    signed = await sign_checkpoints(work, EVERY_FOUR, now=NOW + timedelta(seconds=1))
    assert [(c.chain, c.first_seq, c.seq) for c in signed] == [(0, 3, 6)]
    [envelope] = work.published
    assert envelope.payload == signed[0]
    assert envelope.subject == f"6:{work.records[0][5]['hash']}"
    assert envelope.destination == Topic.EXCHANGE_AUDIT_CHECKPOINTS
    assert work.marks == [CheckpointMark(6, NOW + timedelta(seconds=1))]
    assert await sign_checkpoints(work, EVERY_FOUR, now=NOW + timedelta(hours=1)) == []
    assert len(work.published) == 1


async def test_each_chain_is_checkpointed_on_its_own_and_one_held_elsewhere_is_left_to_it() -> None:
    later = NOW + timedelta(seconds=10)  # due by time, wherever a chain stands
    work = CheckpointingWork([5, 2, 3], [CheckpointMark(0, NOW)] * 3)
    work.held = {2}
    signed = await sign_checkpoints(work, EVERY_FOUR, now=later)
    assert [(c.chain, c.first_seq, c.seq) for c in signed] == [(0, 1, 4), (0, 5, 5), (1, 1, 2)]
    assert [e.subject for e in work.published][2] == f"1:2:{work.records[1][1]['hash']}"
    assert work.marks == [
        CheckpointMark(5, later),
        CheckpointMark(2, later),
        CheckpointMark(0, NOW),
    ]
    # Each chain's checkpoints anchor that chain only.
    anchors = Anchors.by_chain(trusted(signed, KEYS).checkpoints)
    assert sorted(anchors) == [0, 1]
    assert first_break(work.records[1], 2, work.records[1][-1]["hash"], anchors[1]) is None
    assert first_break(work.records[0], 5, work.records[0][-1]["hash"], anchors[1]) is not None


def test_the_checkpoints_are_kept_for_ever_written_by_the_exchange_and_read_by_analysts() -> None:
    spec = SPECS[Topic.EXCHANGE_AUDIT_CHECKPOINTS]
    assert (spec.cleanup_policy, spec.retention_ms) == ("compact", None)
    bindings = declared_bindings(development=False)
    topic = Topic.EXCHANGE_AUDIT_CHECKPOINTS.value
    assert allowed(bindings, Principal.EXCHANGE, topic, "write")
    assert allowed(bindings, Principal.ANALYST, topic, "read")
    assert not allowed(bindings, Principal.ANALYST, topic, "write")
    assert not allowed(bindings, Principal.METRICS, topic, "read")
