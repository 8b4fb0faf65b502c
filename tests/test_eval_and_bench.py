"""`neardup eval` (scoring a real scan against a ground truth), `neardup bench hash`, `bench rescan` and
`bench verify`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from db.migrate import head_revision
from db.repository import JobOptions, NewFile
from neardup.cli import Fail
from neardup.evaluate import TruthRow, read_truth, score
from photos import save_near_copy, save_photos


def truth(*rows: tuple[str, str]) -> list[TruthRow]:
    return [TruthRow(path, group, "") for path, group in rows]


def test_a_perfect_grouping_scores_one_and_distractors_cost_nothing() -> None:
    t = truth(("a", "x"), ("b", "x"), ("c", "x"), ("d", "y"), ("e", "z"))
    s = score(t, {"a": 0, "b": 0, "c": 0, "unknown.jpg": 0})
    assert (s.true_positives, s.false_positives, s.false_negatives) == (3, 0, 0)
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)


def test_a_split_group_costs_recall_and_a_merged_distractor_costs_precision() -> None:
    t = truth(("a", "x"), ("b", "x"), ("c", "x"), ("d", "y"))
    s = score(t, {"a": 0, "b": 0, "c": 1, "d": 1})
    assert (s.true_positives, s.false_positives, s.false_negatives) == (1, 1, 2)
    assert s.precision == 0.5 and s.recall == pytest.approx(1 / 3) and s.f1 == pytest.approx(0.4)


def test_files_in_no_group_are_each_alone() -> None:
    s = score(truth(("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")), {})
    assert (s.true_positives, s.false_positives, s.false_negatives) == (0, 0, 2)


def test_the_truth_csv_is_read_relative_to_the_folder_and_can_leave_files_out(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("file,group,transform\nsub/a.jpg,g,orig\nb.jpg,g,rot\nc.jpg,h,x\n")
    rows = read_truth(tmp_path / "t.csv", tmp_path / "set", ignore=["c.*"])
    assert rows == [TruthRow(str(tmp_path / "set" / "sub" / "a.jpg"), "g", "orig"),
                    TruthRow(str(tmp_path / "set" / "b.jpg"), "g", "rot")]


@pytest.mark.parametrize(("text", "needle"), [("name,group\na,b\n", "no file column"), (None, "no such file")])
def test_a_bad_truth_file_is_a_one_line_error(tmp_path: Path, text: str | None, needle: str) -> None:
    if text is not None:
        (tmp_path / "t.csv").write_text(text)
    with pytest.raises(Fail) as caught:
        read_truth(tmp_path / "t.csv", tmp_path)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_eval_scores_the_imagededup_set(run_cli, eval_dir: Path) -> None:
    folder = eval_dir / "imagededup"
    done = run_cli("eval", str(folder), "--json", "--workers", "2")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    # 16 positive pairs; the 25-degree rotation's 5 are beyond a global hash.
    assert (r["files"], r["precision"], r["true_positives"], r["false_negatives"]) == (21, 1.0, 11, 5)
    assert {p["transform_b"] for p in r["missed_pairs"]} | {p["transform_a"] for p in r["missed_pairs"]} >= \
        {"rotation ~25 deg, black corners"}
    done = run_cli("eval", str(folder), "--truth", str(folder / "ground_truth.csv"),
                   "--ignore", "*_rotation.jpg", "--json", "--workers", "2")
    r = json.loads(done.stdout)
    assert (r["files"], r["precision"], r["recall"], r["f1"]) == (20, 1.0, 1.0, 1.0)


def test_eval_scores_the_jenssegers_set_with_every_orientation(run_cli, eval_dir: Path) -> None:
    done = run_cli("eval", str(eval_dir / "jenssegers_imagehash"), "--json", "--workers", "2")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert (r["precision"], r["recall"], r["true_positives"], r["false_pairs"]) == (1.0, 1.0, 46, [])


def test_bench_hash_prints_both_throughputs_from_the_same_run(run_cli, tmp_path: Path) -> None:
    done = run_cli("bench", "hash", "--images", "3", "--processes", "1", "--rounds", "1", "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert {"images", "megapixels_mean", "processes", "neardup_images_per_s", "imagehash_images_per_s",
            "ratio"} <= set(r)
    assert r["images"] == 3 and r["processes"] == 1 and 1.0 <= r["megapixels_mean"] <= 3.0
    assert r["neardup_images_per_s"] > 0 and r["imagehash_images_per_s"] > 0
    assert r["ratio"] == pytest.approx(r["neardup_images_per_s"] / r["imagehash_images_per_s"], rel=0.05)
    assert ":canon" in r["hash_kind"]


def test_bench_compare_runs_the_job_through_workers_beside_the_in_process_baseline(run_cli) -> None:
    done = run_cli("bench", "compare", "--n", "3000", "--workers", "1", "--rounds", "2", "--sample", "3000",
                   "--json", timeout=600)
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert {"n", "block_pair_rows", "job_wall_s", "in_process_s", "overhead_ratio", "kernel_pairs_per_s",
            "numpy_pairs_per_s", "kernel_vs_numpy", "rotation_cost_ratio", "pairs_match_reference"} <= set(r)
    assert r["n"] == 3000 and r["status"] == "completed" and r["completions"] == 1
    assert r["pairs_match_reference"] is True and r["pairs_match_in_process"] is True and r["pairs"] > 0
    assert r["rows_lost"] == 0 and r["rows_repeated"] == 0 and r["block_pair_rows"] >= 1
    assert len(r["job_wall_rounds_s"]) == len(r["in_process_rounds_s"]) == 2
    assert r["job_wall_s"] == pytest.approx(min(r["job_wall_rounds_s"]), abs=1e-3)  # the best round
    assert r["overhead_ratio"] == pytest.approx(r["job_wall_s"] / r["in_process_s"], rel=0.01)


def test_bench_rescan_times_a_rescan_that_reuses_every_stored_hash(run_cli, tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    photos = save_photos(pics, range(6), size=(640, 480))
    save_near_copy(photos[2], pics / "copy-2.jpg")
    done = run_cli("bench", "rescan", "--dir", str(pics), "--workers", "1", "--rounds", "1", "--json",
                   timeout=300)
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["images"] == 7 and r["rescan_reused"] == 7 and r["same_groups"] is True
    assert r["first_scan_s"] > 0 and r["rescan_s"] > 0
    assert r["ratio"] == pytest.approx(r["rescan_s"] / r["first_scan_s"], rel=0.01)


def test_bench_verify_counts_and_confirms_the_near_misses_of_a_folder(run_cli, eval_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    pics = tmp_path / "pics"
    save_photos(pics, range(5), size=(640, 480))
    with Image.open(eval_dir / "imagededup" / "base_images" / "ukbench09040.jpg") as im:
        im.save(pics / "original.jpg", quality=95)
        im.crop((im.width // 20, im.height // 20, im.width, im.height)).save(pics / "cropped.jpg", quality=90)
    done = run_cli("bench", "verify", "--dir", str(pics), "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["images"] == 7 and r["pairs"] == 21
    assert r["bounds"]["16"]["confirmed"] >= 1  # the crop, 11 bits from its photo
    assert r["bounds"]["12"]["candidates"] <= r["bounds"]["16"]["candidates"] <= r["bounds"]["22"]["candidates"]
    assert [t["bits"] for t in r["tiers"]] == [20, 18, 16, 14]
    assert all(t["verify_share_of_hashing"] >= 0 for t in r["tiers"])
    missing = run_cli("bench", "verify", "--dir", str(tmp_path / "nowhere"), "--json")
    assert missing.returncode == 2 and "not a directory" in missing.stderr


def test_bench_rescan_refuses_a_folder_that_is_not_there(run_cli, tmp_path: Path) -> None:
    done = run_cli("bench", "rescan", "--dir", str(tmp_path / "nowhere"), "--json")
    assert done.returncode == 2
    assert done.stderr.strip() == f"neardup: --dir {tmp_path / 'nowhere'}: not a directory"


def test_same_size_files_share_a_hash_batch(repo) -> None:
    sizes = [100, 7, 100, 55, 100, 7, 9, 100]
    files = [NewFile(f"/p/{i}.jpg", size, 1.0) for i, size in enumerate(sizes)]
    job = repo.submit(["/p"], files, JobOptions(batch_size=2))
    with repo.pool.connection() as conn:
        batch = dict(conn.execute("SELECT path, work_id FROM file WHERE job_id = %s", (job,)).fetchall())
    for size in set(sizes):
        same = {batch[f"/p/{i}.jpg"] for i, s in enumerate(sizes) if s == size}
        assert len(same) <= (sizes.count(size) + 1) // 2, size  # only split past batch_size


def test_the_migration_head_is_read_from_the_files() -> None:
    assert head_revision() is not None
