"""`neardup demo` and `neardup db`: trying neardup out, and its database."""
from __future__ import annotations

import argparse
import os
import sys

from neardup.cli import Exit, Fail, env, flag, nonneg
from neardup.commands import connect, scan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="generate a folder of photos with planted duplicates and scan it")
    p.add_argument("--workers", type=nonneg, default=env("WORKERS", os.cpu_count() or 1, int),
                   help="local worker processes (default: CPUs)")
    p.add_argument("--json", action="store_true", default=flag("JSON"), help="print one JSON object")
    p.set_defaults(run=demo)

    p = sub.add_parser("db", help="the database: upgrade | url | stop")
    p.add_argument("action", choices=["upgrade", "url", "stop"])
    p.set_defaults(run=db)


def demo(args: argparse.Namespace) -> int:
    from db.embedded import data_home
    from neardup.cli import parser
    from neardup.demo import make_demo

    folder = make_demo(data_home() / "demo")
    print(f"demo photos in {folder}: 40 photos, 5 edited copies and one truncated file", file=sys.stderr)
    argv = ["scan", str(folder), "--workers", str(args.workers)] + (["--json"] if args.json else [])
    return scan(parser().parse_args(argv))


def db(args: argparse.Namespace) -> int:
    from db import embedded

    if args.action == "upgrade":
        url = connect()
        from db.connect import where

        print(f"database {where(url)} is up to date")
    elif args.action == "url":
        from db.connect import DatabaseUnreachable, resolve_url

        try:
            print(resolve_url())
        except DatabaseUnreachable as e:
            raise Fail(str(e), Exit.DATABASE) from None
    elif os.environ.get("DATABASE_URL"):
        print("DATABASE_URL is set: that database is not neardup's to stop", file=sys.stderr)
    else:
        print("stopped" if embedded.stop() else "not running")
    return Exit.OK
