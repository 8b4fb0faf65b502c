"""Dramatiq actors: `dramatiq actors` imports this package to run a worker.

The broker is set before any actor module is imported, as Dramatiq requires.
"""
from __future__ import annotations

from actors.broker import setup

broker = setup()

from actors.cluster_components import cluster_components  # noqa: E402
from actors.compare_blocks import compare_blocks  # noqa: E402
from actors.finalize_job import finalize_job  # noqa: E402
from actors.hash_files import hash_files  # noqa: E402
from actors.monitor_jobs import arm_monitor, monitor_jobs  # noqa: E402

__all__ = ["arm_monitor", "broker", "cluster_components", "compare_blocks", "finalize_job", "hash_files",
           "monitor_jobs"]
