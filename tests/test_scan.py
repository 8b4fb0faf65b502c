"""`neardup scan` end to end: real workers, real PostgreSQL, the --json contract, bad input."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import psycopg
import pytest

from conftest import cli_env
from neardup.discovery import iter_files
from photos import save_near_copy, save_photos


def scan_json(run_cli, *paths: Path, workers: int = 2, inline_files: int = 0, rehash: bool = False) -> dict:
    # Workers decode every file unless told otherwise: these tests are about the workers' path.
    done = run_cli("scan", *map(str, paths), "--workers", str(workers), "--inline-files", str(inline_files),
                   "--json", *(["--rehash"] if rehash else []))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def group_of(result: dict, path: Path) -> set[str]:
    for g in result["groups"]:
        if str(path) in g["members"]:
            return set(g["members"])
    return set()


def byte_identical_sets(roots: list[Path]) -> list[set[str]]:
    by_digest: dict[str, set[str]] = {}
    for f in iter_files([str(r) for r in roots]):
        by_digest.setdefault(hashlib.sha256(Path(f.path).read_bytes()).hexdigest(), set()).add(f.path)
    return [s for s in by_digest.values() if len(s) > 1]


def test_scanning_the_eval_folders_finds_the_forest_group_and_the_byte_identical_copies(
    run_cli, eval_dir: Path
) -> None:
    roots = [eval_dir / "imagededup", eval_dir / "jenssegers_imagehash"]
    result = scan_json(run_cli, *roots)
    forest = eval_dir / "jenssegers_imagehash" / "forest"
    assert {str(p) for p in forest.glob("*.jpg")} <= group_of(result, forest / "forest-high.jpg")
    failed = {f["path"]: f["error"] for f in result["failed"]}
    identical = [s for s in byte_identical_sets(roots) if not s & set(failed)]
    assert len(identical) >= 4
    for copies in identical:
        first = sorted(copies)[0]
        assert copies <= group_of(result, Path(first)), f"byte-identical files split: {copies}"
    assert set(failed) == {str(eval_dir / "imagededup" / d / "ukbench09268_corrupt.jpg")
                           for d in ("mixed_images", "mixed_nested_images")}
    # Three photos of the same office are different pictures: they must not be grouped.
    office = sorted((eval_dir / "jenssegers_imagehash" / "office").glob("*.jpg"))
    assert str(office[1]) not in group_of(result, office[0])


def test_scan_json_matches_the_contract(run_cli, tmp_path: Path) -> None:
    photos = save_photos(tmp_path / "pics", range(6))
    copy = save_near_copy(photos[0], tmp_path / "pics" / "copy-of-0.jpg")
    result = scan_json(run_cli, tmp_path / "pics")
    assert set(result) == {"job", "status", "files", "failed", "groups", "pairs"}
    assert isinstance(result["job"], int)
    assert result["status"] == "completed"
    assert result["files"] == 7
    assert result["failed"] == []
    assert result["groups"] == [{"keeper": str(photos[0]), "members": sorted([str(photos[0]), str(copy)])}]
    [pair] = result["pairs"]
    assert {pair["a"], pair["b"]} == {str(photos[0]), str(copy)}
    assert 0 <= pair["distance"] <= 10
    assert all(Path(p).is_absolute() for g in result["groups"] for p in g["members"])


def test_bad_files_in_the_tree_become_failed_rows_and_the_job_still_completes(run_cli, tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    photos = save_photos(pics, range(3))
    (pics / "empty.jpg").write_bytes(b"")
    (pics / "notes.jpg").write_text("this is not a picture\n")
    data = photos[1].read_bytes()
    (pics / "truncated.jpg").write_bytes(data[: len(data) // 2])
    result = scan_json(run_cli, pics)
    failed = {Path(f["path"]).name: f["error"] for f in result["failed"]}
    assert set(failed) == {"empty.jpg", "notes.jpg", "truncated.jpg"}
    assert all(reason and "\n" not in reason for reason in failed.values())
    assert result["status"] == "completed" and result["files"] == 6
    status = json.loads(run_cli("status", str(result["job"]), "--json").stdout)
    hashed = next(p for p in status["phases"] if p["name"] == "hash")
    assert (hashed["done"], hashed["failed"], hashed["skipped"], hashed["total"]) == (3, 3, 0, 6)


def test_a_small_folder_is_hashed_in_the_cli_process_with_the_workers_results(
    run_cli, tmp_path: Path
) -> None:
    pics = tmp_path / "pics"
    photos = save_photos(pics, range(4))
    save_near_copy(photos[2], pics / "copy-of-2.jpg")
    (pics / "notes.jpg").write_text("this is not a picture\n")
    logs = tmp_path / "home" / "neardup" / "logs"
    by_workers = scan_json(run_cli, pics, inline_files=0, rehash=True)
    assert sorted(p.name for p in logs.glob("worker-*.log")) == ["worker-0.log", "worker-1.log"]
    for log in logs.glob("worker-*.log"):
        log.unlink()
    inline = scan_json(run_cli, pics, inline_files=6, rehash=True)
    assert not list(logs.glob("worker-*.log")), "no worker was needed for 6 files"
    assert inline["job"] != by_workers["job"]
    for key in ("status", "files", "failed", "groups"):
        assert inline[key] == by_workers[key], key
    assert [g["members"] for g in inline["groups"]] == [sorted([str(photos[2]), str(pics / "copy-of-2.jpg")])]
    # One file more than --inline-files to decode: workers again.
    save_photos(tmp_path / "more", range(7))
    assert scan_json(run_cli, tmp_path / "more", inline_files=6)["files"] == 7
    assert len(list(logs.glob("worker-*.log"))) == 2


def test_status_and_groups_read_a_finished_job_later(run_cli, tmp_path: Path) -> None:
    photos = save_photos(tmp_path / "pics", range(4))
    save_near_copy(photos[2], tmp_path / "pics" / "copy-of-2.jpg")
    result = scan_json(run_cli, tmp_path / "pics")
    job = str(result["job"])
    status = json.loads(run_cli("status", job, "--json").stdout)
    assert status["job"] == result["job"] and status["status"] == "completed"
    assert status["percent"] == 100
    assert [p["name"] for p in status["phases"]] == ["hash", "compare", "cluster", "finalize"]
    assert all(p["status"] == "completed" and p["percent"] == 100 for p in status["phases"])
    assert set(status["phases"][0]) == {"name", "status", "total", "done", "failed", "skipped", "cancelled",
                                        "percent", "rate", "eta_s"}
    assert status["eta_s"] is None and status["elapsed_s"] > 0
    groups = json.loads(run_cli("groups", job, "--json").stdout)
    assert groups == {"groups": result["groups"], "pairs": result["pairs"]}
    csv_lines = run_cli("groups", job, "--csv").stdout.splitlines()
    assert csv_lines[0] == "group,keeper,path" and len(csv_lines) == 3


def test_a_path_that_does_not_exist_is_a_one_line_error_and_nothing_is_submitted(
    run_cli, tmp_path: Path, database_url: str
) -> None:
    missing = tmp_path / "no such folder"
    done = run_cli("scan", str(missing), "--workers", "0")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and str(missing) in done.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('job')").fetchone()[0] is None or \
            conn.execute("SELECT count(*) FROM job").fetchone()[0] == 0


def test_an_unreachable_database_is_a_one_line_error_naming_the_host(run_cli, tmp_path: Path) -> None:
    save_photos(tmp_path / "pics", range(1))
    done = run_cli("scan", str(tmp_path / "pics"), url="postgresql://postgres@127.0.0.1:9/nowhere")
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "127.0.0.1:9" in done.stderr


@pytest.mark.parametrize("command", [["status", "987654"], ["groups", "987654", "--json"]])
def test_an_unknown_job_is_a_one_line_error(run_cli, command: list[str]) -> None:
    done = run_cli(*command)
    assert done.returncode == 2
    assert done.stderr.strip() == "neardup: job 987654: no such job"


def test_names_with_quotes_spaces_and_non_utf8_bytes_are_hashed_and_reported(run_cli, tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    [original] = save_photos(pics, [7])
    odd = bytes(pics) + b"/caf\xe9 \"quoted\" it's.jpg"
    with open(odd, "wb") as out:
        out.write(original.read_bytes())
    result = scan_json(run_cli, pics)
    assert result["failed"] == [] and result["files"] == 2
    [group] = result["groups"]
    shown = next(m for m in group["members"] if m != str(original))
    # Not valid UTF-8: shown with the byte escaped, hashed from the exact bytes.
    assert shown.endswith("caf\\xe9 \"quoted\" it's.jpg")


def test_a_reader_that_leaves_early_gets_no_traceback_and_a_clean_exit(database_url: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "neardup", "jobs", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=cli_env(database_url, tmp_path))
    proc.stdout.close()  # like `| head` gone before the first line: every write meets a broken pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err
