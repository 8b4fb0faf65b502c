"""The live page in a real headless Chromium: the bar moves, and ends at 100 % with the job."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from cdp import Browser, chromium_path
from db.repository import JobOptions, NewFile, Repository
from photos import save_photos
from served import Server, server  # noqa: F401 - the fixture

READ = """[document.getElementById('bar-overall')?.dataset.percent ?? null,
            document.getElementById('status')?.textContent ?? null,
            document.getElementById('bar-overall')?.style.width ?? null,
            document.getElementById('conn')?.textContent ?? null]"""


@pytest.fixture
def browser() -> Browser:
    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); the page test needs a real browser")
    b = Browser(executable)
    yield b
    b.close()


def test_the_page_shows_a_bar_that_moves_and_ends_at_100_percent(
    browser: Browser, server: Server, start_workers, repo: Repository, tmp_path: Path
) -> None:
    # Big enough to outlast several of the page's updates (every 0.5 s) however fast hashing gets.
    photos = save_photos(tmp_path / "pics", range(900), size=(1280, 960))
    files = [NewFile(str(p), p.stat().st_size, p.stat().st_mtime) for p in photos]
    job = repo.submit([str(tmp_path / "pics")], files, JobOptions(batch_size=1, block_size=32))
    browser.open(f"{server.base}/watch/{job}")
    deadline = time.monotonic() + 30
    while (first := browser.evaluate(READ))[0] is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert first[:2] == ["0.00", "pending"], first
    start_workers(2)
    samples = [first]
    deadline = time.monotonic() + 180
    while samples[-1][1] != "completed" and time.monotonic() < deadline:
        time.sleep(0.1)
        samples.append(browser.evaluate(READ))
    percents = [float(s[0]) for s in samples]
    assert samples[-1][:3] == ["100.00", "completed", "100%"], samples[-1]
    assert all(b >= a for a, b in zip(percents, percents[1:])), "the bar went backwards"
    assert len({p for p in percents if 0 < p < 100}) >= 3, f"the bar did not move: {sorted(set(percents))}"
    time.sleep(0.5)
    assert browser.evaluate(READ)[3] == "job ended"
    assert repo.progress(job).status == "completed"
