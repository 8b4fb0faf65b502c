"""Named SQL statements, parsed once from queries.sql."""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        if name in queries:
            raise ValueError(f"queries.sql: duplicate query name {name!r}")
        queries[name] = body.strip()
    return queries


@cache
def queries() -> dict[str, str]:
    return parse((Path(__file__).parent / "queries.sql").read_text(encoding="utf-8"))


def q(name: str) -> str:
    try:
        return queries()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in db/queries.sql") from None
