"""The Dramatiq broker: PostgreSQL itself (dramatiq-postgres), plus neardup's worker middleware."""
from __future__ import annotations

import logging
import os
import sys
import threading
from functools import cache

import dramatiq
from dramatiq.middleware import Middleware
from dramatiq_postgres import PostgresBroker

from db.connect import DatabaseUnreachable, check_reachable, shared_url
from db.repository import Repository, shared_repository
from db.transitions import Transitions

log = logging.getLogger("neardup.worker")


database_url = shared_url


def repository() -> Repository:
    return shared_repository(database_url())


@cache
def transitions() -> Transitions:
    return Transitions(repository())


class WorkerChecks(Middleware):
    """Refuse to run against a database without the schema, then arm the monitor and watch it."""

    def __init__(self) -> None:
        self._stopping = threading.Event()

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        url = database_url()
        try:
            check_reachable(url)
        except DatabaseUnreachable as e:
            print(f"neardup worker: {e}", file=sys.stderr, flush=True)
            raise SystemExit(3)  # not os._exit: dramatiq signals "booted" in a finally
        if not repository().schema_ready():
            # Without its tables the broker retries UndefinedTable for minutes: say why, and stop.
            print("neardup worker: the database has no neardup schema; run `neardup db upgrade` first",
                  file=sys.stderr, flush=True)
            raise SystemExit(3)  # not os._exit: dramatiq signals "booted" in a finally
        # The DCT every hash row needs first, here: a hash thread importing scipy's modules while
        # the warm thread imports hdbscan's (scipy again) could meet in a circular import.
        import scipy.fftpack  # noqa: F401

        # Beside the first messages, not before them: loading the compiled kernel (numba's
        # on-disk cache; a compile on a machine's first run) and importing hdbscan take 1.5 s,
        # which held back the hash rows of every scan that started its workers, though they need
        # neither. A compare or cluster row that comes sooner waits on the same import lock.
        threading.Thread(target=_warm, name="neardup-warm", daemon=True).start()

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # A ticket keeps its thread for seconds, claiming rows until none are left. Dramatiq's
        # default prefetch (two messages a thread) let one worker hold tickets it could not start
        # while another worker idled; one message a thread spreads them. An operator's
        # dramatiq_queue_prefetch setting still wins.
        if not os.environ.get("dramatiq_queue_prefetch"):
            worker.queue_prefetch = worker.worker_threads

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from actors.monitor_jobs import arm_monitor

        arm_monitor()
        # The monitor chain is a broker message: when the worker holding it is killed, the broker
        # gives the message back only when it declares that worker dead (a minute or more), and
        # leases would not be swept meanwhile. Every worker re-arms a chain that stopped ticking.
        threading.Thread(target=_watch_monitor, args=(self._stopping,), name="neardup-monitor-watch",
                         daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stopping.set()


def _warm() -> None:
    try:
        from neardup.clustering import warm_clustering
        from neardup.kernel import warm
        from neardup.verify import warm_verification

        warm()
        warm_verification()
        warm_clustering()
    except Exception:  # noqa: BLE001 - the first row that needs them compiles or imports them
        log.exception("warming the compare kernel, verification and clustering failed")


# How often each worker checks that a monitor chain is ticking (arm_monitor: one UPDATE).
WATCH_S = 5.0


def _watch_monitor(stopping: threading.Event) -> None:
    from actors.monitor_jobs import arm_monitor

    while not stopping.wait(WATCH_S):
        try:
            if arm_monitor(only_active=True):
                log.info("monitor chain had stopped ticking: armed a new one")
        except Exception:  # noqa: BLE001 - a database hiccup must not end the watch
            log.exception("monitor watch failed; trying again in %ss", WATCH_S)


def make_broker(url: str) -> PostgresBroker:
    broker = PostgresBroker(url=url, results=False)
    broker.add_middleware(WorkerChecks())
    return broker


def setup() -> PostgresBroker:
    broker = make_broker(database_url())
    dramatiq.set_broker(broker)
    return broker
