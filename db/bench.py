"""Database side of `neardup bench progress`: a synthetic job of many work rows, timed reads."""
from __future__ import annotations

import json
import statistics
import time

import psycopg

from db.connect import retrying
from db.maintenance import settle_work
from db.queries import q
from db.repository import JobOptions


class ProgressBench:
    def __init__(self, repo) -> None:  # type: ignore[no-untyped-def] - a db.repository.Repository
        self.repo = repo

    def synthetic_job(self, rows: int, units: int = 16) -> int:
        """A running job whose hash phase has `rows` pending work rows of `units` files each."""
        job = self.repo.submit(["/bench"], [], JobOptions())
        with self.repo._tx() as cur:
            cur.execute(q("bench_make_rows"), {"job_id": job, "phase": "hash", "units": units, "rows": rows})
            cur.execute(q("bench_start_job"), {"job_id": job})
        return job

    def settle(self, rows: int) -> bool:
        """What submit and the monitor do after making rows in bulk."""
        return settle_work(self.repo.url, rows)

    def finish_rows(self, job: int, rows: int) -> None:
        with self.repo._tx() as cur:
            cur.execute(q("bench_finish_rows"), {"job_id": job, "rows": rows})

    def vacuum(self) -> None:
        with psycopg.connect(self.repo.url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) work")

    def time_reads(self, job: int, reads: int = 30, warmup: int = 3) -> dict[str, float]:
        """The real read path (Repository.progress: one statement), wall-clock per read."""
        for _ in range(warmup):
            self.repo.progress(job)
        times = []
        for _ in range(reads):
            began = time.perf_counter()
            self.repo.progress(job)
            times.append((time.perf_counter() - began) * 1000)
        times.sort()
        return {"median_ms": round(statistics.median(times), 2),
                "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
                "server_ms": self.explain_ms(job)}

    def explain_ms(self, job: int) -> float:
        """The server's own execution time for the progress statement (EXPLAIN ANALYZE)."""
        with self.repo._tx() as cur:
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + q("job_progress"), {"job_id": job})
            plan = cur.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return round(float(plan[0]["Execution Time"]), 2)

    @retrying()
    def monitor_totals(self) -> tuple[float, int]:
        with self.repo._tx() as cur:
            cur.execute(q("monitor_totals"))
            busy, ticks = cur.fetchone()
        return float(busy), int(ticks)
