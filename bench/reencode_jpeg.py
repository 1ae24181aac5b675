"""Re-encode an image-folder dataset as JPEG of a given quality: ``python bench/reencode_jpeg.py SRC DST --quality 50``.

How much do JPEG artefacts move a benchmark? The shared CIFAR-10 is already JPEG (quality ~75) and the
original files cannot be had here, so this measures the next step down instead (quality 75 -> 50) on a copy
under data/ (git-ignored): ``dataset.root=data/cifar10_q50``. Layout kept: ``{train,test}/<class>/<name>.jpg``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--quality", type=int, default=50)
    args = ap.parse_args()
    files = sorted(p for p in args.src.glob("*/*/*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not files:
        raise SystemExit(f"{args.src} holds no images: expected SRC/{{train,test}}/<class>/<image>")
    for i, p in enumerate(files):
        out = (args.dst / p.relative_to(args.src)).with_suffix(".jpg")
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(p) as im:
            im.convert("RGB").save(out, "JPEG", quality=args.quality)
        if i % 10000 == 0:
            print(f"{i}/{len(files)}", flush=True)
    print(f"{len(files)} images -> {args.dst} (JPEG quality {args.quality})")


if __name__ == "__main__":
    main()
