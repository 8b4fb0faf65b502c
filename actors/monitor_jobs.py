"""monitor_jobs: the periodic monitor that moves jobs through their phases.

One self-rescheduling chain (about once a second) sweeps expired leases and steps every active
job. Chains cannot multiply: a tick that cannot take the advisory lock ends its chain, and
arm_monitor only starts a chain when none has ticked lately. Called with a job id, it steps that
one job once and does not reschedule: workers use that to report a phase's last row at once.
"""
from __future__ import annotations

import logging
import time

import dramatiq

from actors.broker import transitions
from db.maintenance import settle_work
from db.transitions import Kick

log = logging.getLogger("neardup.monitor")

TICK_MS = 1000


# Phases a ticket goes straight on to when its own phase ends (each a few rows a job, or short).
FOLLOW = frozenset({"cluster", "finalize"})


def ticket_actor(phase: str) -> dramatiq.Actor:
    from actors.cluster_components import cluster_components
    from actors.compare_blocks import compare_blocks
    from actors.finalize_job import finalize_job
    from actors.hash_files import hash_files

    return {"hash": hash_files, "compare": compare_blocks, "cluster": cluster_components,
            "finalize": finalize_job}[phase]


def send_tickets(kick: Kick) -> None:
    actor = ticket_actor(kick.phase)
    for _ in range(kick.tickets):
        actor.send(kick.job_id)


def step_job(job_id: int, phase: str, force_kick: bool = False) -> Kick | None:
    kick = transitions().step(job_id, phase, force_kick=force_kick)
    if kick is not None:
        log.info("job %s: %s, %s ticket(s)", job_id, kick.phase, kick.tickets)
        send_tickets(kick)
        settle_work(transitions().repo.url, kick.rows)
    return kick


def step_and_follow(job_id: int, phase: str) -> None:
    """step_job from a ticket that found its phase's rows all taken: if that moved the job on, this
    thread starts on the next phase at once instead of waiting for a ticket to come back through
    the broker (the tickets sent still bring every other worker in)."""
    kick = step_job(job_id, phase)
    if kick is not None and kick.rows and kick.phase in FOLLOW:
        ticket_actor(kick.phase).fn(job_id)


def tick() -> bool:
    """One sweep over all active jobs; False when another monitor holds the lock."""
    t = transitions()
    with t.exclusive() as mine:
        if not mine:
            return False
        began = time.perf_counter()
        t.ticked()
        touched = set(t.reclaim_expired())
        for job_id, phase in t.active_jobs():
            step_job(job_id, phase, force_kick=job_id in touched)
            t.checkpoint(job_id)
        # The monitor's own cost, so `neardup bench progress` can set it against wall time.
        t.busy(time.perf_counter() - began)
    return True


@dramatiq.actor(queue_name="neardup-monitor", priority=0, max_retries=10, min_backoff=200,
                max_backoff=5000, time_limit=600_000)
def monitor_jobs(job_id: int | None = None) -> None:
    t = transitions()
    if job_id is not None:
        phase = dict(t.active_jobs()).get(job_id)
        if phase is not None:
            step_job(job_id, phase)
        return
    if not tick():
        return
    if t.keep_ticking():
        monitor_jobs.send_with_options(delay=TICK_MS)


def arm_monitor(only_active: bool = False) -> bool:
    """Start a monitor chain unless one is alive (and, with only_active, unless no job is active);
    cheap, so every scan, submit and worker calls it."""
    if transitions().arm_due(only_active=only_active):
        monitor_jobs.send()
        return True
    return False
