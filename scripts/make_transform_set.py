#!/usr/bin/env python3
"""Build a near-duplicate test set from source photos: each source becomes a group of edited copies.

    python scripts/make_transform_set.py OUT SOURCE_IMAGE... [--max-side 1024]

Writes OUT/<source>/<transform>.<ext> and OUT/ground_truth.csv (file,group,transform), the format
`neardup eval` reads. Copies cover what a photo library holds: the 8 rotations and mirrors, EXIF
orientation, every storage mode, small crops, re-encodes, resizes, aspect changes, brightness,
contrast and saturation, noise, blur, borders and a caption. A source listed with --distractor is
written once and stands alone (a group of one).
"""
from __future__ import annotations

import argparse
import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

Edit = Callable[[Image.Image], Image.Image]
T = Image.Transpose


def crop(frac_left: float, frac_top: float, frac_right: float, frac_bottom: float) -> Edit:
    def edit(im: Image.Image) -> Image.Image:
        w, h = im.size
        return im.crop((int(w * frac_left), int(h * frac_top), w - int(w * frac_right), h - int(h * frac_bottom)))
    return edit


def scale(fx: float, fy: float | None = None) -> Edit:
    return lambda im: im.resize((max(8, int(im.width * fx)), max(8, int(im.height * (fy or fx)))),
                                Image.Resampling.BICUBIC)


def noise(sigma: float, seed: int) -> Edit:
    def edit(im: Image.Image) -> Image.Image:
        a = np.asarray(im.convert("RGB")).astype(np.float32)
        a += np.random.default_rng(seed).normal(0, sigma, a.shape)
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return edit


def border(frac: float, colour: tuple[int, int, int]) -> Edit:
    return lambda im: ImageOps.expand(im.convert("RGB"), border=int(min(im.size) * frac), fill=colour)


