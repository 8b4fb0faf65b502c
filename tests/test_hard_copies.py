"""Copies a canonical hash alone misses: orientations decided apart, hashes moved far by an edit."""
from __future__ import annotations

import numpy as np
import psycopg
from test_matching import random_hashes

from db.models import HashedFile
from db.repository import JobOptions, Repository
from neardup.inline import finish_inline
from neardup.orientation import dihedral_hashes
from neardup.variants import HashBlock, block_pairs

THRESHOLD = 10


def signed(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def bits(*positions: int) -> int:
    return sum(1 << p for p in positions)


def turned_copy(h: int, turn: int, flips: int) -> int:
    """h in orientation `turn`, with the given bits flipped: what a copy whose canonical decision
    went the other way stores."""
    t = int(dihedral_hashes(np.array([h], dtype=np.int64))[turn, 0])
    return signed(t ^ flips)


def far_turn(h: int) -> int:
    """A turn of h that is far from h itself (as nearly every turn of a photo's hash is)."""
    turns = dihedral_hashes(np.array([h], dtype=np.int64))
    far = [t for t in range(1, 8) if int(np.bitwise_count(turns[t, 0] ^ turns[0, 0])) > 2 * THRESHOLD]
    assert far, "every turn of this hash is near it"
    return far[0]


def test_block_pairs_with_all_turns_finds_a_copy_turned_apart_and_no_unrelated_hash() -> None:
    rng = np.random.default_rng(7)
    base = [int(h) for h in random_hashes(40, rng)]
    copy = turned_copy(base[0], far_turn(base[0]), bits(3, 17))
    hashes = base + [copy]
    ids = list(range(1, len(hashes) + 1))
    block = HashBlock.from_lists(ids, hashes, [()] * len(hashes))
    half = HashBlock.from_lists(ids[:20], hashes[:20], [()] * 20)
    rest = HashBlock.from_lists(ids[20:], hashes[20:], [()] * (len(hashes) - 20))

    def pairs(a: HashBlock, b: HashBlock, same: bool, turns: int | None) -> set[tuple[int, int, int]]:
        lo, hi, d = block_pairs(a, b, THRESHOLD, same=same, threads=1, all_turns_up_to=turns)
        return set(zip(lo.tolist(), hi.tolist(), d.tolist()))

    assert pairs(block, block, True, None) == set()
    assert pairs(block, block, True, THRESHOLD) == {(1, len(hashes), 2)}
    # Across two blocks, whichever side holds the turned copy.
    assert pairs(half, rest, False, THRESHOLD) == pairs(rest, half, False, THRESHOLD) == {(1, len(hashes), 2)}
    # Brute force: every pair within the threshold in some orientation, and only those.
    turns = dihedral_hashes(np.array(hashes, dtype=np.int64))
    brute = np.bitwise_count(turns[:, :, None] ^ turns[0][None, None, :]).min(axis=0)
    want = {(i + 1, j + 1, int(brute[i, j])) for i in range(len(hashes)) for j in range(i + 1, len(hashes))
            if brute[i, j] <= THRESHOLD}
    assert pairs(block, block, True, THRESHOLD) == want


def submit(repo: Repository, hashes: list[int], opts: JobOptions) -> int:
    files = [HashedFile(f"/h/{k:03d}.jpg", 1000 + k, float(k), h, (), 64, 48) for k, h in enumerate(hashes)]
    return repo.submit_hashed(["/h"], files, opts)


def grouped(repo: Repository, job: int) -> list[list[str]]:
    assert finish_inline(repo, job)
    assert repo.progress(job).status == "completed"
    return sorted(sorted(m.rsplit("/", 1)[1] for m in g.members) for g in repo.groups(job))


def test_a_small_job_groups_a_copy_whose_orientation_was_decided_apart_and_a_large_one_does_not(
    repo: Repository,
) -> None:
    rng = np.random.default_rng(11)
    h, other = (int(x) for x in random_hashes(2, rng))
    hashes = [h, turned_copy(h, far_turn(h), bits(5, 40, 41)), other]
    small = submit(repo, hashes, JobOptions(threshold=THRESHOLD, all_turns_up_to=3))
    large = submit(repo, hashes, JobOptions(threshold=THRESHOLD, all_turns_up_to=2))
    plain = submit(repo, hashes, JobOptions(threshold=THRESHOLD, all_turns_up_to=3, rotations=False))
    assert [repo.job_settings(j).all_turns for j in (small, large, plain)] == [True, False, False]
    assert grouped(repo, small) == [["000.jpg", "001.jpg"]]
    assert grouped(repo, large) == []


def thumbnail(seed: int) -> bytes:
    # A smooth random picture: blocky noise, as a photo's 32x32 thumbnail is far from white noise.
    cells = np.random.default_rng(seed).integers(0, 256, size=(8, 8))
    return np.kron(cells, np.ones((4, 4))).astype(np.uint8).tobytes()


def test_a_member_confirmed_with_a_few_copies_is_looked_at_again_against_the_rest_of_its_component(
    database_url: str, repo: Repository,
) -> None:
    rng = np.random.default_rng(5)
    h = int(random_hashes(1, rng)[0])
    near = bits(20, 21, 22, 23, 24, 25)
    hashes = ([signed(h ^ (1 << k)) for k in range(8)]  # eight copies, pairwise 2 bits apart
              + [signed(h ^ near), signed(h ^ near ^ bits(25, 50))]  # two more, 6 bits out
              + [signed(h ^ near ^ bits(*range(26, 38)))])  # an edit 12 bits past those two, 19 past the rest

    def run(far_thumbs: bytes) -> list[list[str]]:
        # Verification reaches 14 bits: the edit is a candidate with the two only.
        job = submit(repo, hashes, JobOptions(threshold=THRESHOLD, verify_up_to=14))
        with psycopg.connect(database_url) as conn:
            for path, thumb in [(f"/h/{k:03d}.jpg", far_thumbs) for k in range(8)] \
                    + [(f"/h/{k:03d}.jpg", thumbnail(1)) for k in (8, 9, 10)]:
                conn.execute("UPDATE file SET thumb = %s WHERE job_id = %s AND path = %s", (thumb, job, path))
        return grouped(repo, job)

    everyone = [f"{k:03d}.jpg" for k in range(11)]
    assert run(thumbnail(1)) == [everyone]
    # The eight copies' thumbnails unlike the edit's: it is confirmed with the two, and no more.
    assert run(thumbnail(2)) == [everyone[:10]]
