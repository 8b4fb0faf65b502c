"""Verification: thumbnails confirm near misses past the threshold, and only true copies."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from db.models import SeenFile
from neardup.fingerprint import dct_of, fingerprint, thumbnail
from neardup.hashing import hash_file, normalise_gray
from neardup.hashspec import HashSpec
from neardup.orientation import SYMMETRIES, on_coefficients, sign_hash
from neardup.verify import FLOOR, SIDE, correlation, pack, turn_between, verified

BASE = "imagededup/base_images"


def gray(eval_dir: Path, name: str) -> Image.Image:
    with Image.open(eval_dir / BASE / name) as im:
        return normalise_gray(im)


def crop_corner(im: Image.Image, share: float) -> Image.Image:
    # 5 % off the left and the top: the copy scripts/make_transform_set.py calls crop5corner.
    return im.crop((int(im.width * share), int(im.height * share), im.width, im.height))


def test_every_orientation_of_a_thumbnail_is_found_from_the_sign_hashes_alone(eval_dir: Path) -> None:
    thumb = thumbnail(gray(eval_dir, "ukbench00120.jpg"))
    block = dct_of(thumb)
    upright = pack(thumb, SYMMETRIES[0])
    for s in SYMMETRIES:
        turned_hash, turned_thumb = sign_hash(on_coefficients(block, s)), pack(thumb, s)
        assert correlation(upright, turned_thumb, turn_between(sign_hash(block), turned_hash)) > 0.999, s


def test_a_fingerprint_keeps_its_thumbnail_in_the_canonical_orientation(eval_dir: Path) -> None:
    im = gray(eval_dir, "ukbench09040.jpg")
    a = fingerprint(im, HashSpec())
    b = fingerprint(im.transpose(Image.Transpose.ROTATE_90), HashSpec())
    assert a.hash == b.hash and a.thumb is not None and len(a.thumb) == SIDE * SIDE
    assert np.abs(np.frombuffer(a.thumb, np.uint8).astype(int) - np.frombuffer(b.thumb, np.uint8)).max() <= 2


def test_a_crop_of_a_few_percent_is_confirmed_and_another_photo_is_not(eval_dir: Path) -> None:
    spec = HashSpec()
    original = fingerprint(gray(eval_dir, "ukbench09040.jpg"), spec)
    cropped = fingerprint(crop_corner(gray(eval_dir, "ukbench09040.jpg"), 0.05)
                          .transpose(Image.Transpose.FLIP_LEFT_RIGHT), spec)
    other = fingerprint(gray(eval_dir, "ukbench09268.jpg"), spec)
    assert correlation(original.thumb, cropped.thumb, turn_between(original.hash, cropped.hash)) >= FLOOR
    assert correlation(original.thumb, other.thumb, turn_between(original.hash, other.hash)) < 0.8


def test_a_file_stored_without_a_thumbnail_is_never_confirmed(eval_dir: Path) -> None:
    info = hash_file(str(eval_dir / BASE / "ukbench09040.jpg"), HashSpec(), draft=True)
    seen = {1: SeenFile(info.hash, info.thumb), 2: SeenFile(info.hash, info.thumb), 3: SeenFile(info.hash, None)}
    assert verified(np.array([1, 1, 2]), np.array([2, 3, 9]), seen).tolist() == [True, False, False]


def test_a_thumbnail_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="1024 bytes"):
        correlation(b"\0" * 10, b"\0" * 1024, SYMMETRIES[0])


def test_a_copy_just_past_the_threshold_joins_its_group_only_when_verified(
    run_cli, eval_dir: Path, tmp_path: Path
) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    with Image.open(eval_dir / BASE / "ukbench09040.jpg") as im:
        im.save(pics / "original.jpg", quality=95)
        im.transpose(Image.Transpose.ROTATE_90).save(pics / "turned.jpg", quality=95)
        crop_corner(im, 0.05).save(pics / "cropped.jpg", quality=90)
    with Image.open(eval_dir / BASE / "ukbench09268.jpg") as im:
        im.save(pics / "other.jpg", quality=95)

    def groups(*extra: str) -> list[list[str]]:
        done = run_cli("scan", str(pics), "--json", "--workers", "1", "--rehash", *extra)
        assert done.returncode == 0, done.stderr
        return [sorted(Path(m).name for m in g["members"]) for g in json.loads(done.stdout)["groups"]]

    assert groups("--verify-up-to", "10") == [["original.jpg", "turned.jpg"]]
    assert groups() == [["cropped.jpg", "original.jpg", "turned.jpg"]]
    assert groups("--verify-up-to", "16", "--inline-files", "0") == [["cropped.jpg", "original.jpg", "turned.jpg"]]


def test_the_compiled_verifier_scores_as_the_numpy_one_coarse_look_included(eval_dir: Path) -> None:
    from neardup.verify import correlations, warm_verification

    warm_verification()  # loaded, the compiled verifier answers every size
    paths = sorted((eval_dir / BASE).glob("*.jpg"))
    infos = [hash_file(str(p), HashSpec(), draft=True) for p in paths]
    seen = {10 * k: SeenFile(i.hash, i.thumb) for k, i in enumerate(infos)}
    seen[999] = SeenFile(infos[0].hash, None)
    ids = sorted(seen)
    lo = np.array([x for x in ids for _ in ids])
    hi = np.array([y for _ in ids for y in ids])
    compiled = correlations(lo, hi, seen)
    for x, y, score in zip(lo.tolist(), hi.tolist(), compiled.tolist()):
        if 999 in (x, y):
            assert score == 0.0
            continue
        a, b = seen[x], seen[y]
        assert abs(score - correlation(a.thumb, b.thumb, turn_between(a.hash, b.hash))) < 1e-5
    assert (compiled[lo == hi][:-1] > 0.999).all()
    assert 0 < (compiled >= FLOOR).sum() < len(compiled)


def test_a_job_verifies_up_to_the_bits_of_its_size_tier_unless_told(repo) -> None:
    from db.repository import JobOptions, NewFile
    from neardup.hashspec import VERIFY_BY_SIZE

    tiers = JobOptions(verify_tiers=VERIFY_BY_SIZE)
    assert [tiers.verify_bits(n) for n in (3, 20_000, 20_001, 200_001, 10**8)] == [20, 20, 18, 16, 14]
    assert JobOptions(verify_up_to=12).verify_bits(10**8) == 12
    files = [NewFile(f"/x/{i}.jpg", 1, 0.0) for i in range(3)]
    by_size = repo.job_settings(repo.submit(["/x"], files, tiers))
    told = repo.job_settings(repo.submit(["/x"], files, JobOptions(verify_up_to=13)))
    plain = repo.job_settings(repo.submit(["/x"], files, JobOptions(verify_up_to=13, rotations=False)))
    assert (by_size.verify_up_to, told.verify_up_to, plain.verify_up_to) == (20, 13, 10)
    assert by_size.candidates_up_to == 20 and plain.candidates_up_to == 10  # no orientation, no verification


def test_a_compare_claim_reads_only_the_thumbnails_its_held_blocks_lack(repo, database_url: str) -> None:
    import psycopg

    from db.repository import JobOptions, NewFile
    from neardup.rows import compare
    from neardup.variants import HashBlock

    job = repo.submit(["/x"], [NewFile(f"/x/{i}.jpg", 1, 0.0) for i in range(6)], JobOptions())
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE file SET hash = id, thumb = decode(repeat('7f', 1024), 'hex') WHERE job_id = %s", (job,))
        ids = [r[0] for r in conn.execute("SELECT id FROM file WHERE job_id = %s ORDER BY id", (job,))]
    asked: list[list[int]] = []
    real = repo.seen_files

    def counting(wanted):  # type: ignore[no-untyped-def]
        asked.append(sorted(wanted))
        return real(wanted)

    repo.seen_files = counting
    block = {k: HashBlock.from_lists(ids[2 * k:2 * k + 2], ids[2 * k:2 * k + 2], [(), ()]) for k in range(3)}
    first = compare._seen(repo, job, np.array(ids[:4]), [block[0], block[1]])
    assert sorted(first) == ids[:4] and first[ids[0]].thumb == b"\x7f" * 1024
    # The next claim holds blocks 1 and 2: block 1's thumbnails are kept, block 0's are let go.
    second = compare._seen(repo, job, np.array(ids[2:]), [block[1], block[2]])
    assert sorted(second) == ids[2:]
    assert asked == [ids[:4], ids[4:]]
    compare._seen(repo, job + 1, np.array(ids[2:4]), [block[1]])  # another job: nothing is kept
    assert asked[-1] == ids[2:4]


def test_a_cluster_row_reads_the_confirmed_pairs_of_its_components_only(repo, database_url: str) -> None:
    import psycopg

    from db.repository import JobOptions, NewFile

    job = repo.submit(["/x"], [NewFile(f"/x/{i}.jpg", 1, 0.0) for i in range(6)], JobOptions())
    with psycopg.connect(database_url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM file WHERE job_id = %s ORDER BY id", (job,))]
        # Components 1 = ids 0-2 and 2 = ids 3-5; one confirmed pair (14 bits) in each, one plain (6).
        for k, f in enumerate(ids):
            conn.execute("INSERT INTO file_component (job_id, component, file_id) VALUES (%s, %s, %s)",
                         (job, 1 + k // 3, f))
        for a, b, d in ((ids[0], ids[1], 6), (ids[0], ids[2], 14), (ids[3], ids[5], 14), (ids[4], ids[5], 6)):
            conn.execute("INSERT INTO pair (job_id, a, b, distance) VALUES (%s, %s, %s, %s)", (job, a, b, d))
    assert repo.verified_pairs(job, 1, 1, 10) == [(ids[0], ids[2])]
    assert sorted(repo.verified_pairs(job, 1, 2, 10)) == [(ids[0], ids[2]), (ids[3], ids[5])]
    assert repo.verified_pairs(job, 1, 2, 14) == []
