"""Copies a canonical hash alone misses: orientations decided apart, hashes moved far by an edit."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
from PIL import Image
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
    assert grouped(repo, large) == grouped(repo, plain) == []


def test_a_turned_pair_must_be_closer_than_the_threshold_by_the_margin(repo: Repository) -> None:
    from neardup.hashspec import ALL_TURNS_MARGIN

    rng = np.random.default_rng(13)
    h = int(random_hashes(1, rng)[0])
    turn = far_turn(h)
    within = THRESHOLD - ALL_TURNS_MARGIN
    # Unrelated photos' turned hashes meet by chance more often than their canonical ones: a turned
    # pair counts only within the margin.
    at_bound = turned_copy(h, turn, bits(*range(within)))
    past = turned_copy(h, turn, bits(*range(within + 1)))
    opts = JobOptions(threshold=THRESHOLD, all_turns_up_to=10)
    assert grouped(repo, submit(repo, [h, at_bound], opts)) == [["000.jpg", "001.jpg"]]
    assert grouped(repo, submit(repo, [h, past], opts)) == []


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


def test_a_thread_never_takes_another_databases_blocks_for_its_own() -> None:
    from db.models import BlockHashes
    from neardup.rows import compare

    class Source:
        """What _blocks reads of a repository: its address and its blocks (one per database)."""

        def __init__(self, url: str, first_id: int) -> None:
            self.url, self.first_id, self.fetched = url, first_id, 0

        def compare_blocks(self, job_id: int, blocks: list[int]) -> dict[int, BlockHashes]:
            self.fetched += 1
            ids = np.arange(self.first_id, self.first_id + 3, dtype=np.int64)
            empty = np.empty(0, dtype=np.int64)
            return {k: BlockHashes(k, ids, ids, empty, empty) for k in blocks}

    one, other = Source("postgresql:///one", 1), Source("postgresql:///other", 100)
    assert compare._blocks(one, 1, {0})[0].ids.tolist() == [1, 2, 3]  # type: ignore[arg-type]
    assert compare._blocks(one, 1, {0})[0].ids.tolist() == [1, 2, 3] and one.fetched == 1  # type: ignore[arg-type]
    # Job 1 of another database is another job: its blocks are read, not the held ones reused.
    assert compare._blocks(other, 1, {0})[0].ids.tolist() == [100, 101, 102]  # type: ignore[arg-type]
    assert other.fetched == 1


def test_the_second_look_reaches_only_hashes_within_its_bits() -> None:
    from db.models import JobSettings, Member, SeenFile
    from neardup.rows.cluster import SECOND_LOOK_BITS, _second_look

    h = int(random_hashes(1, np.random.default_rng(9))[0])
    copies = [signed(h ^ (1 << k)) for k in range(8)]
    settings = JobSettings(1, "running", "cluster", THRESHOLD, 64, 16, 3, 60.0, True, 14)

    # Rings: the same picture in every orientation, whichever one far hashes happen to agree on.
    y, x = np.mgrid[:32, :32] - 15.5
    rings = (128 + 100 * np.cos(np.hypot(x, y) / 2)).astype(np.uint8).tobytes()

    def looked(edit: int) -> list[tuple[int, int]]:
        hashes = copies + [signed(h ^ edit)]  # edit: the bits it flips in h
        members = [Member(1, 10 + k, x, (), 100, 1000, 0.0, f"/h/{k}.jpg") for k, x in enumerate(hashes)]
        seen = {m.id: SeenFile(m.hash, rings) for m in members}
        # The edit was confirmed with copy 0; the look takes it to the others its bits reach.
        return _second_look(members, [(0, 8)], seen, settings)

    def expected(edit: int) -> list[tuple[int, int]]:
        turns = dihedral_hashes(np.array([signed(h ^ edit)], dtype=np.int64))[:, 0]
        far = [int(np.bitwise_count(turns ^ np.array(c, dtype=np.int64).view(np.uint64)).min()) for c in copies]
        return [(k, 8) for k in range(1, 8) if THRESHOLD < far[k] <= SECOND_LOOK_BITS]

    near = bits(*range(20, 20 + SECOND_LOOK_BITS - 1))
    # An unrelated hash (a mirror inverts half the bits, so flipping many bits of h is no way to
    # get far from it): the first of a few random ones beyond the bound from some copies.
    beyond = next(h ^ int(r) for r in random_hashes(64, np.random.default_rng(2)).view(np.uint64)
                  if len(expected(h ^ int(r))) < 7)
    assert len(expected(near)) == 7 and len(expected(beyond)) < 7  # both sides of the bound are met
    assert sorted(looked(near)) == expected(near)
    assert sorted(looked(beyond)) == expected(beyond)


def texture(seed: int) -> Image.Image:
    # Fine grain, as grass, gravel or a star field: a crop's change of scale alone spoils it.
    cells = (np.random.default_rng(seed).random((30, 40)) * 255).astype(np.uint8)
    return Image.fromarray(cells).resize((640, 480), Image.Resampling.BICUBIC)


def cropped(im: Image.Image, share: float) -> Image.Image:
    return im.crop((int(im.width * share), int(im.height * share), im.width, im.height))


def test_a_few_percent_crop_of_a_fine_grained_picture_is_confirmed_only_with_the_zoomed_look() -> None:
    from neardup.fingerprint import fingerprint
    from neardup.hashing import normalise_gray
    from neardup.hashspec import HashSpec
    from neardup.verify import FLOOR, correlation, turn_between

    def scores(a: Image.Image, b: Image.Image) -> tuple[float, float]:
        fa, fb = (fingerprint(normalise_gray(x), HashSpec()) for x in (a, b))
        turn = turn_between(fa.hash, fb.hash)
        return correlation(fa.thumb, fb.thumb, turn), correlation(fa.thumb, fb.thumb, turn, zoom=True)

    plain, zoomed = scores(texture(1), cropped(texture(1), 0.05))
    assert plain < FLOOR <= zoomed
    assert max(scores(texture(1), texture(2))) < FLOOR  # another picture of the same kind


def test_a_small_scan_groups_a_fine_grained_picture_with_its_crop(run_cli, tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    texture(1).save(pics / "grain.png")
    cropped(texture(1), 0.05).save(pics / "grain-cropped.png")
    texture(2).save(pics / "other.png")
    done = run_cli("scan", str(pics), "--json", "--workers", "1", "--rehash")
    assert done.returncode == 0, done.stderr
    groups = [sorted(Path(m).name for m in g["members"]) for g in json.loads(done.stdout)["groups"]]
    assert groups == [["grain-cropped.png", "grain.png"]]
