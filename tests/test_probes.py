"""The measuring scripts in scripts/ run on a small labelled set and report what they claim."""
from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from conftest import ROOT


def labelled_set(eval_dir: Path, out: Path) -> Path:
    """Two photos, each with a rotated, a mirrored and a 5 %-corner-cropped copy, and a ground truth."""
    out.mkdir()
    rows = []
    for name in ("ukbench09040.jpg", "ukbench09268.jpg"):
        with Image.open(eval_dir / "imagededup" / "base_images" / name) as im:
            w, h = im.size
            copies = {"original": im, "rot90": im.transpose(Image.Transpose.ROTATE_90),
                      "mirror": im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                      "crop5corner": im.crop((w // 20, h // 20, w, h))}
            for transform, copy in copies.items():
                file = f"{name[:-4]}_{transform}.jpg"
                copy.convert("RGB").save(out / file, quality=92)
                rows.append((file, name, transform))
    with open(out / "ground_truth.csv", "w", newline="") as f:
        csv.writer(f).writerows([("file", "group", "transform"), *rows])
    return out


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_probe_orientation_finds_every_rotated_copy_and_prices_the_alternatives(eval_dir: Path, tmp_path: Path) -> None:
    out = run("probe_orientation.py", str(labelled_set(eval_dir, tmp_path / "set")), "--up-to", "12")
    wanted, missed, work = re.search(r"brute force\) (\d+), missed by the stored forms (\d+);.*"
                                     r"compare work ([\d.]+)x", out).groups()
    assert int(wanted) >= 6 and int(missed) == 0  # the rotated and mirrored copies, both photos
    assert 1.0 <= float(work) < 3.0


def test_probe_verification_confirms_the_crop_past_the_threshold(eval_dir: Path, tmp_path: Path) -> None:
    out = run("probe_verification.py", str(labelled_set(eval_dir, tmp_path / "set")))
    before, after = (float(r) for r in re.findall(r"recall ([\d.]+)", out))
    assert after > before and after == 1.0
    assert "precision 1.0000 recall 1.0000" in out