def caption(text: str) -> Edit:
    def edit(im: Image.Image) -> Image.Image:
        im = im.convert("RGB").copy()
        size = max(10, im.height // 18)
        draw = ImageDraw.Draw(im)
        draw.text((im.width // 20, im.height - 2 * size), text, fill=(255, 255, 255),
                  font_size=size, stroke_width=1, stroke_fill=(0, 0, 0))
        return im
    return edit


def enhance(kind: type, factor: float) -> Edit:
    return lambda im: kind(im.convert("RGB")).enhance(factor)


def transposed(*ops: Image.Transpose) -> Edit:
    def edit(im: Image.Image) -> Image.Image:
        for op in ops:
            im = im.transpose(op)
        return im
    return edit


def then(*edits: Edit) -> Edit:
    def edit(im: Image.Image) -> Image.Image:
        for e in edits:
            im = e(im)
        return im
    return edit


# name -> (edit, file extension, save options)
EDITS: dict[str, tuple[Edit, str, dict]] = {
    "original": (lambda im: im, "jpg", {"quality": 92}),
    "rot90": (transposed(T.ROTATE_90), "jpg", {"quality": 90}),
    "rot180": (transposed(T.ROTATE_180), "jpg", {"quality": 90}),
    "rot270": (transposed(T.ROTATE_270), "jpg", {"quality": 90}),
    "mirror": (transposed(T.FLIP_LEFT_RIGHT), "jpg", {"quality": 90}),
    "flip": (transposed(T.FLIP_TOP_BOTTOM), "jpg", {"quality": 90}),
    "transpose": (transposed(T.TRANSPOSE), "png", {}),
    "transverse": (transposed(T.TRANSVERSE), "webp", {"quality": 80}),
    "exif6": (transposed(T.ROTATE_90), "jpg", {"quality": 90, "orientation": 6}),
    "gray": (lambda im: im.convert("L"), "png", {}),
    "palette": (lambda im: im.convert("RGB").quantize(64), "png", {}),
    "rgba": (lambda im: im.convert("RGBA"), "png", {}),
    "cmyk": (lambda im: im.convert("CMYK"), "jpg", {"quality": 90}),
    "gray16": (lambda im: Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257), "png", {}),
    "crop3": (crop(0.03, 0.03, 0.03, 0.03), "jpg", {"quality": 90}),
    "crop5corner": (crop(0.05, 0.05, 0.0, 0.0), "jpg", {"quality": 90}),
    "jpeg25": (lambda im: im, "jpg", {"quality": 25}),
    "webp40": (lambda im: im, "webp", {"quality": 40}),
    "half": (scale(0.5), "jpg", {"quality": 85}),
    "thumb": (lambda im: im.resize((160, max(8, 160 * im.height // im.width)), Image.Resampling.LANCZOS),
              "jpg", {"quality": 80}),
    "double": (scale(2.0), "jpg", {"quality": 85}),
    "squash": (scale(1.0, 0.75), "jpg", {"quality": 90}),
    "stretch": (scale(1.3, 1.0), "jpg", {"quality": 90}),
    "bright": (enhance(ImageEnhance.Brightness, 1.3), "jpg", {"quality": 90}),
    "dark": (enhance(ImageEnhance.Brightness, 0.7), "jpg", {"quality": 90}),
    "contrast": (enhance(ImageEnhance.Contrast, 0.6), "jpg", {"quality": 90}),
    "saturate": (enhance(ImageEnhance.Color, 1.8), "jpg", {"quality": 90}),
    "desaturate": (enhance(ImageEnhance.Color, 0.2), "jpg", {"quality": 90}),
    "noise": (noise(12, 1), "jpg", {"quality": 90}),
    "blur": (lambda im: im.filter(ImageFilter.GaussianBlur(2)), "jpg", {"quality": 90}),
    "border": (border(0.04, (255, 255, 255)), "jpg", {"quality": 90}),
    "letterbox": (border(0.03, (0, 0, 0)), "png", {}),
    "caption": (caption("Holiday 2019 - (c) me"), "jpg", {"quality": 90}),
    "rot90_half_jpeg40": (then(transposed(T.ROTATE_90), scale(0.5)), "jpg", {"quality": 40}),
    "mirror_bright_crop3": (then(transposed(T.FLIP_LEFT_RIGHT), enhance(ImageEnhance.Brightness, 1.2),
                                 crop(0.03, 0.03, 0.03, 0.03)), "jpg", {"quality": 85}),
    "rot270_gray_caption": (then(transposed(T.ROTATE_270), lambda im: im.convert("L"), caption("IMG_0042")),
                            "png", {}),
}


DIHEDRAL = [(), (T.ROTATE_90,), (T.ROTATE_180,), (T.ROTATE_270,), (T.FLIP_LEFT_RIGHT,),
            (T.FLIP_TOP_BOTTOM,), (T.TRANSPOSE,), (T.TRANSVERSE,)]
MODES = ["RGB", "L", "P", "RGBA", "CMYK", "I;16"]


def random_edit(rng: np.random.Generator) -> tuple[str, Edit, str, dict]:
    """A random composition of edits at everyday strengths, and a name saying what it did."""
    steps: list[tuple[str, Edit]] = []
    turn = int(rng.integers(8))
    if turn:
        steps.append((f"d{turn}", transposed(*DIHEDRAL[turn])))
    if rng.random() < 0.4:
        c = rng.uniform(0, 0.025, 4)
        steps.append(("crop" + "-".join(f"{x * 100:.1f}" for x in c), crop(*c)))
    if rng.random() < 0.5:
        fx = float(rng.uniform(0.2, 1.5))
        fy = fx * float(rng.uniform(0.75, 1.33)) if rng.random() < 0.4 else fx
        steps.append((f"scale{fx:.2f}x{fy:.2f}", scale(fx, fy)))
    for kind, label, lo, hi in ((ImageEnhance.Brightness, "bright", 0.75, 1.25),
                                (ImageEnhance.Contrast, "contrast", 0.6, 1.4),
                                (ImageEnhance.Color, "colour", 0.0, 2.0)):
        if rng.random() < 0.3:
            f = float(rng.uniform(lo, hi))
            steps.append((f"{label}{f:.2f}", enhance(kind, f)))
    if rng.random() < 0.25:
        sigma = float(rng.uniform(2, 12))
        steps.append((f"noise{sigma:.0f}", noise(sigma, int(rng.integers(1 << 30)))))
    if rng.random() < 0.25:
        radius = float(rng.uniform(0.5, 2.0))
        steps.append((f"blur{radius:.1f}", lambda im, r=radius: im.filter(ImageFilter.GaussianBlur(r))))
    if rng.random() < 0.2:
        frac, shade = float(rng.uniform(0.01, 0.06)), int(rng.choice([0, 255]))
        steps.append((f"border{frac * 100:.0f}", border(frac, (shade, shade, shade))))
    if rng.random() < 0.2:
        steps.append(("caption", caption(f"IMG_{int(rng.integers(10000)):04d}")))
    mode = str(rng.choice(MODES)) if rng.random() < 0.3 else "RGB"
    if mode != "RGB":
        convert = (lambda im: Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257)) \
            if mode == "I;16" else (lambda im, m=mode: im.convert("RGB").convert(m))
        steps.append((mode.replace(";", ""), convert))
    ext = "png" if mode in ("P", "RGBA", "I;16") else str(rng.choice(["jpg", "jpg", "webp", "png"]))
    options = {"quality": int(rng.integers(30, 96))} if ext in ("jpg", "webp") else {}
    if mode == "CMYK":
        ext = "jpg"  # the one common format that stores CMYK
    name = "_".join(n for n, _ in steps) or "reencode"
    return name, then(*(e for _, e in steps)), ext, options


def save(im: Image.Image, path: Path, options: dict) -> None:
    options = dict(options)
    orientation = options.pop("orientation", None)
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif
    if path.suffix == ".jpg" and im.mode not in ("RGB", "L", "CMYK"):
        im = im.convert("RGB")
    im.save(path, **options)


def load(path: Path, max_side: int) -> Image.Image:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB") if im.mode != "RGB" else im.copy()
    im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return im


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("sources", type=Path, nargs="*")
    ap.add_argument("--distractor", type=Path, action="append", default=[])
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--random", type=int, default=0, metavar="N",
                    help="instead of the fixed edits, N random compositions of everyday edits per source")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_intermixed_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    names: set[str] = set()
    for source in args.sources + args.distractor:
        name = source.stem.replace(" ", "_")
        while name in names:
            name += "_"
        names.add(name)
        image = load(source, args.max_side)
        folder = args.out / name
        folder.mkdir(exist_ok=True)
        edits = {"original": EDITS["original"]} if source in args.distractor else EDITS
        if args.random and source not in args.distractor:
            rng = np.random.default_rng([args.seed, len(names)])
            edits = {"original": EDITS["original"]}
            for i in range(args.random):
                label, edit, ext, options = random_edit(rng)
                edits[f"{i:02d}_{label}"] = (edit, ext, options)
        for edit_name, (edit, ext, options) in edits.items():
            path = folder / f"{edit_name}.{ext}"
            save(edit(image), path, options)
            rows.append((f"{name}/{path.name}", name, edit_name))
    with open(args.out / "ground_truth.csv", "w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(["file", "group", "transform"])
        writer.writerows(rows)
    print(f"{len(rows)} files, {len(args.sources)} groups, {len(args.distractor)} distractors in {args.out}")


if __name__ == "__main__":
    main()
