"""The collection on disk: numbered masks and metadata.csv in the ingest's format, a contact sheet, the CLI.

    python -m training.synthetic --out DIR [--count N] [--size PX] [--seed S] [--contact-sheet PNG]
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from models.grid import image_grid
from training.synthetic.render import MAX_SIZE, MIN_SIZE, check_seed, check_size, render_mask

logger = logging.getLogger("training.synthetic")

IMAGE_FORMATS = ("png", "jpg")
METADATA_COLUMNS = ("file", "title", "culture", "material", "source", "license")
_CONTACT_SHEET_MAX = 64


def image_seed(seed: int, index: int) -> int:
    """The seed of image `index` in the collection generated from `seed`."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def generate_collection(out_dir, count: int, size: int = 128, seed: int = 0, *, image_format: str = "png",
                        progress: bool = True) -> Path:
    """Writes `count` masks (mask_00000.png, ...) and metadata.csv into `out_dir`; returns the folder."""
    if int(count) < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    check_size(size)
    check_seed(seed)
    image_format = image_format.lower().lstrip(".")
    if image_format == "jpeg":
        image_format = "jpg"
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 6] if image_format == "png" else [cv2.IMWRITE_JPEG_QUALITY, 95]
    indices = range(int(count))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="synthetic masks", unit="img")
    rows = []
    for i in indices:
        image, meta = render_mask(image_seed(seed, i), size)
        name = f"mask_{i:05d}.{image_format}"
        if not cv2.imwrite(str(out / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params):
            raise OSError(f"could not write {out / name}")
        rows.append({"file": name, **{k: meta[k] for k in METADATA_COLUMNS[1:]}})
    with open(out / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(METADATA_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    logger.info("wrote %d synthetic masks to %s", len(rows), out)
    return out


def contact_sheet(images: Sequence[np.ndarray], columns: int, *, gap: int = 2, background: int = 255) -> np.ndarray:
    """Tiles equally sized HxWx3 images into a grid, `gap` pixels apart, on white."""
    return image_grid(images, columns, gap=gap, background=background)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synthetic",
                                     description="Generate the procedural mask collection.")
    parser.add_argument("--out", required=True, help="output folder for images and metadata.csv")
    parser.add_argument("--count", type=int, default=64, help="number of images (default 64)")
    parser.add_argument("--size", type=int, default=128, help=f"image side in pixels, {MIN_SIZE}..{MAX_SIZE}")
    parser.add_argument("--seed", type=int, default=0, help="collection seed (default 0)")
    parser.add_argument("--format", default="png", choices=IMAGE_FORMATS, help="image file format")
    parser.add_argument("--contact-sheet", metavar="PNG", help=f"also write a grid of the first "
                        f"{_CONTACT_SHEET_MAX} images to this file")
    parser.add_argument("--columns", type=int, default=8, help="contact sheet columns (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.columns < 1:
            raise ValueError(f"columns must be at least 1, got {args.columns}")
        out = generate_collection(args.out, args.count, args.size, args.seed, image_format=args.format,
                                  progress=not args.quiet)
        if args.contact_sheet:
            files = [out / f"mask_{i:05d}.{args.format}" for i in range(min(args.count, _CONTACT_SHEET_MAX))]
            images = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
            sheet = contact_sheet(images, args.columns)
            Path(args.contact_sheet).parent.mkdir(parents=True, exist_ok=True)
            bgr = cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(args.contact_sheet, bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
                raise OSError(f"could not write {args.contact_sheet}")
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
