"""Dataset sources: read a dataset from disk once, decode it to uint8 tensors, cache the result.

Every source returns a :class:`DecodedDataset` (train/test images as ``uint8`` tensors of shape
``(N, C, H, W)`` plus ``int64`` labels). The task split happens later, in :mod:`src.data.stream`.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

CACHE_NAME = ".ddn_cache_{kind}.pt"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


class DataError(ValueError):
    """A dataset cannot be read; the message names the path and how to provide the data."""


@dataclass
class DecodedDataset:
    train_x: Tensor  # uint8 (N, C, H, W)
    train_y: Tensor  # int64 (N,)
    test_x: Tensor
    test_y: Tensor
    classes: list[str]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]


# --------------------------------------------------------------------------- embedded dataset
def load_digits(test_fraction: float = 0.25, split_seed: int = 0) -> DecodedDataset:
    """scikit-learn's 8x8 digits (ships inside the package): works on any machine, offline."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    # The split is fixed (not the run's seed) so every seed is evaluated on the same test set.
    tr_x, te_x, tr_y, te_y = train_test_split(
        images, bunch.target, test_size=test_fraction, random_state=split_seed, stratify=bunch.target
    )
    return DecodedDataset(
        torch.from_numpy(tr_x), torch.from_numpy(tr_y).long(),
        torch.from_numpy(te_x), torch.from_numpy(te_y).long(),
        [str(i) for i in range(10)],
    )


# --------------------------------------------------------------------------- helpers
def _cached(root: Path, kind: str, build) -> DecodedDataset:
    """Load ``root/.ddn_cache_<kind>.pt`` or build, then write it atomically (write, then rename)."""
    cache = root / CACHE_NAME.format(kind=kind)
    if cache.is_file():
        blob = torch.load(cache, weights_only=True)
        return DecodedDataset(blob["train_x"], blob["train_y"], blob["test_x"], blob["test_y"],
                              list(blob["classes"]))
    data = build()
    tmp = cache.with_suffix(f".tmp{os.getpid()}")
    try:
        torch.save({"train_x": data.train_x, "train_y": data.train_y, "test_x": data.test_x,
                    "test_y": data.test_y, "classes": data.classes}, tmp)
        os.replace(tmp, cache)
    except OSError:  # read-only data folder: still usable, just not cached
        tmp.unlink(missing_ok=True)
    return data


