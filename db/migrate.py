"""Apply the alembic migrations: neardup's tables and the broker's schema, idempotently."""
from __future__ import annotations

import logging
import re
from functools import cache
from pathlib import Path

import psycopg

ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"
_REVISION = re.compile(r"""^(down_revision|revision)\s*=\s*["']([^"']*)["']""", re.MULTILINE)


def config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    # ConfigParser interpolation would eat a '%' in a password.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@cache
def head_revision() -> str | None:
    """The one head of the migration chain, read from the files; None when unclear (alembic decides)."""
    revisions, parents = set(), set()
    for path in (ALEMBIC_DIR / "versions").glob("*.py"):
        found = dict(m.groups() for m in _REVISION.finditer(path.read_text(encoding="utf-8")))
        if "revision" not in found:
            return None
        revisions.add(found["revision"])
        parents.add(found.get("down_revision"))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def at_head(url: str, conn: psycopg.Connection | None = None) -> bool:
    """Is the database already migrated to the head? One query (on conn if given, else on a
    connection of its own); every doubt says no."""
    head = head_revision()
    if head is None:
        return False
    try:
        if conn is None:
            with psycopg.connect(url) as own:
                return _versions(own) == [head]
        return _versions(conn) == [head]
    except psycopg.Error:
        return False


def _versions(conn: psycopg.Connection) -> list[str]:
    if conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()[0] is None:
        return []
    return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version").fetchall()]


def upgrade(url: str, conn: psycopg.Connection | None = None) -> None:
    """Migrate to the head; conn, if given, is an open autocommit connection to ask first."""
    # Importing alembic and SQLAlchemy costs more than a whole rescan of an unchanged tree:
    # skip them when there is nothing to do.
    if at_head(url, conn):
        return
    from alembic import command

    logging.getLogger("alembic").setLevel(logging.WARNING)
    command.upgrade(config(url), "head")
