"""How many different images the near-duplicate filter drops: hash alone vs hash confirmed at 16 px.

Every procedural mask is a different design, so every near duplicate dropped from it is a false one. Copies
made on purpose (recompressed, resized) must still go. Also counts what the centre crop cuts on
portrait and landscape crops of the same masks.

    python bench/near_duplicates.py [--count 800] [--size 128] [--seed 3]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from training import synthetic  # noqa: E402
from training.ingest import IngestConfig, ingest  # noqa: E402


def add_copies(folder: Path, count: int) -> None:
    """Recompressed and resized copies of the first `count` masks: true duplicates."""
    for index, path in enumerate(sorted(folder.glob("mask_*.jpg"))[:count]):
        with Image.open(path) as image:
            small = image.convert("RGB").resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=60)
        (folder / f"zz_copy_{index:03d}.jpg").write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=800)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--copies", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        source = synthetic.generate_collection(Path(work) / "masks", args.count, args.size, args.seed,
                                               image_format="jpg", progress=False)
        add_copies(source, args.copies)
        for label, pixel_rms in (("hash alone", 1.0), ("hash + 16 px check", IngestConfig().dedupe_pixel_rms)):
            config = IngestConfig(image_size=64, min_size=32, dedupe_pixel_rms=pixel_rms)
            report = ingest(source, Path(work) / f"out-{pixel_rms}", config, progress=False)
            dropped = [item for item in report.dropped_files if item.category == "duplicate"]
            copies = sum(1 for item in dropped if item.source_path.startswith("zz_copy_"))
            print(f"{label:20s} dropped {len(dropped) - copies:4d} of {args.count} different masks, "
                  f"{copies:3d} of {args.copies} copies; {len(report.review_pairs)} pairs to review")

        photos = Path(work) / "photos"
        photos.mkdir()
        for path in sorted(source.glob("mask_*.jpg"))[:200]:
            with Image.open(path) as image:
                width, height = image.size
                portrait = image.crop((width // 7, 0, width - width // 7, height))
                portrait.save(photos / path.name, quality=95)
        for fit in ("crop", "object"):
            report = ingest(photos, Path(work) / f"fit-{fit}", IngestConfig(image_size=64, min_size=32, fit=fit),
                            progress=False)
            print(f"fit {fit:6s}: the square cut into {report.cut_by_crop} of {report.kept} portrait masks, "
                  f"{report.no_background} without a plain background")


if __name__ == "__main__":
    main()