def _decode_file(path: Path, channels: int) -> Tensor:
    from torchvision.io import ImageReadMode, decode_image, read_file

    mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
    try:
        return decode_image(read_file(str(path)), mode=mode)
    except Exception:  # torchvision cannot decode some formats (e.g. odd GIF/BMP); PIL as fallback
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                arr = np.asarray(img.convert("L" if channels == 1 else "RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"corrupt or unreadable image file {path}: {err}") from None
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def _decode_many(paths: list[Path], channels: int) -> Tensor:
    if not paths:
        return torch.zeros(0, channels, 1, 1, dtype=torch.uint8)
    images = [_decode_file(p, channels) for p in paths]
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) != 1:
        raise DataError(f"images under {paths[0].parent.parent} have different sizes {sorted(shapes)[:3]}: "
                        "resize them to one size first")
    return torch.stack(images)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


# --------------------------------------------------------------------------- folder layout
def has_folder_layout(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "test").is_dir()


def load_image_folder(root: str | Path, channels: int) -> DecodedDataset:
    """``root/{train,test}/<class>/<image>``; class index = position of the folder name in sorted order."""
    root = Path(root)

    def build() -> DecodedDataset:
        classes = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
        if not classes:
            raise DataError(f"{root}/train holds no class folders: expected root/train/<class>/<image>")
        out = []
        for split in ("train", "test"):
            paths, labels = [], []
            for idx, name in enumerate(classes):
                folder = root / split / name
                files = _images_in(folder) if folder.is_dir() else []
                paths += files
                labels += [idx] * len(files)
            if not paths:
                raise DataError(f"{root}/{split} holds no images: expected {root}/{split}/<class>/<image>")
            out += [_decode_many(paths, channels), torch.tensor(labels, dtype=torch.long)]
        return DecodedDataset(*out, classes)

    return _cached(root, "folder", build)


# --------------------------------------------------------------------------- torchvision formats
def _read_cifar_pickles(root: Path, folder: str, train_files: list[str], test_files: list[str],
                        label_key: str, meta_file: str, names_key: str) -> DecodedDataset:
    """The CIFAR python pickle format (what torchvision downloads), read without its md5 check."""
    base = root / folder

    def read(files: list[str]) -> tuple[Tensor, Tensor]:
        xs, ys = [], []
        for name in files:
            with open(base / name, "rb") as fh:
                entry = pickle.load(fh, encoding="latin1")
            xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.extend(entry[label_key])
        return torch.from_numpy(np.concatenate(xs)), torch.tensor(ys, dtype=torch.long)

    tr_x, tr_y = read(train_files)
    te_x, te_y = read(test_files)
    with open(base / meta_file, "rb") as fh:
        classes = list(pickle.load(fh, encoding="latin1")[names_key])
    return DecodedDataset(tr_x, tr_y, te_x, te_y, classes)


_CIFAR = {
    "cifar10": dict(folder="cifar-10-batches-py", train_files=[f"data_batch_{i}" for i in range(1, 6)],
                    test_files=["test_batch"], label_key="labels", meta_file="batches.meta",
                    names_key="label_names"),
    "cifar100": dict(folder="cifar-100-python", train_files=["train"], test_files=["test"],
                     label_key="fine_labels", meta_file="meta", names_key="fine_label_names"),
}


def _missing(root: Path, what: str, tv_hint: str) -> DataError:
    return DataError(
        f"no {what} data under dataset.root={root}: put the torchvision files ({tv_hint}) or a folder layout "
        f"{root}/{{train,test}}/<class>/<image> there, or set dataset.download=true where the network allows"
    )


def load_cifar(root: str | Path, variant: str = "cifar10", download: bool = False) -> DecodedDataset:
    """CIFAR-10/100 from the torchvision files, from a folder layout, or downloaded by torchvision."""
    root = Path(root)
    spec = _CIFAR[variant]
    if (root / spec["folder"]).is_dir():
        return _cached(root, variant, lambda: _read_cifar_pickles(root, **spec))
    if has_folder_layout(root):
        return load_image_folder(root, channels=3)
    if download:
        import torchvision

        cls = torchvision.datasets.CIFAR10 if variant == "cifar10" else torchvision.datasets.CIFAR100
        root.mkdir(parents=True, exist_ok=True)
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
        return _cached(root, variant, lambda: _read_cifar_pickles(root, **spec))
    raise _missing(root, variant.upper(), spec["folder"])


def load_mnist(root: str | Path, download: bool = False) -> DecodedDataset:
    """MNIST from torchvision's raw idx files (``root/MNIST/raw``), a folder layout, or a download."""
    import torchvision

    root = Path(root)
    raw = root / "MNIST" / "raw"
    if raw.is_dir() or download:
        def build() -> DecodedDataset:
            tr = torchvision.datasets.MNIST(str(root), train=True, download=download)
            te = torchvision.datasets.MNIST(str(root), train=False, download=download)
            return DecodedDataset(tr.data[:, None].contiguous(), tr.targets.long(),
                                  te.data[:, None].contiguous(), te.targets.long(), [str(i) for i in range(10)])

        if download:
            root.mkdir(parents=True, exist_ok=True)
        return _cached(root, "mnist", build)
    if has_folder_layout(root):
        return load_image_folder(root, channels=1)
    raise _missing(root, "MNIST", "MNIST/raw/*-ubyte")


def load_tiny_imagenet(root: str | Path, download: bool = False) -> DecodedDataset:
    """Tiny-ImageNet-200 in its official layout (``wnids.txt``, ``train/<wnid>/images``, ``val/``)."""
    root = Path(root)
    if not (root / "wnids.txt").is_file():
        if has_folder_layout(root):
            return load_image_folder(root, channels=3)
        hint = "" if not download else " (torchvision has no Tiny-ImageNet downloader: fetch tiny-imagenet-200.zip by hand)"
        raise DataError(
            f"no Tiny-ImageNet data under dataset.root={root}: unpack tiny-imagenet-200 there (wnids.txt, "
            f"train/, val/) or a folder layout {root}/{{train,test}}/<class>/<image>{hint}")

    def build() -> DecodedDataset:
        wnids = [w.strip() for w in (root / "wnids.txt").read_text().split() if w.strip()]
        index = {w: i for i, w in enumerate(wnids)}
        tr_paths, tr_y = [], []
        for w in wnids:
            files = _images_in(root / "train" / w / "images")
            tr_paths += files
            tr_y += [index[w]] * len(files)
        te_paths, te_y = [], []
        for line in (root / "val" / "val_annotations.txt").read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[1] in index:
                te_paths.append(root / "val" / "images" / parts[0])
                te_y.append(index[parts[1]])
        # Some Tiny-ImageNet images are greyscale: decoding in RGB mode makes all of them 3-channel.
        return DecodedDataset(_decode_many(tr_paths, 3), torch.tensor(tr_y), _decode_many(te_paths, 3),
                              torch.tensor(te_y), wnids)

    return _cached(root, "tinyimg", build)
