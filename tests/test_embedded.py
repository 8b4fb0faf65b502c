"""The private PostgreSQL cluster, against real PostgreSQL binaries (no mocks)."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from db import embedded, pg_server
from db.embedded import Cluster, EmbeddedError

try:
    pg_server.find_bindir()
except EmbeddedError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(str(exc), allow_module_level=True)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "neardup"
    yield home
    # destroy() also clears /var/lib/neardup/<hash> when running as root.
    embedded.destroy(home)
    assert embedded.status(home) is None


def _query(cluster: Cluster, statement: str, dbname: str = "neardup") -> object:
    with psycopg.connect(cluster.url(dbname), autocommit=True) as conn:
        row = conn.execute(statement).fetchone()
    return None if row is None else row[0]


def test_the_first_call_creates_a_cluster_you_can_query(home: Path) -> None:
    cluster = embedded.ensure_running(home)

    assert _query(cluster, "SELECT 1") == 1
    assert cluster.port != 5432
    assert (cluster.datadir / "PG_VERSION").exists()
    assert (home / "cluster.json").exists()
    assert embedded.status(home) == cluster


def test_the_cluster_listens_on_localhost_with_the_promised_settings(home: Path) -> None:
    cluster = embedded.ensure_running(home)

    assert _query(cluster, "SHOW listen_addresses") == "127.0.0.1"
    assert _query(cluster, "SHOW max_connections") == "200"
    assert _query(cluster, "SHOW port") == str(cluster.port)
    assert _query(cluster, "SELECT pg_encoding_to_char(encoding) FROM pg_database "
                           "WHERE datname = 'neardup'") == "UTF8"


def test_a_second_call_reuses_the_running_cluster(home: Path) -> None:
    first = embedded.ensure_running(home)
    initialised_at = (first.datadir / "PG_VERSION").stat().st_mtime_ns

    second = embedded.ensure_running(home)

    assert second == first
    assert (second.datadir / "PG_VERSION").stat().st_mtime_ns == initialised_at


def test_a_missing_database_is_created_on_request(home: Path) -> None:
    cluster = embedded.ensure_running(home, dbname="other_db")

    assert _query(cluster, "SELECT current_database()", dbname="other_db") == "other_db"


def test_status_is_none_and_leaves_no_trace_before_anything_was_created(home: Path) -> None:
    assert embedded.status(home) is None
    assert embedded.stop(home) is False
    assert not home.exists()


def test_stopping_keeps_the_data_for_the_next_start(home: Path) -> None:
    cluster = embedded.ensure_running(home)
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (42)")

    assert embedded.stop(home) is True
    assert embedded.status(home) is None
    assert embedded.stop(home) is False

    again = embedded.ensure_running(home)
    assert again.port == cluster.port
    assert _query(again, "SELECT n FROM kept") == 42


def test_restart_keeps_the_port_and_the_data(home: Path) -> None:
    cluster = embedded.ensure_running(home)
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        before = conn.execute("SELECT pg_postmaster_start_time()").fetchone()

    restarted = embedded.restart(home)

    assert restarted.port == cluster.port
    assert _query(restarted, "SELECT count(*) FROM kept") == 0
    assert (before or [None])[0] != _query(restarted, "SELECT pg_postmaster_start_time()")


def test_restart_without_a_cluster_says_so(home: Path) -> None:
    with pytest.raises(EmbeddedError, match="ensure_running"):
        embedded.restart(home)


def test_a_port_taken_while_stopped_is_replaced_on_start(home: Path) -> None:
    cluster = embedded.ensure_running(home)
    embedded.stop(home)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", cluster.port))
        squatter.listen()

        moved = embedded.ensure_running(home)

        assert moved.port != cluster.port
        assert _query(moved, "SELECT 1") == 1
    assert embedded.ensure_running(home).port == moved.port


def test_two_threads_starting_a_fresh_home_agree_on_the_port(home: Path) -> None:
    results: list[Cluster] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(2)

    def start() -> None:
        barrier.wait()
        try:
            results.append(embedded.ensure_running(home))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert failures == []
    assert len(results) == 2 and results[0] == results[1]
    assert _query(results[0], "SELECT 1") == 1


def test_a_server_that_cannot_start_reports_the_log_line(home: Path) -> None:
    cluster = embedded.ensure_running(home)
    embedded.stop(home)
    with open(cluster.datadir / "postgresql.conf", "a") as conf:
        conf.write("no_such_setting = 1\n")

    with pytest.raises(EmbeddedError, match="failed to start") as raised:
        embedded.ensure_running(home)

    assert "\n" not in str(raised.value)
    assert "FATAL" in str(raised.value)


def test_destroy_removes_the_data_directory(home: Path) -> None:
    cluster = embedded.ensure_running(home)

    embedded.destroy(home)

    assert embedded.status(home) is None
    assert not cluster.datadir.exists()
    assert not (home / "cluster.json").exists()


def test_data_home_follows_xdg_data_home() -> None:
    assert embedded.data_home({"XDG_DATA_HOME": "/x"}) == Path("/x/neardup")


def test_data_home_defaults_to_local_share_under_home() -> None:
    assert embedded.data_home({"HOME": "/h"}) == Path("/h/.local/share/neardup")
    assert embedded.data_home({"HOME": "/h", "XDG_DATA_HOME": "relative"}) == Path(
        "/h/.local/share/neardup")
