"""Alembic environment: plain SQL migrations, serialised by an advisory lock."""
from __future__ import annotations

import os

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from alembic import context


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", "")
    if not url:
        raise SystemExit("alembic: no database URL (set DATABASE_URL or use `neardup db upgrade`)")
    # SQLAlchemy 2.1 picks psycopg 3 for postgresql:// already; being explicit keeps older URLs working.
    return url.replace("postgresql://", "postgresql+psycopg://", 1).replace("postgres://", "postgresql+psycopg://", 1)


def run_migrations_online() -> None:
    # No pool: a connection left open would keep a template database from being cloned.
    engine = create_engine(_url(), poolclass=NullPool)
    with engine.connect() as connection:
        # Two `neardup scan`s starting together must not both run the same DDL.
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('neardup.migrations'))"))
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
