"""What aiokafka logs is held to what the platform expects of it."""

from __future__ import annotations

import logging

import pytest

import shared.kafka  # noqa: F401  (installs the filter)

COORDINATOR = logging.getLogger("aiokafka.consumer.group_coordinator")


@pytest.mark.allows_error_logs  # the other error is logged on purpose
@pytest.mark.parametrize(
    "error",
    [
        "[Error 27] RebalanceInProgressError: exchange",
        "[Error 22] IllegalGenerationError: exchange",
        "[Error 25] UnknownMemberIdError: exchange",
    ],
)
def test_a_commit_cut_short_by_a_rebalance_is_a_warning_not_an_error(
    caplog: pytest.LogCaptureFixture, error: str
) -> None:
    caplog.set_level(logging.WARNING)
    COORDINATOR.error(
        "OffsetCommit failed for group %s due to group error (%s), will rejoin", "exchange", error
    )
    COORDINATOR.error("Unexpected error in heartbeat routine")
    levels = [(record.levelno, record.getMessage()[:14]) for record in caplog.records]
    assert levels == [
        (logging.WARNING, "OffsetCommit f"),
        (logging.ERROR, "Unexpected err"),
    ]
