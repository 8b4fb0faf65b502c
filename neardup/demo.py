"""A demo folder of generated photos with planted near-duplicates (no downloads needed)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    # Low-frequency noise upsampled: photo-like spectra, so pHash tells seeds apart.
    rng = np.random.default_rng(seed)
    small = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def save_photos(folder: Path, seeds: range | list[int], size: tuple[int, int] = (640, 480)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f"photo-{seed:04d}.jpg"
        photo(seed, size).save(path, quality=90)
        paths.append(path)
    return paths


def save_near_copy(src: Path, dst: Path, scale: float = 0.5, quality: int = 60) -> Path:
    with Image.open(src) as im:
        w, h = im.size
        im.convert("RGB").resize((int(w * scale), int(h * scale))).save(dst, quality=quality)
    return dst


def make_demo(folder: Path, photos: int = 40) -> Path:
    """Photos, a few near copies of different kinds, an exact copy and a corrupt file."""
    if folder.exists():
        shutil.rmtree(folder)
    originals = save_photos(folder / "camera", range(photos))
    edits = folder / "edited"
    edits.mkdir()
    save_near_copy(originals[1], edits / "photo-0001-small.jpg")
    save_near_copy(originals[1], edits / "photo-0001-tiny.jpg", scale=0.25, quality=40)
    with Image.open(originals[2]) as im:
        im.convert("L").save(edits / "photo-0002-gray.png")
    with Image.open(originals[3]) as im:
        im.save(edits / "photo-0003.webp", quality=70)
    shutil.copyfile(originals[4], edits / "photo-0004-copy.jpg")
    data = originals[5].read_bytes()
    (edits / "photo-0005-truncated.jpg").write_bytes(data[: len(data) // 3])
    return folder
