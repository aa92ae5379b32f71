"""How a citizen's code request or sign-in is decided: optimistically, else under the lock.

Most attempts collide with no other attempt of the same citizen and nothing stands in
their way: they are judged on a plain read and written by one statement that checks the
citizen's state is still the one judged. Any other (a refusal, or a collision) is judged
again under the citizen's lock, so concurrent attempts are judged one after the other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from services.identity.domain.attempts import AttemptState, Counters, counters
from services.identity.use_cases.ports import IdentityWork, OptimisticWrites, Statements
from shared.errors import DomainError

Result = TypeVar("Result")


async def optimistically(
    statements: Statements,
    citizen: str,
    network: str,
    now: datetime,
    *,
    count_network: bool,
    plain: Callable[[OptimisticWrites, AttemptState, Counters], Awaitable[Result | None]],
    locked: Callable[
        [IdentityWork, AttemptState | None, Counters], Awaitable[Result | DomainError]
    ],
) -> Result:
    """Try the optimistic write, else take the lock and decide again.

    `network` is the client's (`domain.networks.client_network`); `count_network` is
    False for a network the limits spare. `plain` judges a registered citizen on a plain
    read and writes with one guarded statement; it returns None if it will not decide (a
    refusal is always decided under the lock) or could not write (another attempt moved the
    citizen's state on). `locked` decides in a transaction, holding the citizen's lock: it
    returns a refusal rather than raising it, so what the refusal wrote (counters, history,
    events) commits first.
    """
    state = await statements.attempt_state(citizen, network)
    if state is not None:
        judged = counters(state, network, now, count_network=count_network)
        done = await plain(statements, state, judged)
        if done is not None:
            return done
    async with statements.transaction() as work:
        state = await work.lock_attempt_state(citizen, network)
        address = None
        if state is None and count_network:
            # Many citizens share a network (an office, a pishkhan, a carrier's NAT): its
            # counter is locked only when a failure is counted, so successes never queue.
            address = await work.peek_counter("client_address", network)
        judged = counters(state, network, now, address, count_network=count_network)
        outcome = await locked(work, state, judged)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome
