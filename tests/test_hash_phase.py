"""The hash phase end to end: orientations, exact copies, rescans, hash kinds, bad input, options."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from conftest import EVAL, wait_for
from photos import photo, save_photos
from PIL import Image
from test_hashing import png_header_only


def scan(run_cli, *args: str | Path, workers: int = 2) -> dict:
    done = run_cli("scan", *map(str, args), "--workers", str(workers), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def hash_counts(run_cli, job: int) -> tuple[int, int, int, int]:
    status = json.loads(run_cli("status", str(job), "--json").stdout)
    ph = next(p for p in status["phases"] if p["name"] == "hash")
    return ph["done"], ph["failed"], ph["skipped"], ph["total"]


def group_of(result: dict, path: Path) -> set[str]:
    return next((set(g["members"]) for g in result["groups"] if str(path) in g["members"]), set())


def rows(database_url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_rotated_and_a_mirrored_copy_of_a_photo_end_up_in_its_group(run_cli, tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    originals = save_photos(pics, range(8))
    with Image.open(originals[3]) as im:
        im.transpose(Image.Transpose.ROTATE_90).save(pics / "turned.jpg", quality=85)
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(pics / "mirrored.png")
    result = scan(run_cli, pics)
    [group] = result["groups"]
    assert group["members"] == sorted([str(originals[3]), str(pics / "turned.jpg"), str(pics / "mirrored.png")])
    plain = scan(run_cli, pics, "--no-rotations")
    assert str(pics / "turned.jpg") not in group_of(plain, originals[3])
    assert str(pics / "mirrored.png") not in group_of(plain, originals[3])


def test_byte_identical_files_are_decoded_once_and_count_as_skipped(
    run_cli, tmp_path: Path, database_url: str
) -> None:
    pics = tmp_path / "pics"
    originals = save_photos(pics / "a", range(4))
    (pics / "b").mkdir()
    copies = [shutil.copyfile(originals[1], pics / "b" / f"copy{i}.jpg") for i in range(3)]
    data = originals[2].read_bytes()
    (pics / "a" / "broken.jpg").write_bytes(data[: len(data) // 3])
    shutil.copyfile(pics / "a" / "broken.jpg", pics / "b" / "broken-copy.jpg")
    result = scan(run_cli, pics)
    assert group_of(result, originals[1]) == {str(originals[1]), *map(str, copies)}
    # 4 photos decoded, 3 copies taken from the first, the broken file and its copy failed alike.
    assert hash_counts(run_cli, result["job"]) == (4, 2, 3, 9)
    failed = {Path(f["path"]).name: f["error"] for f in result["failed"]}
    assert failed == {"broken.jpg": "truncated image", "broken-copy.jpg": "truncated image"}
    digests = rows(database_url, "SELECT count(DISTINCT digest), count(*) FROM file WHERE job_id = %s "
                                 "AND path LIKE %s", result["job"], f"%{originals[1].stem}%")
    assert digests == [(1, 1)]
    skipped = rows(database_url, "SELECT path FROM file WHERE job_id = %s AND status = 'skipped'", result["job"])
    assert {p for (p,) in skipped} == set(map(str, copies))


def test_a_rescan_reuses_stored_hashes_and_rehashes_only_changed_files(run_cli, tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    originals = save_photos(pics, range(6))
    shutil.copyfile(originals[0], pics / "copy.jpg")
    first = scan(run_cli, pics)
    again = scan(run_cli, pics)
    assert hash_counts(run_cli, again["job"]) == (0, 0, 7, 7)
    assert (again["groups"], again["pairs"]) == (first["groups"], first["pairs"])
    os.utime(originals[4], (1_000_000_000, 1_000_000_000))  # same bytes, new modification time
    photo(99).save(originals[5], quality=90)  # new content under the old name
    third = scan(run_cli, pics)
    # The touched file's bytes are known (digest): reused, not decoded. The rewritten one is decoded.
    assert hash_counts(run_cli, third["job"]) == (1, 0, 6, 7)
    rehashed = scan(run_cli, pics, "--rehash")
    assert hash_counts(run_cli, rehashed["job"])[0] == 6  # the exact copy is still skipped


def test_stored_forms_with_their_ties_are_what_hashing_gives_and_are_reused_as_they_are(
    run_cli, tmp_path: Path, database_url: str
) -> None:
    from neardup.hashing import hash_file
    from neardup.hashspec import HashSpec

    pics = tmp_path / "pics"
    save_photos(pics, range(4))
    near = EVAL / "imagededup/base_images/ukbench00120.jpg"
    shutil.copyfile(near, pics / "near_a_wall.jpg")  # ties 0b110: near both mirrors (test_fingerprint)
    shutil.copyfile(near, pics / "same_bytes.jpg")
    jobs = [scan(run_cli, pics)["job"], scan(run_cli, pics)["job"]]
    assert hash_counts(run_cli, jobs[1])[2] == 6  # all reused
    for job in jobs:
        stored = rows(database_url, "SELECT path, hash, coalesce(alt_hashes, '{}'), ties FROM file "
                                    "WHERE job_id = %s", job)
        assert len(stored) == 6
        for path, h, alts, ties in stored:
            info = hash_file(path, HashSpec(), draft=True)
            assert (h, tuple(alts), ties) == (info.hash, info.alternatives, info.ties), path
    assert rows(database_url, "SELECT DISTINCT ties FROM file WHERE job_id = %s AND path = ANY(%s)",
                jobs[1], [str(pics / "near_a_wall.jpg"), str(pics / "same_bytes.jpg")]) == [(0b110,)]


def test_a_rescan_is_finished_by_the_cli_without_the_broker_or_any_ticket(
    run_cli, tmp_path: Path, database_url: str
) -> None:
    pics = tmp_path / "pics"
    originals = save_photos(pics, range(5))
    shutil.copyfile(originals[0], pics / "copy.jpg")
    first = scan(run_cli, pics)
    with psycopg.connect(database_url) as conn:
        tickets = conn.execute("SELECT count(*) FROM dramatiq.queue").fetchone()[0]
    probe = ("import json, sys\nfrom neardup.cli import main\ncode = main(['scan', sys.argv[1], '--json'])\n"
             "print(json.dumps({'code': code, 'broker': 'dramatiq' in sys.modules}), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, str(pics)], capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": database_url, "XDG_DATA_HOME": str(tmp_path / "home")},
                          timeout=180)
    assert json.loads(done.stderr.strip().splitlines()[-1]) == {"code": 0, "broker": False}, done.stderr
    again = json.loads(done.stdout)
    assert again["status"] == "completed" and (again["groups"], again["pairs"]) == (first["groups"], first["pairs"])
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM dramatiq.queue").fetchone()[0] == tickets


def test_hashes_of_another_kind_are_never_reused_or_mixed(run_cli, tmp_path: Path, database_url: str) -> None:
    pics = tmp_path / "pics"
    save_photos(pics, range(5))
    first = scan(run_cli, pics)
    other = scan(run_cli, pics, "--hash", "dhash")
    assert hash_counts(run_cli, other["job"]) == (5, 0, 0, 5)
    unrotated = scan(run_cli, pics, "--hash", "dhash", "--no-rotations")
    assert hash_counts(run_cli, unrotated["job"]) == (5, 0, 0, 5)
    kinds = rows(database_url, "SELECT job_id, count(DISTINCT hash_kind), min(hash_kind) FROM file "
                               "GROUP BY job_id ORDER BY job_id")
    assert [k[1] for k in kinds] == [1, 1, 1]
    assert kinds[0][2].startswith("phash:8:") and kinds[1][2].startswith("dhash:8:")
    assert kinds[2][2].endswith(":plain:trim2:thumb1") and len({k[2] for k in kinds}) == 3
    algo = rows(database_url, "SELECT hash_algo, hash_size, rotations FROM job WHERE id = %s", other["job"])
    assert algo == [("dhash", 8, True)]
    assert hash_counts(run_cli, scan(run_cli, pics)["job"]) == (0, 0, 5, 5)
    assert first["groups"] == []


def test_bad_files_each_fail_with_a_one_line_reason_and_the_job_completes(run_cli, tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    photos = save_photos(pics, range(3))
    data = photos[0].read_bytes()
    (pics / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (pics / "empty.jpg").write_bytes(b"")
    (pics / "notes.jpg").write_text("not a picture\n")
    (pics / "bomb.png").write_bytes(png_header_only(100_000, 100_000))
    (pics / "fake.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40)
    odd = bytes(pics) + b"/it's \"odd\" caf\xe9.jpg"
    with open(odd, "wb") as out:
        out.write(data)
    result = scan(run_cli, pics)
    failed = {Path(f["path"]).name: f["error"] for f in result["failed"]}
    limit = 2 * Image.MAX_IMAGE_PIXELS
    assert failed["truncated.jpg"] == "truncated image"
    assert failed["empty.jpg"] == "empty file (0 bytes)"
    assert failed["notes.jpg"] == "not an image (cannot identify image file)"
    assert failed["bomb.png"] == f"decompression bomb: {100_000 * 100_000} pixels exceeds limit {limit}"
    assert failed["fake.heic"] and "\n" not in failed["fake.heic"]
    assert len(failed) == 5 and result["status"] == "completed"
    assert group_of(result, photos[0]) == {str(photos[0]), odd.decode("utf-8", "backslashreplace")}
    assert hash_counts(run_cli, result["job"]) == (3, 5, 1, 9)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_fails_alone(run_cli, tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    save_photos(pics, range(2))
    locked = pics / "locked.jpg"
    shutil.copyfile(pics / "photo-0000.jpg", locked)
    locked.chmod(0)
    result = scan(run_cli, pics)
    assert result["failed"] == [{"path": str(locked), "error": "permission denied"}]


def test_a_file_deleted_between_listing_and_hashing_fails_alone(
    run_cli, start_workers, repo, tmp_path: Path
) -> None:
    pics = tmp_path / "pics"
    photos = save_photos(pics, range(4))
    submitted = run_cli("submit", str(pics))
    assert submitted.returncode == 0, submitted.stderr
    job = int(submitted.stdout)
    photos[2].unlink()
    start_workers(1)
    progress = wait_for(lambda: (p := repo.progress(job)) and p.finished and p, timeout=90)
    assert progress.status == "completed"
    assert [(f.path, f.error) for f in repo.failed_files(job)] == [(str(photos[2]), "file vanished before hashing")]


def test_a_heic_photo_without_pillow_heif_is_a_one_line_error(tmp_path: Path) -> None:
    heic = tmp_path / "phone.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    code = ("import sys; sys.modules['pillow_heif'] = None\n"
            "from neardup.hashing import HashError, hash_file\n"
            f"try:\n    hash_file({str(heic)!r})\nexcept HashError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "HEIC/HEIF image, but pillow-heif is not installed (pip install 'neardup[heif]')\n"


def test_a_heic_photo_hashes_like_its_jpeg_when_pillow_heif_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("pillow_heif")
    from neardup.hashing import hash_file, heif_support
    from neardup.hashspec import HashSpec

    assert heif_support()  # registers the HEIF plugin, for saving as well as reading
    image = photo(5)
    image.save(tmp_path / "a.jpg", quality=95)
    image.save(tmp_path / "a.heic", quality=90)
    x = hash_file(str(tmp_path / "a.jpg"), HashSpec(), draft=True)
    y = hash_file(str(tmp_path / "a.heic"), HashSpec(), draft=True)
    assert (x.hash ^ y.hash).bit_count() <= 4 and (y.width, y.height) == (640, 480)


@pytest.mark.parametrize(("args", "env", "needle"), [
    (["--hash-size", "16"], {}, "--hash-size 16"),
    ([], {"NEARDUP_HASH": "md5"}, "md5"),
    ([], {"NEARDUP_HASH_SIZE": "7"}, "7"),
])
def test_unsupported_hash_options_are_a_one_line_usage_error(
    run_cli, tmp_path: Path, args: list[str], env: dict[str, str], needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_photos(tmp_path / "pics", range(1))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    done = run_cli("scan", str(tmp_path / "pics"), "--workers", "0", *args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and needle in done.stderr and "Traceback" not in done.stderr


def test_hash_options_come_from_the_environment_too(run_cli, tmp_path: Path, database_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    save_photos(tmp_path / "pics", range(2))
    monkeypatch.setenv("NEARDUP_HASH", "whash")
    monkeypatch.setenv("NEARDUP_NO_ROTATIONS", "1")
    done = run_cli("submit", str(tmp_path / "pics"))
    assert done.returncode == 0, done.stderr
    assert rows(database_url, "SELECT hash_algo, rotations FROM job WHERE id = %s", int(done.stdout)) == \
        [("whash", False)]


def test_a_worker_whose_libraries_differ_refuses_to_hash_and_the_files_fail_with_why(
    repo, start_workers, tmp_path: Path, database_url: str
) -> None:
    from db.repository import JobOptions, NewFile

    photos = save_photos(tmp_path / "pics", range(2))
    files = [NewFile(str(p), p.stat().st_size, p.stat().st_mtime) for p in photos]
    job = repo.submit([str(tmp_path / "pics")], files,
                      JobOptions(max_attempts=1, hash_kind="phash:8:imagehash-0.0+pillow-0:canon1m0.1:trim1"))
    start_workers(1)  # its monitor finds the job and sends the tickets
    progress = wait_for(lambda: (p := repo.progress(job)) and p.finished and p, timeout=90)
    reasons = {f.error for f in repo.failed_files(job)}
    assert progress.status == "completed" and len(reasons) == 1
    assert "the job wants phash:8:imagehash-0.0" in reasons.pop()
