from __future__ import annotations

from neardup.cli import run

run()
