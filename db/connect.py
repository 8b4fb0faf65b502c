"""Which database, whether it answers, and pooled connections to it."""
from __future__ import annotations

import functools
import logging
import os
import select
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool

log = logging.getLogger("neardup.db")

P = ParamSpec("P")
T = TypeVar("T")

# Errors that mean "the server went away", after which the same idempotent call may simply be
# made again; anything else is a real error and propagates at once.
DISCONNECTS: tuple[type[BaseException], ...] = (psycopg.OperationalError, psycopg.InterfaceError)


class DatabaseUnreachable(RuntimeError):
    """PostgreSQL did not answer; the message is one line naming the host."""


def resolve_url(env: Mapping[str, str] | None = None) -> str:
    """DATABASE_URL if set, else the embedded cluster (started on first use)."""
    env = os.environ if env is None else env
    url = env.get("DATABASE_URL", "").strip()
    if url:
        return url
    from db import embedded

    try:
        return embedded.ensure_running().url()
    except embedded.EmbeddedError as e:
        raise DatabaseUnreachable(f"cannot start the embedded PostgreSQL: {e}") from None


@functools.cache
def shared_url() -> str:
    """resolve_url() once per process (the embedded cluster is looked up, or started, once)."""
    return resolve_url()


def where(url: str) -> str:
    """host:port/dbname of a URL, for messages (never the password)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}{parts.path or ''}"


def check_reachable(url: str, timeout_s: int = 5) -> None:
    with reachable(url, timeout_s):
        pass


@contextmanager
def reachable(url: str, timeout_s: int = 5) -> Iterator[psycopg.Connection]:
    """An autocommit connection that has answered a query, or DatabaseUnreachable naming the host."""
    try:
        conn = psycopg.connect(url, connect_timeout=timeout_s, autocommit=True)
        conn.execute("SELECT 1")
    except psycopg.Error as e:
        reason = (str(e).strip().splitlines() or ["no reason given"])[-1]
        raise DatabaseUnreachable(f"cannot reach PostgreSQL at {where(url)}: {reason}") from None
    with conn:
        yield conn


def make_pool(url: str, max_size: int = 8) -> ConnectionPool:
    return ConnectionPool(
        url,
        min_size=0,
        max_size=max_size,
        # A connection broken by a server restart is noticed and replaced on checkout.
        check=check_idle_connection,
        kwargs={"connect_timeout": 5, "application_name": "neardup"},
        open=True,
    )


def check_idle_connection(conn: psycopg.Connection) -> None:
    """The pool's checkout check, without a round trip for a connection that has nothing to read.

    A server that restarts or ends a session says so on the socket (an error message, then the
    close), so an idle connection whose socket is quiet has not been told to go. Pinging every
    checkout (ConnectionPool.check_connection) cost a round trip per transaction: 4 % of a hash
    worker's time, on the cores that also decode.
    """
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    quiet = select.poll()  # not select(): it fails on descriptors past 1024
    quiet.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    if quiet.poll(0):
        ConnectionPool.check_connection(conn)


def retrying(patience_s: float = 90.0) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Retry an idempotent call across connection loss, for up to patience_s."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            deadline = time.monotonic() + patience_s
            delay = 0.2
            while True:
                try:
                    return fn(*args, **kwargs)
                except DISCONNECTS as e:
                    if time.monotonic() + delay > deadline:
                        raise
                    log.warning("database connection lost in %s (%s); retrying", fn.__name__, e)
                    time.sleep(delay)
                    delay = min(delay * 2, 3.0)

        return wrapper

    return decorate
