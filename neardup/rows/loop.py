"""The loop every work ticket runs: claim rows of one job's phase until none are left.

A broker message is only a ticket to come and work; the work itself is the rows. A ticket works
for a bounded time, then sends a fresh ticket and returns, so worker threads keep turning over
(the monitor gets its turn) and no message outlives the broker's time limit.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from db.models import Claim, JobSettings, WorkRow
from db.repository import Repository

log = logging.getLogger("neardup.worker")

Handler = Callable[[Repository, Claim, WorkRow, JobSettings], object]
# What is left of a claim once its work is done: the transaction that finishes it.
Finish = Callable[[], object]
# Handles every row of a claim at once (compare rows finish together in one transaction). It may
# return the claim's finish instead of running it: the loop runs it behind the next claim's work.
ClaimHandler = Callable[[Repository, Claim, JobSettings], "Finish | None"]


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


def per_row(handler: Handler) -> ClaimHandler:
    """A claim handler running handler on each row: a bad row is released, the others go on."""

    def handle(repo: Repository, claim: Claim, settings: JobSettings) -> Finish | None:
        for row in claim.rows:
            try:
                handler(repo, claim, row, settings)
            except Exception as e:  # noqa: BLE001 - a bad row must not take the ticket down
                log.exception("%s row %s of job %s failed", row.phase, row.id, row.job_id)
                repo.release(claim, row.id, one_line(e))
        return None

    return handle


class Behind:
    """Runs each claim's finish on one background thread while the next claim is worked.

    A compare row's finish (its pairs and its done mark: round trips) would otherwise sit between
    two kernel runs. One finish at a time, in claim order; wait() re-raises a finish's failure, and
    the ticket fails as it would have inline (the row's lease brings it back).
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._last: Future[object] | None = None

    def run(self, finish: Finish | None) -> None:
        self.wait()
        if finish is not None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neardup-finish")
            self._last = self._pool.submit(finish)

    def wait(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            last.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


def work_through(
    repo: Repository,
    job_id: int,
    phase: str,
    handler: Handler | ClaimHandler,
    *,
    claim_limit: int | Callable[[JobSettings], int],
    whole_claims: bool = False,
    budget_s: float = float("inf"),
    resend: Callable[[], object] = lambda: None,
    poke: Callable[[], object] = lambda: None,
) -> int:
    """Run the phase's rows for this job; returns the number of rows this ticket handled."""
    settings = repo.job_settings(job_id)
    if settings is None or settings.status not in ("pending", "running") or settings.phase != phase:
        return 0
    handle: ClaimHandler = handler if whole_claims else per_row(handler)  # type: ignore[assignment]
    limit = claim_limit(settings) if callable(claim_limit) else claim_limit
    deadline = time.monotonic() + budget_s
    handled = 0
    behind = Behind()
    try:
        while True:
            claim = repo.claim(job_id, phase, limit, settings.lease_s)
            if not claim.rows:
                break
            behind.run(handle(repo, claim, settings))
            handled += len(claim.rows)
            if time.monotonic() > deadline:
                behind.close()
                resend()
                return handled
    finally:
        behind.close()
    if handled:
        # This ticket may have finished the phase's last row: let the monitor look now, not in a second.
        poke()
    return handled
