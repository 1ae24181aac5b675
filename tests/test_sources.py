"""The real loaders on tiny fixtures written here: folder layout, torchvision formats, Tiny-ImageNet."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from src.data import sources
from src.data.sources import DataError


def write_folder(root, classes=("cat", "dog", "ant"), per_class=3, size=8, mode="RGB", ext="png"):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                shape = (size, size, 3) if mode == "RGB" else (size, size)
                Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(root / split / c / f"{i}.{ext}")


def test_folder_layout_sorted_class_index_and_cache(tmp_path):
    write_folder(tmp_path)
    data = sources.load_image_folder(tmp_path, channels=3)
    assert data.classes == ["ant", "cat", "dog"]
    assert data.train_x.shape == (9, 3, 8, 8) and data.train_x.dtype == torch.uint8
    assert data.train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # pixels survive exactly (PNG is lossless)
    img = np.asarray(Image.open(tmp_path / "train" / "cat" / "1.png"))
    assert torch.equal(data.train_x[4], torch.from_numpy(img.copy()).permute(2, 0, 1))
    cache = tmp_path / ".ddn_cache_folder.pt"
    assert cache.is_file()
    (tmp_path / "train" / "cat" / "1.png").unlink()  # the cache is used: no re-decode
    again = sources.load_image_folder(tmp_path, channels=3)
    assert torch.equal(again.train_x, data.train_x)


def test_cifar_folder_layout_through_load_cifar(tmp_path):
    write_folder(tmp_path, classes=[f"c{i}" for i in range(10)], per_class=1, size=32, ext="jpg")
    data = sources.load_cifar(tmp_path, "cifar10")
    assert data.train_x.shape == (10, 3, 32, 32)


def test_cifar_torchvision_pickle_format(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(1)
    for i in range(1, 6):
        with open(base / f"data_batch_{i}", "wb") as fh:
            pickle.dump({"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), "labels": [i % 10] * 4}, fh)
    test = rng.integers(0, 255, (3, 3072), dtype=np.uint8)
    with open(base / "test_batch", "wb") as fh:
        pickle.dump({"data": test, "labels": [7, 8, 9]}, fh)
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"n{i}" for i in range(10)]}, fh)
    data = sources.load_cifar(tmp_path, "cifar10")
    assert data.train_x.shape == (20, 3, 32, 32)
    assert data.test_y.tolist() == [7, 8, 9]
    assert torch.equal(data.test_x[2], torch.from_numpy(test[2].reshape(3, 32, 32)))
    assert data.classes[3] == "n3"


def _write_idx(path, arr):
    arr = np.asarray(arr, dtype=np.uint8)
    dims = arr.shape
    header = bytes([0, 0, 0x08, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    path.write_bytes(header + arr.tobytes())


def test_mnist_torchvision_raw_format(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 255, (6, 28, 28), dtype=np.uint8)
    _write_idx(raw / "train-images-idx3-ubyte", imgs)
    _write_idx(raw / "train-labels-idx1-ubyte", [0, 1, 2, 3, 4, 5])
    _write_idx(raw / "t10k-images-idx3-ubyte", imgs[:2])
    _write_idx(raw / "t10k-labels-idx1-ubyte", [9, 8])
    data = sources.load_mnist(tmp_path)
    assert data.train_x.shape == (6, 1, 28, 28)
    assert torch.equal(data.train_x[3, 0], torch.from_numpy(imgs[3]))
    assert data.test_y.tolist() == [9, 8]


def test_tiny_imagenet_official_layout_with_greyscale_image(tmp_path):
    wnids = ["n01", "n02"]
    (tmp_path / "wnids.txt").write_text("\n".join(wnids) + "\n")
    rng = np.random.default_rng(3)
    for w in wnids:
        d = tmp_path / "train" / w / "images"
        d.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(d / f"{w}_{i}.JPEG")
    # a greyscale training image, as in the real data set
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8), "L").save(tmp_path / "train/n02/images/n02_g.JPEG")
    val = tmp_path / "val" / "images"
    val.mkdir(parents=True)
    lines = []
    for i, w in enumerate(["n02", "n01", "n02"]):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(val / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63")
    (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(lines))
    data = sources.load_tiny_imagenet(tmp_path)
    assert data.train_x.shape == (5, 3, 64, 64)
    assert data.train_y.tolist() == [0, 0, 1, 1, 1]
    assert data.test_y.tolist() == [1, 0, 1]
    assert data.classes == wnids


def test_missing_data_names_path_and_both_ways(tmp_path):
    with pytest.raises(DataError) as err:
        sources.load_cifar(tmp_path / "nothing", "cifar10")
    msg = str(err.value)
    assert "nothing" in msg and "cifar-10-batches-py" in msg and "{train,test}" in msg and "download" in msg


def test_corrupt_image_is_named(tmp_path):
    write_folder(tmp_path, per_class=1)
    bad = tmp_path / "train" / "dog" / "0.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(DataError, match="0.png"):
        sources.load_image_folder(tmp_path, channels=3)


def test_empty_split_is_refused(tmp_path):
    write_folder(tmp_path, per_class=1)
    for f in (tmp_path / "test").rglob("*.png"):
        f.unlink()
    with pytest.raises(DataError, match="holds no images"):
        sources.load_image_folder(tmp_path, channels=3)


def test_embedded_digits_split_is_fixed():
    a, b = sources.load_digits(), sources.load_digits()
    assert torch.equal(a.test_y, b.test_y) and a.train_x.shape[1:] == (1, 8, 8)
    assert int(a.train_x.max()) == 255
